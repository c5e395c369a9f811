//! The HTTP endpoints (feature `serve`): [`router`] and [`start`]; see the
//! module docs of [`serve`](super).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::snapshot::snapshot;
use crate::profile::{heap_profile, SampleType};

/// The conventional address of Go's profiling endpoints, on loopback.
pub const DEFAULT_ADDR: &str = "127.0.0.1:6060";

/// The body of `/metrics`: [`Snapshot::prometheus_text`] of a fresh
/// snapshot, for any web framework.
///
/// [`Snapshot::prometheus_text`]: super::Snapshot::prometheus_text
pub fn metrics_text() -> String {
    snapshot().prometheus_text()
}

/// The body of `/debug/pprof/heap` (`InuseSpace`) or `/debug/pprof/allocs`
/// (`AllocSpace`): the heap profile as gzipped pprof, symbols resolved now
/// (the first call loads the program's debug info: run it off the async
/// runtime's threads).
pub fn heap_pprof(default: SampleType) -> Vec<u8> {
    heap_profile().pprof_gz_with_default(default)
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics_text())
}

async fn pprof(default: SampleType) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || heap_pprof(default)).await.unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"profile\""),
        ],
        body,
    )
}

/// The routes `/metrics`, `/debug/pprof/heap` and `/debug/pprof/allocs`, to
/// mount on an application's own axum server (`app.merge(router())`).
///
/// # Examples
///
/// ```
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .merge(allocscope::serve::router());
/// # drop(app);
/// ```
pub fn router() -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/debug/pprof/heap", get(|| pprof(SampleType::InuseSpace)))
        .route("/debug/pprof/allocs", get(|| pprof(SampleType::AllocSpace)))
}

/// The endpoints served on a thread of their own; stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the port the system chose, for port
    /// 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves [`router`] on [`DEFAULT_ADDR`] (loopback, port 6060), on a
/// thread of its own with a single-threaded runtime: for programs with no
/// HTTP server of their own.
///
/// # Errors
///
/// If the address cannot be bound (in use, say).
///
/// # Examples
///
/// ```no_run
/// let server = allocscope::serve::start()?;
/// println!("go tool pprof http://{}/debug/pprof/heap", server.local_addr());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn start() -> io::Result<Server> {
    start_on(DEFAULT_ADDR)
}

/// Serves [`router`] on `addr`; see [`start`] and the security note in the
/// [module docs](super).
///
/// # Errors
///
/// If the address cannot be resolved or bound.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let server = allocscope::serve::start_on("127.0.0.1:0")?;
/// assert!(server.local_addr().ip().is_loopback());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn start_on(addr: impl ToSocketAddrs) -> io::Result<Server> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let thread = std::thread::Builder::new().name("allocscope-serve".into()).spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
            let _ = axum::serve(listener, router())
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
    })?;
    Ok(Server { addr, stop: Some(stop), thread: Some(thread) })
}
