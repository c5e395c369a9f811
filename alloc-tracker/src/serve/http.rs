//! The HTTP endpoints (feature `serve`): [`router`] and [`start`]; see the
//! module docs of [`serve`](super).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::snapshot::snapshot;
use crate::profile::{heap_profile, SampleType};

/// The conventional address of Go's profiling endpoints, on loopback.
pub const DEFAULT_ADDR: &str = "127.0.0.1:6060";

/// The longest window `?seconds=N` accepts.
pub const MAX_SECONDS: u64 = 300;

/// The body of `/metrics`: [`Snapshot::prometheus_text`] of a fresh
/// snapshot, for any web framework.
///
/// [`Snapshot::prometheus_text`]: super::Snapshot::prometheus_text
pub fn metrics_text() -> String {
    snapshot().prometheus_text()
}

/// The body of `/debug/pprof/heap` (`InuseSpace`) or `/debug/pprof/allocs`
/// (`AllocSpace`): the heap profile as gzipped pprof, symbols resolved now.
/// Reading, resolving and compressing run as the library's own work: their
/// memory is in no figure of the program's and in no profile; only the
/// returned bytes are the caller's. The first call (and each call with
/// stacks not seen before) parses the program's debug info, freed again
/// before it returns: run it off the async runtime's threads.
pub fn heap_pprof(default: SampleType) -> Vec<u8> {
    crate::symbols::produce(|| heap_profile().pprof_gz_with_default(default))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics_text())
}

/// What a profile request asked for (Go's `net/http/pprof` parameters).
#[derive(Debug, PartialEq, Eq)]
struct ProfileQuery {
    /// `debug=1` (or 2): text instead of gzipped protobuf.
    text: bool,
    /// `seconds=N`: the difference between a profile now and one N
    /// seconds later.
    seconds: Option<u64>,
}

/// Parses a profile request's query; `Err` is the one-line answer of a
/// 400 naming the parameter. Other parameters (Go's `gc`) are ignored.
fn parse_query(query: Option<&str>) -> Result<ProfileQuery, String> {
    let mut q = ProfileQuery { text: false, seconds: None };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "debug" => {
                q.text = match value {
                    "0" => false,
                    "1" | "2" => true,
                    _ => return Err(format!("invalid value for \"debug\": {value:?}: must be 0, 1 or 2")),
                }
            }
            "seconds" => match value.parse::<u64>() {
                Ok(s) if (1..=MAX_SECONDS).contains(&s) => q.seconds = Some(s),
                _ => {
                    return Err(format!(
                        "invalid value for \"seconds\": {value:?}: must be a whole number from 1 to {MAX_SECONDS}"
                    ))
                }
            },
            _ => {}
        }
    }
    if q.text && q.seconds.is_some() {
        return Err("\"seconds\" and \"debug\" cannot be used together (as in Go's net/http/pprof)".to_owned());
    }
    Ok(q)
}

fn plain(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The profile a request asked for: since start-up, or the window of
/// `seconds`; gzipped pprof or text. As the library's own work, but for
/// the answer (see [`heap_pprof`]).
fn render(default: SampleType, q: &ProfileQuery) -> Vec<u8> {
    crate::symbols::produce(|| {
        let profile = match q.seconds {
            None => heap_profile(),
            Some(seconds) => {
                let started = Instant::now();
                let earlier = heap_profile();
                std::thread::sleep(Duration::from_secs(seconds));
                heap_profile().since(&earlier, started.elapsed())
            }
        };
        if q.text {
            profile.pprof_text(default).into_bytes()
        } else {
            profile.pprof_gz_with_default(default)
        }
    })
}

async fn pprof(default: SampleType, RawQuery(query): RawQuery) -> Response {
    let q = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message + "\n"),
    };
    let text = q.text;
    // Resolving symbols and waiting out a window block: a thread of the
    // runtime's blocking pool does it.
    match tokio::task::spawn_blocking(move || render(default, &q)).await {
        Ok(body) if text => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response(),
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"profile\""),
            ],
            body,
        )
            .into_response(),
        Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, format!("the profile could not be written: {e}\n")),
    }
}

/// `/debug/pprof/`: the profiles, with links and what each is, as Go's
/// index page lists them.
async fn index() -> Html<String> {
    let rate = crate::profile::process_sample_rate();
    let sampling = if rate == 0 {
        "process-wide sampling is off (threads may sample on their own)".to_owned()
    } else {
        format!("process-wide sampling: one sample per {rate} bytes")
    };
    Html(format!(
        "<html><head><title>/debug/pprof/</title></head><body>\n\
         <h1>/debug/pprof/</h1>\n<p>allocscope's heap profiles; {sampling}.</p>\n<table>\n\
         <tr><td><a href=\"allocs?debug=1\">allocs</a></td><td>A sampling of all past memory allocations \
         (<a href=\"allocs\">pprof</a>; <code>?seconds=N</code>: the last N seconds)</td></tr>\n\
         <tr><td><a href=\"heap?debug=1\">heap</a></td><td>A sampling of memory allocations of live objects \
         (<a href=\"heap\">pprof</a>)</td></tr>\n\
         <tr><td><a href=\"sample_rate\">sample_rate</a></td><td>The process-wide sampling rate in bytes per \
         sample; <code>POST sample_rate?bytes=N</code> changes it, 0 turns it off</td></tr>\n\
         <tr><td><a href=\"/metrics\">/metrics</a></td><td>Allocation counters for Prometheus</td></tr>\n\
         </table>\n<p><code>go tool pprof http://HOST/debug/pprof/heap</code></p>\n</body></html>\n"
    ))
}

async fn sample_rate() -> String {
    format!("{}\n", crate::profile::process_sample_rate())
}

/// `POST /debug/pprof/sample_rate?bytes=N`: process-wide sampling at one
/// sample per N bytes, or off for 0.
async fn set_sample_rate(RawQuery(query): RawQuery) -> Response {
    let value = query.as_deref().unwrap_or("").split('&').find_map(|p| p.strip_prefix("bytes="));
    let Some(Ok(bytes)) = value.map(str::parse::<u64>) else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid value for \"bytes\": {:?}: must be a whole number of bytes (0: off)\n",
                value.unwrap_or("")
            ),
        );
    };
    if !crate::is_installed() {
        return plain(StatusCode::CONFLICT, "allocscope's CountingAlloc is not the global allocator\n".to_owned());
    }
    if bytes == 0 {
        crate::profile::stop_process_sampling();
    } else {
        crate::profile::start_process_sampling(bytes);
    }
    plain(StatusCode::OK, format!("{}\n", crate::profile::process_sample_rate()))
}

/// The routes `/metrics`, `/debug/pprof/` (an index), `/debug/pprof/heap`,
/// `/debug/pprof/allocs` and `/debug/pprof/sample_rate`, to mount on an
/// application's own axum server (`app.merge(router())`). The profiles take
/// Go's parameters: `?debug=1` for text, `?seconds=N` (1 to
/// [`MAX_SECONDS`]) for what happened in the next N seconds (so `go tool
/// pprof -seconds N` works); a bad value gets a 400 naming the parameter.
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
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof/heap", get(|q| pprof(SampleType::InuseSpace, q)))
        .route("/debug/pprof/allocs", get(|q| pprof(SampleType::AllocSpace, q)))
        .route("/debug/pprof/sample_rate", get(sample_rate).post(set_sample_rate))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_queries_follow_gos_parameters_and_name_a_bad_one() {
        let q = |s: &str| parse_query(Some(s));
        assert_eq!(parse_query(None), Ok(ProfileQuery { text: false, seconds: None }));
        assert_eq!(q("debug=1"), Ok(ProfileQuery { text: true, seconds: None }));
        assert_eq!(q("seconds=3&gc=1"), Ok(ProfileQuery { text: false, seconds: Some(3) }));
        assert_eq!(q("seconds=300"), Ok(ProfileQuery { text: false, seconds: Some(300) }));
        for bad in ["seconds=abc", "seconds=0", "seconds=-5", "seconds=301", "seconds="] {
            let e = q(bad).unwrap_err();
            assert!(e.starts_with("invalid value for \"seconds\""), "{bad}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(q("debug=x").unwrap_err().contains("\"debug\""));
        assert!(q("debug=1&seconds=2").unwrap_err().contains("cannot be used together"));
    }
}
