//! The profile endpoints' work: one profile written at a time on one
//! blocking thread, a bounded queue, `?seconds=N` windows on timers, and
//! the first profile of a window held as the library's own memory.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn plain(status: StatusCode, body: String) -> Response {
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
pub(super) struct Limits {
    /// [`Options::max_windows`], for the 503's message.
    pub(super) max_windows: usize,
    /// Windows open now.
    pub(super) windows: Arc<Semaphore>,
    /// One profile written at a time (symbol resolution is serial anyway),
    /// on one thread of the blocking pool.
    pub(super) writing: Semaphore,
    /// Profile requests waiting for or holding `writing`.
    pub(super) queued: AtomicUsize,
}

/// Leaves the queue of profile requests on every exit.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) fn busy(message: String) -> Response {
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
pub(super) async fn pprof(limits: Arc<Limits>, default: SampleType, query: Option<String>) -> Response {
    let q = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message + "\n"),
    };
    let (text, addresses_only) = (q.text, q.addresses_only);
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
                render(&profile, default, text, addresses_only)
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

pub(super) fn render(profile: &HeapProfile, default: SampleType, text: bool, addresses_only: bool) -> Vec<u8> {
    if text {
        profile.pprof_text(default).into_bytes()
    } else if addresses_only {
        profile.pprof_gz_addresses_only(default)
    } else {
        profile.pprof_gz_with_default(default)
    }
}

/// `/debug/pprof/`: the profiles, with links and what each is, as Go's
/// index page lists them.
pub(super) async fn index(switch: bool) -> Html<String> {
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
