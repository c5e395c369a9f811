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

/// What a profile request asked for (Go's `net/http/pprof` parameters).
#[derive(Debug, PartialEq, Eq)]
struct ProfileQuery {
    /// `debug=1` (or 2): text instead of gzipped protobuf.
    text: bool,
    /// `seconds=N`: the difference between a profile now and one N
    /// seconds later.
    seconds: Option<u64>,
}

/// A query's parameters, percent-decoded (`%31` is `1`, `+` a space), as
/// browsers and `go tool pprof` encode them.
fn decoded(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// Whether `s` is a whole number written in ASCII digits only (no sign, no
/// space), and its value when it fits in a `u64`.
fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Parses a profile request's query; `Err` is the one-line answer of a
/// 400 naming the parameter. Other parameters (Go's `gc`) are ignored.
fn parse_query(query: Option<&str>) -> Result<ProfileQuery, String> {
    let mut q = ProfileQuery { text: false, seconds: None };
    for (name, value) in decoded(query) {
        match name.as_str() {
            "debug" => {
                q.text = match value.as_str() {
                    "0" => false,
                    "1" | "2" => true,
                    _ => return Err(format!("invalid value for \"debug\": {value:?}: must be 0, 1 or 2")),
                }
            }
            "seconds" => match digits(&value) {
                Some(s) if (1..=MAX_SECONDS).contains(&s) => q.seconds = Some(s),
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

/// Parses the switch's query: exactly one `bytes=N`, digits only, 0 (off)
/// or from [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`].
fn parse_rate(query: Option<&str>) -> Result<u64, String> {
    let mut rate = None;
    for (name, value) in decoded(query) {
        if name != "bytes" {
            return Err(format!("unknown parameter {name:?}: the only one is \"bytes\""));
        }
        if rate.is_some() {
            return Err("\"bytes\" given twice".to_owned());
        }
        rate = Some(match digits(&value) {
            Some(n) if n == 0 || (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&n) => n,
            _ => {
                return Err(format!(
                    "invalid value for \"bytes\": {value:?}: must be 0 (off) or a whole number from \
                     {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} (lower rates only through the Rust API)"
                ))
            }
        });
    }
    rate.ok_or_else(|| "missing parameter \"bytes\" (bytes per sample, 0: off)".to_owned())
}

fn plain(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A value made as the library's own work, dropped as the library's own
/// work whenever it is dropped (a window's first profile, when the client
/// goes away during the window too): its blocks are then freed in the
/// mode they were allocated in.
struct LibraryOwned<T>(ManuallyDrop<T>);

impl<T> LibraryOwned<T> {
    fn new(make: impl FnOnce() -> T) -> LibraryOwned<T> {
        LibraryOwned(ManuallyDrop::new(crate::jemalloc::library_work(make)))
    }
}

impl<T> Drop for LibraryOwned<T> {
    fn drop(&mut self) {
        // SAFETY: the value is taken once, here, and never used after.
        let value = unsafe { ManuallyDrop::take(&mut self.0) };
        crate::counters::as_library(|| drop(value));
    }
}

/// What a router's handlers share: its limits.
struct Limits {
    /// [`Options::max_windows`], for the 503's message.
    max_windows: usize,
    /// Windows open now.
    windows: Arc<Semaphore>,
    /// One profile written at a time (symbol resolution is serial anyway),
    /// on one thread of the blocking pool.
    writing: Semaphore,
    /// Profile requests waiting for or holding `writing`.
    queued: AtomicUsize,
}

/// Leaves the queue of profile requests on every exit.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn busy(message: String) -> Response {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

impl Limits {
    /// Runs `f` on the blocking pool, one profile at a time, after the
    /// ones queued before it; a 503 when [`MAX_QUEUED_PROFILES`] wait.
    async fn write<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Response> {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_PROFILES {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(busy(format!(
                "{MAX_QUEUED_PROFILES} profile requests are waiting already; try again when they are served\n"
            )));
        }
        let _queued = Queued(&self.queued);
        let _writing = self.writing.acquire().await.expect("never closed");
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| plain(StatusCode::INTERNAL_SERVER_ERROR, format!("the profile could not be written: {e}\n")))
    }
}

/// The profile a request asked for: since start-up, or the window of
/// `seconds`, waited out on a timer; gzipped pprof or text.
async fn pprof(limits: Arc<Limits>, default: SampleType, query: Option<String>) -> Response {
    let q = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message + "\n"),
    };
    let text = q.text;
    let window = match q.seconds {
        None => None,
        Some(seconds) => {
            let Ok(permit) = Arc::clone(&limits.windows).try_acquire_owned() else {
                return busy(format!(
                    "at most {} profile windows (?seconds=N) run at once; try again when one ends\n",
                    limits.max_windows
                ));
            };
            let started = Instant::now();
            let earlier = LibraryOwned::new(heap_profile);
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            Some((earlier, started.elapsed(), permit))
        }
    };
    let written = limits
        .write(move || {
            crate::symbols::produce(|| {
                let now = heap_profile();
                let profile = match &window {
                    None => now,
                    Some((earlier, elapsed, _)) => now.since(&earlier.0, *elapsed),
                };
                render(&profile, default, text)
            })
        })
        .await;
    match written {
        Ok(body) if text => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response(),
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"profile\""),
            ],
            body,
        )
            .into_response(),
        Err(response) => response,
    }
}

fn render(profile: &HeapProfile, default: SampleType, text: bool) -> Vec<u8> {
    if text {
        profile.pprof_text(default).into_bytes()
    } else {
        profile.pprof_gz_with_default(default)
    }
}

/// `/debug/pprof/`: the profiles, with links and what each is, as Go's
/// index page lists them.
async fn index(switch: bool) -> Html<String> {
    let rate = crate::profile::process_sample_rate();
    let sampling = if rate == 0 {
        "process-wide sampling is off (threads may sample on their own)".to_owned()
    } else {
        format!("process-wide sampling: one sample per {rate} bytes")
    };
    let change = if switch {
        format!(
            "; <code>PUT sample_rate?bytes=N</code> from this host changes it ({MIN_SAMPLE_RATE} to \
             {MAX_SAMPLE_RATE}, 0 turns it off)"
        )
    } else {
        "; the program sets it".to_owned()
    };
    Html(format!(
        "<html><head><title>/debug/pprof/</title></head><body>\n\
         <h1>/debug/pprof/</h1>\n<p>allocscope's heap profiles; {sampling}.</p>\n<table>\n\
         <tr><td><a href=\"allocs?debug=1\">allocs</a></td><td>A sampling of all past memory allocations \
         (<a href=\"allocs\">pprof</a>; <code>?seconds=N</code>: the last N seconds)</td></tr>\n\
         <tr><td><a href=\"heap?debug=1\">heap</a></td><td>A sampling of memory allocations of live objects \
         (<a href=\"heap\">pprof</a>)</td></tr>\n\
         <tr><td><a href=\"sample_rate\">sample_rate</a></td><td>The process-wide sampling rate in bytes per \
         sample{change}</td></tr>\n\
         <tr><td><a href=\"/metrics\">/metrics</a></td><td>Allocation counters for Prometheus</td></tr>\n\
         </table>\n<p><code>go tool pprof http://HOST/debug/pprof/heap</code></p>\n</body></html>\n"
    ))
}

async fn sample_rate() -> String {
    format!("{}\n", crate::profile::process_sample_rate())
}

/// The host part of an authority (`host`, `host:port`, `[v6]:port`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether the switch may be used through `authority` (a `Host` header):
/// an IP address, `localhost`, or a name the service allowed. A name that
/// only a web page chose (DNS rebinding) is refused.
fn allowed_host(authority: &str, allowed: &[String]) -> bool {
    let host = host_of(authority);
    host.parse::<IpAddr>().is_ok()
        || host.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| host_of(a).eq_ignore_ascii_case(host))
}

/// Why a request may not use the switch, or `None`.
fn refuse_switch(headers: &HeaderMap, allowed: &[String]) -> Option<String> {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return Some("the switch needs a Host header".to_owned());
    };
    if !allowed_host(host, allowed) {
        return Some(format!(
            "Host {host:?} is not this server's: the switch answers an IP address, localhost or a name the \
             service allows (serve::Options::allowed_hosts)"
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = ["http://", "https://"].iter().any(|scheme| origin.strip_prefix(scheme) == Some(host));
        if !own {
            return Some(format!("Origin {origin:?} is not this server's ({host}): cross-site requests are refused"));
        }
    }
    if headers.get("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none") {
        return Some("a cross-site request (Sec-Fetch-Site) is refused".to_owned());
    }
    None
}

/// `PUT /debug/pprof/sample_rate?bytes=N`: process-wide sampling at one
/// sample per N bytes, or off for 0. PUT, because a web page cannot send
/// it to another site without the CORS preflight this server never grants;
/// and only from this host's own names and origin.
async fn set_sample_rate(allowed: Arc<[String]>, headers: HeaderMap, query: Option<String>, body: Bytes) -> Response {
    if let Some(why) = refuse_switch(&headers, &allowed) {
        return plain(StatusCode::FORBIDDEN, why + "\n");
    }
    if !body.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "the switch takes no body: the rate is ?bytes=N\n".to_owned());
    }
    let bytes = match parse_rate(query.as_deref()) {
        Ok(bytes) => bytes,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message + "\n"),
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

/// A POST to the switch: refused, because a web page can send one to any
/// site (a "simple" request, no preflight).
async fn post_sample_rate() -> Response {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "use PUT /debug/pprof/sample_rate?bytes=N: a POST is a request any web page can send\n".to_owned(),
    );
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD, PUT"));
    response
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

    /// Serves [`Options::router`] on `addr` on a thread of its own; see
    /// [`start_on`].
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
    /// let mut options = allocscope::serve::Options::default();
    /// options.header_read_timeout = std::time::Duration::from_secs(2);
    /// let server = options.start_on("127.0.0.1:0")?;
    /// # drop(server);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_on(&self, addr: impl ToSocketAddrs) -> io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Timers: the header-read timeout, the windows and the accept
        // loop's back-off need them.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
        let (app, options) = (self.router(), self.clone());
        let thread = std::thread::Builder::new().name("allocscope-serve".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let _ = serve_until(listener, app, &options, async move {
                    let _ = stopped.await;
                })
                .await;
            });
        })?;
        Ok(Server { addr, stop: Some(stop), thread: Some(thread) })
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

/// Serves `app` on `listener` as `axum::serve` does, within the limits of
/// `options`: at most [`Options::max_connections`] connections at once,
/// each closed when it takes longer than [`Options::header_read_timeout`]
/// to send a request's headers; an accept error (out of file descriptors,
/// say) waits a moment and goes on, so the server answers again once
/// descriptors are free. HTTP/1.1 (as Go's `net/http` without TLS). Runs
/// until an I/O error the listener cannot recover from, which it returns.
///
/// # Errors
///
/// None in practice: accept errors are waited out.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// let options = allocscope::serve::Options::default();
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" })).merge(options.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// allocscope::serve::serve(listener, app, &options).await
/// # }
/// ```
pub async fn serve(listener: tokio::net::TcpListener, app: Router, options: &Options) -> io::Result<()> {
    serve_until(listener, app, options, std::future::pending()).await
}

/// [`serve`] until `stop` completes.
async fn serve_until(
    listener: tokio::net::TcpListener,
    app: Router,
    options: &Options,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let timeout = options.header_read_timeout;
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit.expect("never closed"),
            () = &mut stop => return Ok(()),
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_connection_error(&e) => continue,
                Err(_) => {
                    // Out of descriptors or memory: wait for some to be
                    // freed rather than spin (or die, as a runtime without
                    // timers would).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => return Ok(()),
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout);
            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
        });
    }
}

/// Errors of one connection, not of the listener (as hyper and axum tell
/// them apart).
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// The endpoints served on a thread of their own; stops when dropped.
///
/// # Examples
///
/// ```
/// # #[global_allocator]
/// # static GLOBAL: allocscope::CountingAlloc<std::alloc::System> =
/// #     allocscope::CountingAlloc::new(std::alloc::System);
/// let server: allocscope::serve::Server = allocscope::serve::start_on("127.0.0.1:0")?;
/// let addr = server.local_addr();
/// drop(server); // stops serving
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
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
/// thread of its own with a single-threaded runtime, within the limits of
/// [`Options::default`]: for programs with no HTTP server of their own.
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

/// Serves [`router`] on `addr`; see [`start`] and the threat model in the
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
    Options::default().start_on(addr)
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
        assert_eq!(q("seconds=%31"), Ok(ProfileQuery { text: false, seconds: Some(1) }), "percent-decoded");
        for bad in ["seconds=abc", "seconds=0", "seconds=-5", "seconds=301", "seconds=", "seconds=+5", "seconds=%2B5"] {
            let e = q(bad).unwrap_err();
            assert!(e.starts_with("invalid value for \"seconds\""), "{bad}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(q("debug=x").unwrap_err().contains("\"debug\""));
        assert!(q("debug=1&seconds=2").unwrap_err().contains("cannot be used together"));
    }

    #[test]
    fn the_switch_takes_digits_only_between_its_floor_and_ceiling() {
        let r = |s: &str| parse_rate(Some(s));
        assert_eq!(r("bytes=0"), Ok(0));
        assert_eq!(r("bytes=65536"), Ok(MIN_SAMPLE_RATE));
        assert_eq!(r("bytes=524288"), Ok(512 * 1024));
        assert_eq!(r("bytes=1073741824"), Ok(MAX_SAMPLE_RATE));
        assert_eq!(r("bytes=%36%35%35%33%36"), Ok(MIN_SAMPLE_RATE), "percent-decoded");
        for bad in [
            "bytes=1",
            "bytes=65535",
            "bytes=1073741825",
            "bytes=18446744073709551615",
            "bytes=+65536",
            "bytes=%2B65536",
            "bytes= 65536",
            "bytes=65536x",
            "bytes=",
            "bytes=-0",
        ] {
            let e = r(bad).unwrap_err();
            assert!(e.starts_with("invalid value for \"bytes\""), "{bad}: {e}");
        }
        assert!(parse_rate(None).unwrap_err().contains("missing parameter \"bytes\""));
        assert!(r("bytes=0&bytes=0").unwrap_err().contains("twice"));
        assert!(r("bytes=0&x=1").unwrap_err().contains("unknown parameter \"x\""));
    }

    #[test]
    fn the_switch_answers_only_this_hosts_names_and_origin() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let allowed = ["profiling.internal".to_owned()];
        let refuse = |pairs: &[(&'static str, &str)]| refuse_switch(&headers(pairs), &allowed);
        assert_eq!(refuse(&[("host", "127.0.0.1:6060")]), None);
        assert_eq!(refuse(&[("host", "[::1]:6060"), ("origin", "http://[::1]:6060")]), None);
        assert_eq!(refuse(&[("host", "localhost:6060"), ("origin", "http://localhost:6060")]), None);
        assert_eq!(refuse(&[("host", "profiling.internal:6060")]), None);
        assert!(refuse(&[]).unwrap().contains("needs a Host"));
        assert!(refuse(&[("host", "attacker.example:6060")]).unwrap().contains("is not this server's"));
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("origin", "http://attacker.example")])
            .unwrap()
            .contains("Origin \"http://attacker.example\""));
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("origin", "null")]).is_some());
        assert!(refuse(&[("host", "127.0.0.1:6060"), ("sec-fetch-site", "cross-site")]).is_some());
        assert_eq!(refuse(&[("host", "127.0.0.1:6060"), ("sec-fetch-site", "same-origin")]), None);
    }
}
