//! How the portal server holds its connections: its own accept loop over a
//! tokio listener, HTTP/1.1 (keep-alive) and h2c served by hyper, and the
//! limits that keep it up under abuse.
//!
//! - At most [`Limits::max_connections`] connections are open at once, and
//!   never more than the process's descriptor limit allows (minus a reserve
//!   for the database and logs). When every slot is taken, the connections
//!   that have no request in flight (idle keep-alive ones, and ones still
//!   sending a request head) are closed, the longest idle first, to make room;
//!   when every connection is busy, a new one waits in the listen queue.
//! - A connection without a request in flight is closed after
//!   [`Limits::idle_timeout`]; an HTTP/1 request head must arrive in full
//!   within [`Limits::header_read_timeout`] of its first byte.
//! - A response write that makes no progress for [`Limits::write_timeout`]
//!   (a client that stops reading) closes the connection.
//! - Stopping the server closes idle connections at once, lets requests in
//!   flight finish for up to [`Limits::shutdown_grace`], then drops the rest.
//!
//! What a request may carry (sizes, content types, Host and Origin) is
//! checked in [`super::guard`], before its body is read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, Response};
use http_body::Frame;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// Limits on connections and requests. `Limits::default()` is what
/// `chartty serve` uses; tests shorten the timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A request head (request line and headers) must arrive in full within
    /// this long of its first byte (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight (idle keep-alive, or never
    /// used) is closed after this long.
    pub idle_timeout: Duration,
    /// A request body may take this long, plus one second for every
    /// [`Limits::body_min_rate`] bytes received, before it is refused (408).
    pub body_read_timeout: Duration,
    /// Bytes per second a slow body must keep up, on average, once
    /// `body_read_timeout` has passed.
    pub body_min_rate: u64,
    /// A response write that makes no progress for this long closes the
    /// connection.
    pub write_timeout: Duration,
    /// Most connections open at once; lowered at start to what the process's
    /// descriptor limit allows.
    pub max_connections: usize,
    /// Largest request body (413 above it, refused before it is read).
    pub max_body: usize,
    /// Longest request target, path and query (414 above it).
    pub max_uri: usize,
    /// Most bytes in all request headers together, names and values (431).
    pub max_header_bytes: usize,
    /// Most request header fields (431).
    pub max_headers: usize,
    /// How long stopping the server waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// 8 MiB: a large transaction Bundle; bigger only for import-style use.
pub const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(20),
            body_min_rate: 1024,
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_body: DEFAULT_MAX_BODY,
            max_uri: 8 * 1024,
            max_header_bytes: 32 * 1024,
            max_headers: 100,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// hyper's own ceilings, above the limits checked in `guard` so that a
/// request over those gets an OperationOutcome; beyond these hyper itself
/// answers 431 (or 414) without a body and closes the connection. The read
/// buffer bounds the memory a connection can hold before its head is parsed.
const HYPER_MAX_BUF: usize = 64 * 1024;
const HYPER_MAX_HEADERS: usize = 200;
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
const H2_MAX_STREAMS: u32 = 100;

/// Descriptors kept for everything but client connections: the database and
/// its WAL and shared-memory files (one set per pooled connection), logs,
/// the runtime.
fn descriptor_reserve(soft: usize) -> usize {
    (soft / 4).max(128)
}

/// The most connections the descriptor limit allows, if it is known.
pub fn descriptor_budget() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let soft = usize::try_from(limit.current?).ok()?;
    Some(soft.saturating_sub(descriptor_reserve(soft)).max(1))
}

/// Counters of the transport, for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Connections open now.
    pub open: usize,
    /// The connection limit in force (after the descriptor limit).
    pub max_connections: usize,
    pub accepted: u64,
    /// Bytes read from clients, all connections together.
    pub bytes_read: u64,
    /// Closed for idling past `idle_timeout`.
    pub idle_closed: u64,
    /// Closed for not finishing a request head within `header_read_timeout`.
    pub header_timeouts: u64,
    /// Closed to make room for a new connection.
    pub evicted: u64,
    /// Closed because a response write stalled past `write_timeout`.
    pub write_timeouts: u64,
}

/// State shared by the accept loop, the connections and the reaper.
pub(crate) struct Shared {
    limits: Limits,
    max_connections: usize,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    bytes_read: AtomicU64,
    idle_closed: AtomicU64,
    header_timeouts: AtomicU64,
    evicted: AtomicU64,
    write_timeouts: AtomicU64,
}

impl Shared {
    /// Milliseconds since the server started, never 0 (0 means "not set").
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub(crate) fn stats(&self) -> TransportStats {
        TransportStats {
            open: self.conns.lock().map_or(0, |c| c.len()),
            max_connections: self.max_connections,
            accepted: self.accepted.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            write_timeouts: self.write_timeouts.load(Ordering::Relaxed),
        }
    }

    fn register(self: &Arc<Self>) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            inflight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            head_since: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            seen_bytes: AtomicBool::new(false),
            h2: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, conn.clone());
        }
        Registered {
            shared: self.clone(),
            id,
            conn,
        }
    }

    /// Asks up to `n` connections without a request in flight to close, the
    /// longest idle first. Returns how many were asked.
    fn shed(&self, n: usize) -> usize {
        let Ok(conns) = self.conns.lock() else {
            return 0;
        };
        let mut idle: Vec<(u64, &Arc<Conn>)> = conns
            .values()
            .filter(|c| c.is_idle() && !c.closing.load(Ordering::Relaxed))
            .map(|c| (c.idle_since.load(Ordering::Relaxed), c))
            .collect();
        let n = n.min(idle.len());
        if n == 0 {
            return 0;
        }
        idle.select_nth_unstable_by_key(n - 1, |(since, _)| *since);
        for (_, c) in &idle[..n] {
            c.ask_to_close();
        }
        self.evicted.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Closes connections idle past `idle_timeout` or slow past
    /// `header_read_timeout`.
    fn reap(&self) {
        let now = self.now_ms();
        let idle_ms = self.limits.idle_timeout.as_millis() as u64;
        let head_ms = self.limits.header_read_timeout.as_millis() as u64;
        let Ok(conns) = self.conns.lock() else {
            return;
        };
        for c in conns.values() {
            if !c.is_idle() || c.closing.load(Ordering::Relaxed) {
                continue;
            }
            let head = c.head_since.load(Ordering::Relaxed);
            if head != 0 && now.saturating_sub(head) >= head_ms {
                self.header_timeouts.fetch_add(1, Ordering::Relaxed);
                c.ask_to_close();
            } else if now.saturating_sub(c.idle_since.load(Ordering::Relaxed)) >= idle_ms {
                self.idle_closed.fetch_add(1, Ordering::Relaxed);
                c.ask_to_close();
            }
        }
    }
}

/// One connection as the reaper and the eviction see it.
struct Conn {
    /// Requests whose response has not been fully written.
    inflight: AtomicUsize,
    /// When the connection last had no request in flight (or was accepted).
    idle_since: AtomicU64,
    /// When the first byte of a request head arrived, while no request was
    /// in flight (HTTP/1 only); 0 when none is pending.
    head_since: AtomicU64,
    /// The last write found the socket full: hyper still holds part of a
    /// response (its body may already be done), so the connection is not
    /// idle.
    write_blocked: AtomicBool,
    seen_bytes: AtomicBool,
    /// Began with the HTTP/2 preface: frames between requests are not heads.
    h2: AtomicBool,
    closing: AtomicBool,
    close: Notify,
}

impl Conn {
    fn is_idle(&self) -> bool {
        self.inflight.load(Ordering::Acquire) == 0 && !self.write_blocked.load(Ordering::Acquire)
    }

    fn ask_to_close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.close.notify_one();
    }
}

/// Removes a connection from the registry when its task ends, however it ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.shared.conns.lock() {
            conns.remove(&self.id);
        }
    }
}

/// A request in flight on a connection: counted from the moment hyper hands
/// it over until its response body is dropped (fully written, or the
/// connection is gone).
struct Busy {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Busy {
    fn new(conn: Arc<Conn>, shared: Arc<Shared>) -> Busy {
        conn.inflight.fetch_add(1, Ordering::AcqRel);
        conn.head_since.store(0, Ordering::Relaxed);
        Busy { conn, shared }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn
            .idle_since
            .store(self.shared.now_ms(), Ordering::Relaxed);
        self.conn.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight.
struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router, per connection, counting requests in flight.
#[derive(Clone)]
struct ConnService {
    router: Router,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    /// Where the connection comes from, for the audit trail.
    peer: std::net::SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.conn.clone(), self.shared.clone());
        let mut router = self.router.clone();
        let peer = self.peer;
        Box::pin(async move {
            use tower_service::Service as _;
            std::future::poll_fn(|cx| {
                tower_service::Service::<Request<Body>>::poll_ready(&mut router, cx)
            })
            .await
            .unwrap_or_else(|e| match e {});
            let mut req = req.map(Body::new);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let response = router.call(req).await.unwrap_or_else(|e| match e {});
            Ok(response.map(|inner| TrackedBody { inner, _busy: busy }))
        })
    }
}

/// A client socket that counts what it reads, notes when a request head
/// starts, and gives up on writes that stall.
struct Io {
    inner: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    write_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Io {
    fn on_read(&self, bytes: &[u8]) {
        self.shared
            .bytes_read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if !self.conn.seen_bytes.swap(true, Ordering::Relaxed) && bytes.starts_with(b"PRI *") {
            self.conn.h2.store(true, Ordering::Relaxed);
        }
        if self.conn.is_idle()
            && !self.conn.h2.load(Ordering::Relaxed)
            && self.conn.head_since.load(Ordering::Relaxed) == 0
        {
            self.conn
                .head_since
                .store(self.shared.now_ms(), Ordering::Relaxed);
        }
    }

    /// A write returned Pending: has it been stuck for too long?
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let timeout = self.write_timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        self.shared.write_timeouts.fetch_add(1, Ordering::Relaxed);
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading the response",
        ))
    }

    fn after_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match r {
            Poll::Pending => {
                self.conn.write_blocked.store(true, Ordering::Release);
                match self.poll_stall(cx) {
                    Poll::Ready(e) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            done => {
                if self.stalled.take().is_some() {
                    self.conn.write_blocked.store(false, Ordering::Release);
                }
                done
            }
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && buf.filled().len() > before
        {
            self.on_read(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.after_write(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.after_write(cx, r)
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Timed by the reaper from the first byte of a head, not from the
        // end of the previous response (that is the idle timeout's job).
        .header_read_timeout(None::<Duration>)
        .max_buf_size(HYPER_MAX_BUF.max(limits.max_uri + limits.max_header_bytes + 1024))
        .max_headers(HYPER_MAX_HEADERS.max(limits.max_headers + 1));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(
            H2_MAX_HEADER_LIST.max(u32::try_from(limits.max_header_bytes * 2).unwrap_or(u32::MAX)),
        );
    b
}

/// The connection limit in force: the configured one, or less when the
/// descriptor limit is lower.
fn effective_max_connections(limits: &Limits) -> usize {
    let wanted = limits.max_connections.max(1);
    match descriptor_budget() {
        Some(budget) if budget < wanted => {
            tracing::info!(
                wanted,
                allowed = budget,
                "the descriptor limit (ulimit -n) lowers the connection limit"
            );
            budget
        }
        _ => wanted,
    }
}

/// The transport of a running server: its shared state and the task that
/// runs it until `stop` turns true.
pub(crate) struct Transport {
    pub(crate) shared: Arc<Shared>,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// Serves `router` on `listener` until `stop` turns true (or its sender is
/// dropped), then shuts down gracefully.
pub(crate) fn spawn(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: watch::Receiver<bool>,
) -> Transport {
    let max_connections = effective_max_connections(&limits);
    let shared = Arc::new(Shared {
        max_connections,
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
        idle_closed: AtomicU64::new(0),
        header_timeouts: AtomicU64::new(0),
        evicted: AtomicU64::new(0),
        write_timeouts: AtomicU64::new(0),
        limits,
    });
    let task = tokio::spawn(run(listener, router, shared.clone(), stop));
    Transport { shared, task }
}

fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Resolves when the server is told to stop (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Accept errors that mean "out of descriptors": make room and retry.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error()
        || code == rustix::io::Errno::NFILE.raw_os_error()
        || code == rustix::io::Errno::NOBUFS.raw_os_error()
        || code == rustix::io::Errno::NOMEM.raw_os_error())
}

async fn run(
    listener: TcpListener,
    router: Router,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let limits = shared.limits.clone();
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(shared.max_connections));
    // Under pressure, make room for a few connections at a time.
    let shed_batch = (shared.max_connections / 64).max(1);
    let mut tasks = JoinSet::new();

    // The reaper: timeouts of connections without a request in flight.
    let tick = (limits.idle_timeout.min(limits.header_read_timeout) / 8)
        .clamp(Duration::from_millis(5), Duration::from_secs(1));
    let reaper = {
        let shared = shared.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => shared.reap(),
                    _ = stopped(&mut stop) => break,
                }
            }
        })
    };

    let mut last_warning: Option<Instant> = None;
    while !stopping(&stop) {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped(&mut stop) => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if out_of_descriptors(&e) {
                    shared.shed(shed_batch);
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "out of descriptors; closing idle connections");
                        last_warning = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Other accept errors (a connection reset before it was
                // accepted) concern that connection only.
                continue;
            }
        };
        // Every slot taken: close idle connections to make room, and while
        // all are busy, wait (new connections queue in the listen backlog),
        // looking again as requests finish and connections turn idle.
        let permit = loop {
            match slots.clone().try_acquire_owned() {
                Ok(p) => break Some(p),
                Err(_) => {
                    shared.shed(shed_batch);
                    tokio::select! {
                        p = slots.clone().acquire_owned() => break p.ok(),
                        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                        _ = stopped(&mut stop) => break None,
                    }
                }
            }
        };
        let Some(permit) = permit else { break };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let registered = shared.register();
        tasks.spawn(serve_connection(
            stream,
            peer,
            registered,
            router.clone(),
            builder.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);

    // Every connection got the stop signal: idle ones close at once, the
    // others after their requests in flight, within the grace period.
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "requests still running after the shutdown grace period were dropped"
        );
        tasks.shutdown().await;
    }
    reaper.abort();
    let _ = reaper.await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    registered: Registered,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    mut stop: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let conn = registered.conn.clone();
    let shared = registered.shared.clone();
    let io = Io {
        inner: stream,
        conn: conn.clone(),
        shared: shared.clone(),
        write_timeout: shared.limits.write_timeout,
        stalled: None,
    };
    let service = ConnService {
        router,
        conn: conn.clone(),
        shared,
        peer,
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            r = connection.as_mut() => {
                if let Err(e) = r {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = conn.close.notified(), if !draining => {
                // Nothing in flight: close now. A request that started in
                // the meantime is answered first.
                if conn.is_idle() {
                    break;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = stopped(&mut stop), if !draining => {
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    drop(registered);
}
