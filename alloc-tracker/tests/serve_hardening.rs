//! What a client of the endpoints can and cannot do: a web page cannot
//! switch sampling (no simple cross-site request, no foreign `Host` or
//! `Origin`, digits only between a floor and a ceiling), profile windows
//! wait on timers rather than on the application's blocking pool and are
//! bounded in number, and the small HTTP points Go's `net/http/pprof`
//! users expect. Against servers on 127.0.0.1.
#![cfg(feature = "serve")]

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use allocscope::CountingAlloc;

#[path = "support/http.rs"]
mod http;

use http::{exchange, request};

#[global_allocator]
static GLOBAL: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

/// A request to the switch with the given method, `Host`, extra headers
/// and body.
fn switch(addr: SocketAddr, method: &str, host: &str, query: &str, extra: &str, body: &str) -> http::Answer {
    exchange(
        addr,
        &format!(
            "{method} /debug/pprof/sample_rate?{query} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn a_web_page_cannot_switch_sampling_and_the_service_can() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let own = addr.to_string();
    let rate = allocscope::profile::process_sample_rate;
    assert_eq!(rate(), 0);

    // The request any page sends cross-site without a preflight: a POST
    // with a foreign Origin, text/plain, an empty body.
    let simple = "Origin: http://attacker.example\r\nContent-Type: text/plain\r\n";
    let a = switch(addr, "POST", &own, "bytes=1", simple, "");
    assert_eq!(a.status, 405, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.head.to_ascii_lowercase().contains("allow: get, head, put"), "{}", a.head);
    // A page whose own name resolves to the server (DNS rebinding).
    let a = switch(addr, "PUT", &format!("attacker.example:{}", addr.port()), "bytes=65536", "", "");
    assert_eq!(a.status, 403);
    assert!(String::from_utf8_lossy(&a.body).contains("Host \"attacker.example:"));
    // A foreign Origin, or a browser's cross-site fetch.
    assert_eq!(switch(addr, "PUT", &own, "bytes=65536", "Origin: http://attacker.example\r\n", "").status, 403);
    assert_eq!(switch(addr, "PUT", &own, "bytes=65536", "Sec-Fetch-Site: cross-site\r\n", "").status, 403);
    // Strict values: digits only, the floor and the ceiling, no body.
    for query in ["bytes=1", "bytes=65535", "bytes=+65536", "bytes=18446744073709551615", "bytes=1073741825", "bytes=x"]
    {
        let a = switch(addr, "PUT", &own, query, "", "");
        let body = String::from_utf8_lossy(&a.body).into_owned();
        assert_eq!(a.status, 400, "{query}: {body}");
        assert!(body.starts_with("invalid value for \"bytes\"") && body.lines().count() == 1, "{query}: {body}");
    }
    assert_eq!(switch(addr, "PUT", &own, "bytes=65536", "", "bytes=1").status, 400);
    assert_eq!(rate(), 0, "no refused request changed the rate");

    // The service's own request: PUT from its own host and origin.
    let a = switch(addr, "PUT", &own, "bytes=65536", &format!("Origin: http://{own}\r\n"), "");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"65536\n"[..]));
    assert_eq!(rate(), 65536);
    let a = switch(addr, "PUT", &format!("localhost:{}", addr.port()), "bytes=0", "", "");
    assert_eq!((a.status, a.body.as_slice()), (200, &b"0\n"[..]));
    assert_eq!(rate(), 0);
}

#[test]
fn a_router_without_the_switch_only_reads_the_rate() {
    let mut options = allocscope::serve::Options::default();
    options.sample_rate_switch = false;
    let server = options.start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    assert_eq!(switch(addr, "PUT", &addr.to_string(), "bytes=65536", "", "").status, 405);
    assert_eq!(request(addr, "GET", "/debug/pprof/sample_rate").0, 200);
    let (_, index) = request(addr, "GET", "/debug/pprof/");
    assert!(String::from_utf8_lossy(&index).contains("the program sets it"));
}

/// Profile windows of 60 seconds, mounted the way the README mounts the
/// router (`axum::serve` on the application's runtime), on a runtime whose
/// blocking pool has one thread: while they wait, the application's own
/// `spawn_blocking` work and a plain profile are still served, and a fifth
/// window is refused with the limit named.
#[test]
fn profile_windows_wait_on_timers_not_on_the_applications_blocking_pool() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, allocscope::serve::router()).await });

    // Windows of 60 seconds held open, never read, until a one-second
    // window is refused: then the limit's four wait at once (a one-second
    // window let through before them took one place for its second).
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 12, "no window was refused with {} open", held.len());
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET /debug/pprof/allocs?seconds=60 HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        held.push(s);
        std::thread::sleep(Duration::from_millis(100));
        let a = exchange(
            addr,
            &format!("GET /debug/pprof/heap?seconds=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
        );
        if a.status == 503 {
            break String::from_utf8_lossy(&a.body).into_owned();
        }
    };
    assert!(refused.contains("at most 4 profile windows"), "{refused}");

    // The application's blocking pool is free: its one thread runs this
    // within 10 seconds, while the windows have 60 to go.
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn_blocking(move || tx.send(7).unwrap());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(7), "the blocking pool is held by the windows");
    // And a plain profile is written meanwhile (its one blocking thread).
    let (status, gz) = request(addr, "GET", "/debug/pprof/heap");
    assert_eq!((status, &gz[..2]), (200, &[0x1f, 0x8b][..]));
    drop(held);
    runtime.shutdown_timeout(Duration::from_secs(1));
}

#[test]
fn small_http_points_as_gos_net_http_pprof() {
    let server = allocscope::serve::start_on("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // The query is percent-decoded: `?seconds=%31` is one second.
    let (status, gz) = request(addr, "GET", "/debug/pprof/allocs?seconds=%31");
    assert_eq!((status, &gz[..2]), (200, &[0x1f, 0x8b][..]));
    // `/debug/pprof` redirects to the index.
    let a = exchange(addr, &format!("GET /debug/pprof HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"));
    assert_eq!(a.status, 301);
    assert!(a.head.to_ascii_lowercase().contains("location: /debug/pprof/"), "{}", a.head);
    // HTTP/1.1 needs a Host (HTTP/1.0 does not).
    let a = exchange(addr, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(a.status, 400);
    assert!(String::from_utf8_lossy(&a.body).contains("needs a Host header"));
    assert_eq!(exchange(addr, "GET /metrics HTTP/1.0\r\n\r\n").status, 200);
}
