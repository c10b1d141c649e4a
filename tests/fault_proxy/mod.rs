//! A fault-injecting TCP proxy for tests and benches. It listens on
//! loopback, forwards each connection to a real server, reads the HTTP/1.1
//! messages going both ways, and between them can make the link bad:
//!
//! - [`Link`]: one-way latency with jitter and a bandwidth cap, for every
//!   connection, changeable while requests run ([`FaultProxy::set_link`]);
//! - [`Fault`]: what happens to one request — passed, stalled, cut in the
//!   middle of the answer, cut after the server answered (the write
//!   happened, the client never hears), or answered by the proxy with a
//!   status such as `503` and `Retry-After`. Chosen per request by
//!   [`FaultProxy::set`], [`FaultProxy::queue`] or a schedule closure
//!   ([`FaultProxy::schedule`]) that sees the request and the connection.
//!
//! Every random choice (jitter, a schedule's draws) comes from a seed, so a
//! failing run replays: the seed is printed when a test holding the proxy
//! panics, and `FAULT_PROXY_SEED=<seed>` makes the next run use it.
//!
//! Messages are stored and forwarded whole (the proxy must see a whole
//! answer to cut it after the server committed), which is fine for the
//! sizes chartty exchanges. HTTP/1.1 only: chartty's client speaks HTTP/2
//! only over TLS, which the proxy does not see into.
//!
//! Include it with `mod fault_proxy;` from a test, or from a bench with
//! `#[path = "../tests/fault_proxy/mod.rs"] mod fault_proxy;`.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// The variable that replays a seed.
pub const SEED_VAR: &str = "FAULT_PROXY_SEED";

/// What the link does to every byte, both ways.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Link {
    /// Added to each message (and to a connection's handshake, twice).
    pub one_way: Duration,
    /// A further delay drawn between zero and this, per message.
    pub jitter: Duration,
    /// Bytes per second in each direction, shared by all connections.
    pub bytes_per_sec: Option<u64>,
}

impl Link {
    /// A round trip of `rtt`, half each way.
    pub fn rtt(rtt: Duration) -> Link {
        Link {
            one_way: rtt / 2,
            ..Link::default()
        }
    }

    pub fn with_jitter(self, jitter: Duration) -> Link {
        Link { jitter, ..self }
    }

    pub fn with_bandwidth(self, bytes_per_sec: u64) -> Link {
        Link {
            bytes_per_sec: Some(bytes_per_sec.max(1)),
            ..self
        }
    }

    fn delay(&self, rng: &mut Rng) -> Duration {
        self.one_way + self.jitter.mul_f64(rng.unit())
    }
}

/// What happens to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded, and its answer delivered.
    Pass,
    /// Read and never answered; the connection stays open until the
    /// client gives up on it.
    Stall,
    /// The answer's head and this many bytes of its body are delivered
    /// (always less than the whole answer), then the connection is reset.
    ResetMidBody { after: usize },
    /// Forwarded; the server's whole answer is read, then the client's
    /// connection is reset without any of it.
    ResetAfterCommit,
    /// Answered by the proxy with this status (and `Retry-After` in
    /// seconds), without reaching the server.
    Status { code: u16, retry_after: Option<u64> },
}

impl Fault {
    /// `503 Service Unavailable` with `Retry-After: secs`.
    pub fn unavailable(secs: u64) -> Fault {
        Fault::Status {
            code: 503,
            retry_after: Some(secs),
        }
    }

    /// `429 Too Many Requests` with `Retry-After: secs`.
    pub fn too_many(secs: u64) -> Fault {
        Fault::Status {
            code: 429,
            retry_after: Some(secs),
        }
    }
}

/// A request as the schedule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// Requests the proxy has read before this one (never reset).
    pub seq: u64,
    /// The connection, numbered from 0 in order of opening.
    pub conn: u64,
    /// Requests read on this connection before this one.
    pub on_conn: u64,
    pub method: String,
    /// The request target as sent (`/fhir/Patient?name=...`).
    pub target: String,
    /// When its first byte reached the proxy.
    pub at: Instant,
}

/// One request read and what was done to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub request: RequestInfo,
    pub fault: Fault,
    /// Its place in the chain of dependent exchanges (see [`Stats`]).
    pub round: u32,
}

/// Counts since the last [`FaultProxy::reset_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: u64,
    /// Request heads read from clients, whatever was done to them.
    pub requests: u64,
    /// Requests given a fault other than [`Fault::Pass`].
    pub faulted: u64,
    /// Requests whose client hung up before an answer (a stall given up on).
    pub abandoned: u64,
    /// Bytes read from clients, as on the wire.
    pub bytes_up: u64,
    /// Bytes written to clients, as on the wire (compressed where the
    /// server compressed).
    pub bytes_down: u64,
    /// The longest chain of dependent exchanges: a request depends on every
    /// answer that had fully arrived before its first byte was sent, and a
    /// new connection's handshake is one exchange of its own.
    pub round_trips: u32,
}

type Schedule = Box<dyn FnMut(&RequestInfo, &mut Rng) -> Fault + Send>;

struct Control {
    link: Link,
    queue: VecDeque<Fault>,
    schedule: Schedule,
}

#[derive(Default)]
struct State {
    stats: Stats,
    /// Bumped by a stats reset; work begun before it does not count after.
    epoch: u64,
    /// The deepest round of any answer delivered in this epoch.
    delivered: u32,
    /// Each open connection's handshake round and its epoch.
    handshakes: HashMap<u64, (u64, u32)>,
    next_seq: u64,
    history: Vec<Exchange>,
}

struct Shared {
    seed: u64,
    control: Mutex<Control>,
    state: Mutex<State>,
    /// When each direction of the link is next free (bandwidth cap).
    free_at: [Mutex<Instant>; 2],
    /// The connections open now, to cut them all.
    open: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
}

/// The part of an exchange's bookkeeping its answer needs.
#[derive(Clone, Copy)]
struct Ticket {
    epoch: u64,
    round: u32,
}

#[derive(Clone, Copy)]
enum Dir {
    Up = 0,
    Down = 1,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the proxy's counts.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn link(&self) -> Link {
        lock(&self.control).link
    }

    fn opened(&self, conn: u64) {
        let mut s = lock(&self.state);
        s.stats.connections += 1;
        let round = s.delivered + 1;
        s.stats.round_trips = s.stats.round_trips.max(round);
        let epoch = s.epoch;
        s.handshakes.insert(conn, (epoch, round));
    }

    fn closed(&self, conn: u64) {
        lock(&self.state).handshakes.remove(&conn);
    }

    fn bytes(&self, dir: Dir, n: usize) {
        let mut s = lock(&self.state);
        match dir {
            Dir::Up => s.stats.bytes_up += n as u64,
            Dir::Down => s.stats.bytes_down += n as u64,
        }
    }

    /// A request's first byte arrived: its round, from what had been
    /// delivered by then.
    fn started(&self, conn: u64) -> Ticket {
        let mut s = lock(&self.state);
        let handshake = match s.handshakes.get(&conn) {
            Some(&(epoch, round)) if epoch == s.epoch => round,
            _ => 0,
        };
        let round = s.delivered.max(handshake) + 1;
        s.stats.round_trips = s.stats.round_trips.max(round);
        Ticket {
            epoch: s.epoch,
            round,
        }
    }

    fn delivered(&self, t: Ticket) {
        let mut s = lock(&self.state);
        if s.epoch == t.epoch {
            s.delivered = s.delivered.max(t.round);
        }
    }

    fn abandoned(&self) {
        lock(&self.state).stats.abandoned += 1;
    }

    /// The fault for a request just read, recorded.
    fn decide(&self, conn: u64, on_conn: u64, head: &Head, at: Instant, t: Ticket) -> Fault {
        let seq = {
            let mut s = lock(&self.state);
            s.next_seq += 1;
            s.next_seq - 1
        };
        let request = RequestInfo {
            seq,
            conn,
            on_conn,
            method: head.method().to_string(),
            target: head.target().to_string(),
            at,
        };
        let fault = {
            let mut c = lock(&self.control);
            match c.queue.pop_front() {
                Some(f) => f,
                None => {
                    let mut rng =
                        Rng::new(self.seed ^ (seq + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    (c.schedule)(&request, &mut rng)
                }
            }
        };
        let mut s = lock(&self.state);
        s.stats.requests += 1;
        if fault != Fault::Pass {
            s.stats.faulted += 1;
        }
        s.history.push(Exchange {
            request,
            fault: fault.clone(),
            round: t.round,
        });
        fault
    }

    /// Wait until the link has carried `n` more bytes in `dir`.
    async fn pace(&self, dir: Dir, n: usize, bytes_per_sec: u64) {
        let cost = Duration::from_secs_f64(n as f64 / bytes_per_sec as f64);
        let until = {
            let mut free = lock(&self.free_at[dir as usize]);
            *free = (*free).max(Instant::now()) + cost;
            *free
        };
        tokio::time::sleep_until(until).await;
    }

    /// Carry `bytes` across the link: latency first, then as fast as the
    /// bandwidth allows.
    async fn cross(
        &self,
        rng: &mut Rng,
        dir: Dir,
        to: &mut TcpStream,
        bytes: &[u8],
    ) -> io::Result<()> {
        let link = self.link();
        tokio::time::sleep(link.delay(rng)).await;
        let step = match link.bytes_per_sec {
            // About fifty writes a second, in pieces no smaller than a
            // small packet.
            Some(bps) => (bps / 50).clamp(256, 16 * 1024) as usize,
            None => bytes.len().max(1),
        };
        for piece in bytes.chunks(step) {
            if let Some(bps) = link.bytes_per_sec {
                self.pace(dir, piece.len(), bps).await;
            }
            to.write_all(piece).await?;
            if let Dir::Down = dir {
                self.bytes(Dir::Down, piece.len());
            }
        }
        to.flush().await
    }
}

/// The proxy. Dropping it stops accepting; open connections end with
/// their clients.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on `127.0.0.1:0` and forward to `upstream`, on the current
    /// tokio runtime (a bench without one: `rt.block_on(FaultProxy::start(..))`
    /// and keep `rt`). `seed` drives every random choice unless
    /// [`SEED_VAR`] names another.
    pub async fn start(upstream: SocketAddr, seed: u64) -> FaultProxy {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(seed);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the fault proxy binds a loopback port");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            seed,
            control: Mutex::new(Control {
                link: Link::default(),
                queue: VecDeque::new(),
                schedule: Box::new(|_, _| Fault::Pass),
            }),
            state: Mutex::new(State::default()),
            free_at: [Mutex::new(Instant::now()), Mutex::new(Instant::now())],
            open: Mutex::new(HashMap::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, shared.clone()));
        FaultProxy {
            addr,
            shared,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `url` with its scheme, host and port replaced by the proxy's
    /// (a server's base URL, reached through the proxy).
    pub fn rebase(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).expect("a URL to rebase");
        u.set_ip_host(self.addr.ip()).expect("an http URL");
        u.set_port(Some(self.addr.port())).expect("an http URL");
        u.as_str().trim_end_matches('/').to_string()
    }

    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The link from now on, for new messages of every connection.
    pub fn set_link(&self, link: Link) {
        lock(&self.shared.control).link = link;
    }

    /// Every request from now on (after those queued) gets `fault`.
    pub fn set(&self, fault: Fault) {
        self.schedule(move |_, _| fault.clone());
    }

    /// The next requests get these faults, one each, before the schedule.
    pub fn queue(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.shared.control).queue.extend(faults);
    }

    /// Decide each request's fault (after those queued) with `f`, given the
    /// request and a generator seeded from the proxy's seed and the
    /// request's `seq`.
    pub fn schedule(&self, f: impl FnMut(&RequestInfo, &mut Rng) -> Fault + Send + 'static) {
        lock(&self.shared.control).schedule = Box::new(f);
    }

    /// Cut every open connection (as a link that dropped for a moment):
    /// the client's next request needs a new one, handshake included.
    pub fn drop_connections(&self) {
        for (_, task) in lock(&self.shared.open).drain() {
            task.abort();
        }
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.state).stats
    }

    /// Start a new measured window: counts to zero, and nothing delivered
    /// or connected before counts as a round trip in it (a warm connection
    /// adds no handshake).
    pub fn reset_stats(&self) {
        let mut s = lock(&self.shared.state);
        s.stats = Stats::default();
        s.epoch += 1;
        s.delivered = 0;
        s.history.clear();
    }

    /// The requests of the window, in the order they were read.
    pub fn history(&self) -> Vec<Exchange> {
        lock(&self.shared.state).history.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        if std::thread::panicking() {
            eprintln!(
                "fault proxy seed {seed}: replay with {SEED_VAR}={seed}",
                seed = self.shared.seed
            );
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    let mut next = 0u64;
    while let Ok((client, _)) = listener.accept().await {
        let conn = next;
        next += 1;
        let task = {
            let shared = shared.clone();
            tokio::spawn(async move {
                shared.opened(conn);
                let _ = relay(&shared, upstream, client, conn).await;
                shared.closed(conn);
                lock(&shared.open).remove(&conn);
            })
        };
        lock(&shared.open).insert(conn, task.abort_handle());
    }
}

/// Ends a connection with a reset rather than an orderly close, as a
/// broken link or a crashed middlebox does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn relay(
    shared: &Shared,
    upstream: SocketAddr,
    mut client: TcpStream,
    conn: u64,
) -> io::Result<()> {
    let mut rng = Rng::new(shared.seed ^ (conn + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    // The client's first byte cannot leave before its handshake has made
    // a round trip.
    tokio::time::sleep(shared.link().one_way * 2).await;
    let mut server: Option<TcpStream> = None;
    let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
    for on_conn in 0.. {
        let Some((head, request, ticket, at)) =
            read_request(shared, conn, &mut client, &mut from_client).await?
        else {
            return Ok(());
        };
        let fault = shared.decide(conn, on_conn, &head, at, ticket);
        match fault {
            Fault::Status { code, retry_after } => {
                // The request crosses the link; the answer comes back.
                tokio::time::sleep(shared.link().delay(&mut rng)).await;
                let answer = synthetic(code, retry_after);
                shared
                    .cross(&mut rng, Dir::Down, &mut client, &answer)
                    .await?;
                shared.delivered(ticket);
                continue;
            }
            Fault::Stall => {
                let mut sink = [0u8; 4096];
                while let Ok(n) = client.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                    shared.bytes(Dir::Up, n);
                }
                shared.abandoned();
                return Ok(());
            }
            _ => {}
        }
        let up = match &mut server {
            Some(s) => s,
            None => server.insert(TcpStream::connect(upstream).await?),
        };
        shared.cross(&mut rng, Dir::Up, up, &request).await?;
        let (answer_head, answer) = read_answer(up, &mut from_server, head.method()).await?;
        match fault {
            Fault::ResetAfterCommit => {
                reset(client);
                return Ok(());
            }
            Fault::ResetMidBody { after } => {
                let cut = (answer_head.head_len + after).min(answer.len().saturating_sub(1));
                shared
                    .cross(&mut rng, Dir::Down, &mut client, &answer[..cut])
                    .await?;
                reset(client);
                return Ok(());
            }
            _ => {}
        }
        if shared
            .cross(&mut rng, Dir::Down, &mut client, &answer)
            .await
            .is_err()
        {
            shared.abandoned();
            return Ok(());
        }
        shared.delivered(ticket);
        if answer_head.close || answer_head.body == Body::UntilClose {
            return Ok(());
        }
    }
    Ok(())
}

/// The next whole request from the client; `None` when it hung up
/// between requests.
async fn read_request(
    shared: &Shared,
    conn: u64,
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> io::Result<Option<(Head, Vec<u8>, Ticket, Instant)>> {
    let mut started = (!buf.is_empty()).then(|| (shared.started(conn), Instant::now()));
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if let Some(h) = head(buf, None).map_err(invalid)?
            && let Some(n) = message_len(buf, &h).map_err(invalid)?
        {
            let (ticket, at) = started.unwrap_or_else(|| (shared.started(conn), Instant::now()));
            return Ok(Some((h, buf.drain(..n).collect(), ticket, at)));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        shared.bytes(Dir::Up, n);
        if started.is_none() {
            started = Some((shared.started(conn), Instant::now()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The server's whole answer to a request of `method`.
async fn read_answer(
    server: &mut TcpStream,
    buf: &mut Vec<u8>,
    method: &str,
) -> io::Result<(Head, Vec<u8>)> {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let parsed = head(buf, Some(method)).map_err(invalid)?;
        if let Some(h) = &parsed
            && let Some(n) = message_len(buf, h).map_err(invalid)?
        {
            return Ok((h.clone(), buf.drain(..n).collect()));
        }
        let n = server.read(&mut chunk).await?;
        if n == 0 {
            return match parsed {
                Some(h) if h.body == Body::UntilClose => Ok((h, std::mem::take(buf))),
                _ => Err(io::ErrorKind::UnexpectedEof.into()),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// An answer made by the proxy: an OperationOutcome, as a FHIR server
/// would send.
fn synthetic(code: u16, retry_after: Option<u64>) -> Vec<u8> {
    let body = format!(
        r#"{{"resourceType":"OperationOutcome","issue":[{{"severity":"error","code":"transient","diagnostics":"fault proxy: {code}"}}]}}"#
    );
    let reason = match code {
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(s) = retry_after {
        out.push_str(&format!("retry-after: {s}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// How an HTTP/1.1 message's body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    None,
    Length(usize),
    Chunked,
    /// An answer without length or chunking: its end is the connection's.
    UntilClose,
}

/// A message head: start line, where the head ends, how the body ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start_line: String,
    /// Bytes up to and including the blank line.
    pub head_len: usize,
    pub body: Body,
    /// `Connection: close`.
    pub close: bool,
}

impl Head {
    pub fn method(&self) -> &str {
        self.start_line.split(' ').next().unwrap_or("")
    }

    pub fn target(&self) -> &str {
        self.start_line.split(' ').nth(1).unwrap_or("")
    }

    /// An answer's status.
    pub fn status(&self) -> Option<u16> {
        self.start_line.split(' ').nth(1)?.parse().ok()
    }
}

/// Heads longer than this are refused, as servers do.
const MAX_HEAD: usize = 64 * 1024;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The head at the start of `buf`, once its blank line has arrived: of a
/// request when `answer_to` is `None`, else of the answer to a request of
/// that method.
pub fn head(buf: &[u8], answer_to: Option<&str>) -> Result<Option<Head>, String> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err("message head too long".into())
        } else {
            Ok(None)
        };
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let start_line = lines.next().unwrap_or("").to_string();
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header: {line:?}"))?;
        let value = value.trim().to_ascii_lowercase();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad content-length {value:?}"))?,
                )
            }
            "transfer-encoding" => chunked = value.split(',').any(|v| v.trim() == "chunked"),
            "connection" => close = value.split(',').any(|v| v.trim() == "close"),
            _ => {}
        }
    }
    let mut h = Head {
        start_line,
        head_len: end + 4,
        body: Body::None,
        close,
    };
    let bodiless = match answer_to {
        None => false,
        Some(method) => {
            let status = h.status().ok_or("an answer without a status")?;
            method == "HEAD" || status < 200 || status == 204 || status == 304
        }
    };
    h.body = match (bodiless, chunked, length) {
        (true, _, _) => Body::None,
        (false, true, _) => Body::Chunked,
        (false, false, Some(n)) => Body::Length(n),
        (false, false, None) if answer_to.is_some() => Body::UntilClose,
        (false, false, None) => Body::None,
    };
    Ok(Some(h))
}

/// The length of the whole message at the start of `buf`, once all of it
/// has arrived.
pub fn message_len(buf: &[u8], h: &Head) -> Result<Option<usize>, String> {
    let rest = &buf[h.head_len.min(buf.len())..];
    Ok(match h.body {
        Body::None => Some(h.head_len),
        Body::Length(n) => (rest.len() >= n).then_some(h.head_len + n),
        Body::Chunked => chunked_len(rest)?.map(|n| h.head_len + n),
        Body::UntilClose => None,
    })
}

/// The length of a chunked body (chunks, the last chunk, trailers and the
/// final blank line), once it has all arrived.
fn chunked_len(buf: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(line) = find(&buf[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&buf[at..at + line]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        at += line + 2;
        if size == 0 {
            // Trailers, each a line, until a blank one.
            loop {
                let Some(line) = find(&buf[at..], b"\r\n") else {
                    return Ok(None);
                };
                at += line + 2;
                if line == 0 {
                    return Ok(Some(at));
                }
            }
        }
        at += size + 2;
        if buf.len() < at {
            return Ok(None);
        }
    }
}

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Requests read from `chunks` arriving one after another: each
    /// request's target, as the proxy reads them.
    fn read_all(chunks: &[&[u8]]) -> Result<Vec<String>, String> {
        let mut buf = Vec::new();
        let mut targets = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(h) = head(&buf, None)? {
                let Some(n) = message_len(&buf, &h)? else {
                    break;
                };
                targets.push(h.target().to_string());
                buf.drain(..n);
            }
        }
        if !buf.is_empty() {
            return Err(format!("{} bytes left over", buf.len()));
        }
        Ok(targets)
    }

    fn request(i: usize, body: &[u8], chunks: Option<&[usize]>) -> Vec<u8> {
        let mut out = match (body.is_empty(), chunks) {
            (true, _) => {
                format!("GET /fhir/Patient?i={i} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes()
            }
            (false, None) => format!(
                "POST /fhir/r{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            (false, Some(_)) => {
                format!("PUT /fhir/r{i} HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n")
                    .into_bytes()
            }
        };
        match chunks {
            Some(sizes) if !body.is_empty() => {
                let mut rest = body;
                for s in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (piece, more) = rest.split_at((*s).clamp(1, rest.len()));
                    out.extend_from_slice(format!("{:x};ext=1\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                    rest = more;
                }
                out.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
            }
            _ => out.extend_from_slice(body),
        }
        out
    }

    #[test]
    fn answers_end_where_their_framing_says() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let h = head(ok, Some("GET")).unwrap().unwrap();
        assert_eq!(message_len(ok, &h).unwrap(), Some(ok.len()));
        let to_head = head(ok, Some("HEAD")).unwrap().unwrap();
        assert_eq!(message_len(ok, &to_head).unwrap(), Some(to_head.head_len));
        let bare = b"HTTP/1.1 200 OK\r\n\r\nuntil the end";
        let h = head(bare, Some("GET")).unwrap().unwrap();
        assert_eq!(
            (h.body.clone(), message_len(bare, &h).unwrap()),
            (Body::UntilClose, None)
        );
        let none = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        let h = head(none, Some("DELETE")).unwrap().unwrap();
        assert!(h.close && h.body == Body::None);
        assert!(chunked_len(b"zz\r\n").is_err());
        assert!(
            synthetic(503, Some(2))
                .windows(16)
                .any(|w| w == b"retry-after: 2\r\n")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            failure_persistence: Some(Box::new(
                proptest::test_runner::FileFailurePersistence::Direct(
                    "proptest-regressions/fault_proxy.txt",
                ),
            )),
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_split_of_a_stream_reads_the_same_requests(
            bodies in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300),
                 proptest::option::of(proptest::collection::vec(1usize..80, 1..5))),
                1..6),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let mut stream = Vec::new();
            for (i, (body, chunks)) in bodies.iter().enumerate() {
                stream.extend(request(i, body, chunks.as_deref()));
            }
            let mut at: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            at.extend([0, stream.len()]);
            at.sort_unstable();
            at.dedup();
            let pieces: Vec<&[u8]> = at.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            let whole = read_all(&[&stream]).map_err(TestCaseError::fail)?;
            let split = read_all(&pieces).map_err(TestCaseError::fail)?;
            prop_assert_eq!(whole.len(), bodies.len());
            prop_assert_eq!(split, whole);
        }
    }
}
