//! The accept loop: hyper's HTTP/1 connections with a connection limit,
//! a header-read timeout, and a wait on accept errors; and [`Server`], the
//! one that [`start`] runs on its own thread.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) async fn serve_until(
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
pub(super) fn is_connection_error(e: &io::Error) -> bool {
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
/// [module docs](crate::serve).
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

impl Options {
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
