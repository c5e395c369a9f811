//! The HTTP endpoints (feature `serve`): [`router`], [`serve`] and
//! [`start`], with the limits of [`Options`]; see the module docs of
//! [`serve`](super) for what they expose and to whom.

use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, Request};
use axum::http::{header, HeaderMap, StatusCode, Version};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use super::snapshot::snapshot;
use crate::profile::{heap_profile, HeapProfile, SampleType};

/// The conventional address of Go's profiling endpoints, on loopback.
pub const DEFAULT_ADDR: &str = "127.0.0.1:6060";

/// The longest window `?seconds=N` accepts.
pub const MAX_SECONDS: u64 = 300;

/// The lowest rate, in bytes per sample, that `PUT
/// /debug/pprof/sample_rate` sets (64 KiB, an eighth of the default):
/// lower rates, down to 1 (every allocation), only through
/// [`start_process_sampling`](crate::profile::start_process_sampling).
pub const MIN_SAMPLE_RATE: u64 = 64 * 1024;

/// The highest rate that `PUT /debug/pprof/sample_rate` sets (1 GiB per
/// sample).
pub const MAX_SAMPLE_RATE: u64 = 1 << 30;

/// Profile requests that may wait for the one profile being written at a
/// time; beyond, a 503.
const MAX_QUEUED_PROFILES: usize = 16;

/// How the endpoints and the server that [`serve`] runs guard the process:
/// what a client may change, how much work it may start, how long it may
/// hold a connection. `Options::default()` is what [`router`], [`start`]
/// and [`start_on`] use.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let mut options = allocscope::serve::Options::default();
/// options.sample_rate_switch = false; // a read-only surface
/// options.max_connections = 16;
/// let server = options.start_on("127.0.0.1:0")?;
/// assert!(server.local_addr().ip().is_loopback());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Whether `PUT /debug/pprof/sample_rate?bytes=N` exists (default
    /// `true`); `false` leaves the rate to the program.
    pub sample_rate_switch: bool,
    /// Host names that the switch accepts in `Host` and `Origin` besides IP
    /// addresses and `localhost` (default none): the name a service is
    /// reached by on a private network, say. Any other name is refused, so
    /// that a web page whose own name resolves to the server (DNS
    /// rebinding) cannot use it.
    pub allowed_hosts: Vec<String>,
    /// Profile windows (`?seconds=N`) waiting at once (default 4); beyond,
    /// a 503 that names the limit. They wait on timers, not threads.
    pub max_windows: usize,
    /// Connections that [`serve`] serves at once (default 64); more wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
    /// How long [`serve`] gives a connection to send a request's headers,
    /// the first request's and each next one's (default 10 s): a client
    /// that connects and sends nothing is closed then.
    pub header_read_timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            sample_rate_switch: true,
            allowed_hosts: Vec::new(),
            max_windows: 4,
            max_connections: 64,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The body of `/metrics`: [`Snapshot::prometheus_text`] of a fresh
/// snapshot, for any web framework.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// assert!(allocscope::serve::metrics_text().contains("allocscope_allocs_total "));
/// ```
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
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let gz = allocscope::serve::heap_pprof(allocscope::profile::SampleType::InuseSpace);
/// assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
/// ```
pub fn heap_pprof(default: SampleType) -> Vec<u8> {
    crate::symbols::produce(|| heap_profile().pprof_gz_with_default(default))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics_text())
}

/// Refuses HTTP/1.1 requests without `Host` (RFC 9112, 3.2: a 400).
async fn require_host(request: Request, next: Next) -> Response {
    if request.version() == Version::HTTP_11 && !request.headers().contains_key(header::HOST) {
        return plain(StatusCode::BAD_REQUEST, "an HTTP/1.1 request needs a Host header\n".to_owned());
    }
    next.run(request).await
}

impl Options {
    /// The routes (see [`router`]) with these options' limits and switch.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut options = allocscope::serve::Options::default();
    /// options.sample_rate_switch = false;
    /// let app: axum::Router = axum::Router::new().merge(options.router());
    /// # drop(app);
    /// ```
    pub fn router(&self) -> Router {
        let limits = Arc::new(Limits {
            max_windows: self.max_windows,
            windows: Arc::new(Semaphore::new(self.max_windows)),
            writing: Semaphore::new(1),
            queued: AtomicUsize::new(0),
        });
        let (heap, allocs) = (Arc::clone(&limits), limits);
        let switch = self.sample_rate_switch;
        let rate = if switch {
            let allowed: Arc<[String]> = self.allowed_hosts.clone().into();
            get(sample_rate)
                .put(move |headers, RawQuery(q), body| set_sample_rate(allowed, headers, q, body))
                .post(post_sample_rate)
        } else {
            get(sample_rate)
        };
        Router::new()
            .route("/metrics", get(metrics))
            .route(
                "/debug/pprof",
                get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/debug/pprof/")]) }),
            )
            .route("/debug/pprof/", get(move || index(switch)))
            .route("/debug/pprof/heap", get(move |RawQuery(q)| pprof(heap, SampleType::InuseSpace, q)))
            .route("/debug/pprof/allocs", get(move |RawQuery(q)| pprof(allocs, SampleType::AllocSpace, q)))
            .route("/debug/pprof/sample_rate", rate)
            .layer(middleware::from_fn(require_host))
    }
}

/// The routes `/metrics`, `/debug/pprof/` (an index; `/debug/pprof`
/// redirects there), `/debug/pprof/heap`, `/debug/pprof/allocs` and
/// `/debug/pprof/sample_rate`, with [`Options::default`], to mount on an
/// application's own axum server (`app.merge(router())`, served by
/// [`serve`] for its connection limits). The profiles take Go's
/// parameters: `?debug=1` for text, `?seconds=N` (1 to [`MAX_SECONDS`])
/// for what happened in the next N seconds (so `go tool pprof -seconds N`
/// works); a bad value gets a 400 naming the parameter. The handlers need a
/// tokio runtime with timers (`#[tokio::main]`'s has them).
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
    Options::default().router()
}

mod profiles;
mod query;
mod server;
mod switch;

use profiles::{index, plain, pprof, Limits};
use query::{parse_query, parse_rate};
pub use server::{serve, start, start_on, Server};
use switch::{post_sample_rate, sample_rate, set_sample_rate};
