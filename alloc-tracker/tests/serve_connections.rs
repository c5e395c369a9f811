//! Connections that send nothing, and a process out of file descriptors:
//! the server that `serve::start_on` and `serve::serve` run closes a
//! connection that takes too long to send its headers, serves a bounded
//! number at once, and survives `EMFILE` on accept, answering again once
//! descriptors are free. One test, in its own process: it lowers the
//! process's descriptor limit to 256 (clients and server share it).
#![cfg(all(feature = "serve", unix))]

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use allocscope::CountingAlloc;

#[path = "support/http.rs"]
mod http;

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect()
}

fn metrics_answer(addr: SocketAddr) -> bool {
    let (status, body) = http::request(addr, "GET", "/metrics");
    status == 200 && String::from_utf8_lossy(&body).contains("allocscope_allocs_total ")
}

#[test]
fn silent_connections_and_running_out_of_descriptors_do_not_lock_the_endpoints_out() {
    let limit = libc::rlimit { rlim_cur: 256, rlim_max: 256 };
    // SAFETY: a valid rlimit for this process.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);

    // 150 silent clients: a server that took them all would need 150 more
    // descriptors than the limit leaves. The default server takes at most
    // 64 at once; once the clients go, it answers.
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let clients = silent(server.local_addr(), 150);
    std::thread::sleep(Duration::from_millis(300));
    drop(clients);
    assert!(metrics_answer(server.local_addr()), "the default server answers after 150 silent clients went");
    drop(server);

    // Without a connection limit to speak of, accept does run out of
    // descriptors: 100 silent clients accepted, the descriptor table then
    // filled but for one, which one more client takes, so that the
    // server's accept fails with EMFILE. The loop waits and goes on, and
    // answers once descriptors are free.
    let mut options = allocscope::serve::Options::default();
    options.max_connections = 1000;
    let server = options.start_on("127.0.0.1:0").unwrap();
    let clients = silent(server.local_addr(), 100);
    std::thread::sleep(Duration::from_millis(300));
    let mut filler = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    filler.pop();
    let last = TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop((clients, filler, last));
    assert!(metrics_answer(server.local_addr()), "the server answers again once descriptors are free");
    drop(server);

    // 100 silent clients held for good, 16 connections served at once, a
    // one-second header timeout: the server closes them in turns, and
    // `/metrics` is answered (after about 100 / 16 seconds) while they are
    // still held.
    let mut options = allocscope::serve::Options::default();
    options.max_connections = 16;
    options.header_read_timeout = Duration::from_secs(1);
    let server = options.start_on("127.0.0.1:0").unwrap();
    let mut held = silent(server.local_addr(), 100);
    assert!(metrics_answer(server.local_addr()), "answered while 100 silent clients are held");
    held[0].set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(held[0].read(&mut [0u8; 16]).unwrap(), 0, "the server closed the first silent connection");
}
