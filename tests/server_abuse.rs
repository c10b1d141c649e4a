//! The portal server under abuse, over real sockets on loopback: idle and
//! half-sent connections, oversized requests, a crowd of idle connections,
//! clients that stop reading, and the browser-shaped requests open access
//! must refuse. Every case is bounded in count and in time.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chartty::roles::Role;
use chartty::server::{self, Limits, RunningServer, ServerConfig, demo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The tests that open thousands of sockets or measure the process's memory
/// run one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Any single wait in these tests gives up after this long.
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    srv: RunningServer,
    token: Option<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn addr(&self) -> SocketAddr {
        self.srv.addr
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or(""))
    }

    async fn stop(self) {
        tokio::time::timeout(PATIENCE, self.srv.stop())
            .await
            .expect("the server stops in time");
    }
}

/// A server with the demo users (`users`) or with open access.
async fn start(limits: Limits, users: bool) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let staff = if users { demo::staff() } else { Vec::new() };
    let srv = server::start_with(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: None,
        },
        listener,
        staff,
        server::Options {
            limits,
            ..server::Options::default()
        },
    )
    .await
    .unwrap();
    let token = srv.token_for(Role::Attending).map(str::to_string);
    Server {
        srv,
        token,
        _dir: dir,
    }
}

fn short_timeouts() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        body_read_timeout: Duration::from_millis(400),
        write_timeout: Duration::from_millis(400),
        shutdown_grace: Duration::from_secs(3),
        ..Limits::default()
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    match tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => panic!("cannot connect to {addr}: {e} ({:?})", e.kind()),
        Err(_) => panic!("cannot connect to {addr} within {PATIENCE:?}"),
    }
}

/// An HTTP/1.1 request as bytes.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        out.push_str("Host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// An OperationOutcome with the given status, served as FHIR JSON.
    fn assert_outcome(&self, status: u16) {
        let body = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "{body}");
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/fhir+json")),
            "{:?}",
            self.headers
        );
        let v = self.json();
        assert_eq!(v["resourceType"], "OperationOutcome", "{body}");
        assert!(v["issue"][0]["code"].is_string(), "{body}");
        assert!(v["issue"][0]["diagnostics"].is_string(), "{body}");
    }
}

/// Reads one response (Content-Length or up to the end of the stream).
async fn read_reply(stream: &mut TcpStream) -> Reply {
    tokio::time::timeout(PATIENCE, read_reply_inner(stream))
        .await
        .expect("a response in time")
}

async fn read_reply_inner(stream: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.expect("reads the response");
        assert!(n > 0, "the connection closed before a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    match length {
        Some(n) => {
            while body.len() < n {
                let mut chunk = [0u8; 8192];
                let got = stream.read(&mut chunk).await.expect("reads the body");
                assert!(got > 0, "the connection closed inside the body");
                body.extend_from_slice(&chunk[..got]);
            }
        }
        None => {
            let _ = stream.read_to_end(&mut body).await;
        }
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends one request on a new connection and reads the reply.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = connect(addr).await;
    s.write_all(raw).await.unwrap();
    read_reply(&mut s).await
}

/// Whether the server closes `stream` within `within` (end of stream or a
/// reset; anything it sends before is skipped).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

/// Resident memory of this process (the server runs in it), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

/// Raises this process's descriptor limit to its hard limit; returns the
/// soft limit now in force.
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- timeouts

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let srv = start(
        Limits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(1),
            ..Limits::default()
        },
        false,
    )
    .await;
    // Ten connections that never send a byte, one that sent a request and
    // kept the connection alive.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(connect(srv.addr()).await);
    }
    let mut used = connect(srv.addr()).await;
    used.write_all(&request("GET", "/fhir/metadata", &[], b""))
        .await
        .unwrap();
    let reply = read_reply(&mut used).await;
    assert_eq!(reply.status, 200);
    assert_ne!(reply.header("connection"), Some("close"));
    wait_until("all 11 are open", || srv.srv.transport_stats().open == 11).await;

    // Not before the timeout...
    assert!(!closed_within(&mut used, Duration::from_millis(400)).await);
    // ...but soon after it.
    assert!(closed_within(&mut used, Duration::from_secs(3)).await);
    for s in &mut silent {
        assert!(closed_within(s, Duration::from_secs(3)).await);
    }
    wait_until("none is open", || srv.srv.transport_stats().open == 0).await;
    let stats = srv.srv.transport_stats();
    assert_eq!(stats.idle_closed, 11, "{stats:?}");
    assert_eq!(stats.header_timeouts, 0, "{stats:?}");
    srv.stop().await;
}

#[tokio::test]
async fn a_half_sent_request_head_is_closed_after_the_header_timeout() {
    let srv = start(
        Limits {
            header_read_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        false,
    )
    .await;
    // A head without its final empty line.
    let mut half = connect(srv.addr()).await;
    half.write_all(b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // A head sent one byte at a time, slowly (slowloris): the timeout counts
    // from its first byte, not from the last.
    let mut slow = connect(srv.addr()).await;
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        for b in b"GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the slow head was never cut off");
    });
    // A connection that has not started a request is left alone (the idle
    // timeout is a minute).
    let mut quiet = connect(srv.addr()).await;

    let started = Instant::now();
    assert!(closed_within(&mut half, Duration::from_secs(5)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let slow_took = tokio::time::timeout(PATIENCE, trickle)
        .await
        .unwrap()
        .unwrap();
    assert!(slow_took < Duration::from_secs(5), "{slow_took:?}");
    assert!(!closed_within(&mut quiet, Duration::from_millis(100)).await);
    let stats = srv.srv.transport_stats();
    assert_eq!(stats.header_timeouts, 2, "{stats:?}");
    assert_eq!(stats.idle_closed, 0, "{stats:?}");

    // The quiet one still works.
    quiet
        .write_all(&request("GET", "/fhir/metadata", &[], b""))
        .await
        .unwrap();
    assert_eq!(read_reply(&mut quiet).await.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408() {
    let srv = start(short_timeouts(), true).await;
    let auth = srv.auth();
    let mut s = connect(srv.addr()).await;
    let raw = request(
        "POST",
        "/fhir/Patient",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", "100"),
        ],
        b"{\"resourceType\":",
    );
    s.write_all(&raw).await.unwrap();
    let started = Instant::now();
    let reply = read_reply(&mut s).await;
    reply.assert_outcome(408);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(closed_within(&mut s, Duration::from_secs(2)).await);
    srv.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    // Only the write timeout is short: a connection whose answers are stuck
    // in the server's buffers is not idle.
    let srv = start(
        Limits {
            write_timeout: Duration::from_millis(400),
            ..Limits::default()
        },
        false,
    )
    .await;
    // A small receive window, and thousands of pipelined requests whose
    // answers are never read: the server's writes stall.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = tokio::time::timeout(PATIENCE, socket.connect(srv.addr()))
        .await
        .unwrap()
        .unwrap();
    let (_read, mut write) = stream.into_split();
    let one = request("GET", "/fhir/metadata", &[], b"");
    let writer = tokio::spawn(async move {
        for _ in 0..4000 {
            if write.write_all(&one).await.is_err() {
                break;
            }
        }
        write
    });
    wait_until("a stalled write is given up", || {
        srv.srv.transport_stats().write_timeouts >= 1
    })
    .await;
    wait_until("the connection is closed", || {
        srv.srv.transport_stats().open == 0
    })
    .await;
    writer.abort();
    // Others are served as before.
    let reply = exchange(srv.addr(), &request("GET", "/fhir/metadata", &[], b"")).await;
    assert_eq!(reply.status, 200);
    srv.stop().await;
}

// ------------------------------------------------------ connection limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_keeps_answering_during_2000_idle_connections() {
    let _heavy = HEAVY.lock().await;
    const IDLE: usize = 2000;
    // Each idle connection costs this process two descriptors (both ends).
    let soft = raise_descriptor_limit();
    assert!(
        soft >= (2 * IDLE + 256) as u64,
        "the descriptor limit ({soft}) is too low for {IDLE} idle connections"
    );
    // The default limits: 1,024 connections at most, a minute of idling.
    let srv = start(Limits::default(), true).await;
    let addr = srv.addr();
    let max = srv.srv.transport_stats().max_connections;
    assert!(max < IDLE, "{max}");

    let mut idle = Vec::with_capacity(IDLE);
    let mut answered = 0;
    let mut slowest = Duration::ZERO;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/Patient?_count=1", srv.srv.base_url);
    for i in 0..IDLE {
        let mut s = connect(addr).await;
        // Half of them start a request head and stop.
        if i % 2 == 1 {
            s.write_all(b"GET /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
        // Every hundred, an authenticated request on a fresh connection.
        if i % 100 == 99 {
            let t = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                client.get(&url).header("authorization", srv.auth()).send(),
            )
            .await
            .unwrap_or_else(|_| panic!("no answer within 5 s after {} idle connections", i + 1))
            .unwrap();
            assert_eq!(r.status(), 200);
            slowest = slowest.max(t.elapsed());
            answered += 1;
            let stats = srv.srv.transport_stats();
            assert!(stats.open <= max, "{stats:?}");
        }
    }
    assert_eq!(answered, IDLE / 100);
    // All 2,000 are still held open by this side; the server made room.
    for _ in 0..20 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.get(&url).header("authorization", srv.auth()).send(),
        )
        .await
        .expect("an answer within 5 s")
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    let stats = srv.srv.transport_stats();
    assert!(stats.open <= max, "{stats:?}");
    assert!(stats.evicted as usize >= IDLE - max, "{stats:?}");
    eprintln!(
        "{IDLE} idle connections against a limit of {max}: slowest answer {slowest:?}, {stats:?}"
    );
    drop(idle);
    srv.stop().await;
}

/// `chartty serve` itself, in its own process, at the usual descriptor limit
/// of 1,024: 2,000 idle connections (more than it has descriptors) do not
/// stop it from answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chartty_serve_at_a_1024_descriptor_limit_outlasts_2000_idle_connections() {
    use std::io::BufRead as _;
    let _heavy = HEAVY.lock().await;
    const IDLE: usize = 2000;
    let soft = raise_descriptor_limit();
    assert!(soft >= (IDLE + 256) as u64, "descriptor limit {soft}");
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$0" serve --listen 127.0.0.1:0 --db "$1" --demo --patients 10"#)
        .arg(env!("CARGO_BIN_EXE_chartty"))
        .arg(dir.path().join("portal.db"))
        .env("CHARTTY_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = child.id();
    // Read what it prints (its address, a token per user), and keep the
    // pipe drained so that it never writes into a closed one.
    let stdout = child.stdout.take().unwrap();
    let (found, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = found.send(line);
        }
    });
    let (base, token) = tokio::task::spawn_blocking(move || {
        let (mut base, mut token) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while base.is_none() || token.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                break;
            };
            if let Some(url) = line.strip_prefix("serving FHIR R4 at ") {
                base = Some(url.trim().to_string());
            }
            if let Some(t) = line.strip_prefix("token attending ") {
                token = Some(t.trim().to_string());
            }
        }
        (base, token)
    })
    .await
    .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    let (Some(base), Some(token)) = (base, token) else {
        let _ = child.kill();
        panic!("the server did not start: {}", log());
    };
    let limit = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    assert!(
        limit
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("1024")),
        "{limit}"
    );
    let addr: SocketAddr = base
        .trim_start_matches("http://")
        .trim_end_matches("/fhir")
        .parse()
        .unwrap();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0)
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{base}/Patient?_count=1");
    let auth = format!("Bearer {token}");
    let rss_before = rss();
    let mut idle = Vec::with_capacity(IDLE);
    let mut slowest = Duration::ZERO;
    for i in 0..IDLE {
        let mut s = match tokio::time::timeout(PATIENCE, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            other => {
                let alive = child.try_wait().unwrap().is_none();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "connection {i}: {other:?}; server alive: {alive}\n{}",
                    log()
                );
            }
        };
        if i % 2 == 1 {
            s.write_all(b"GET /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .unwrap();
        }
        idle.push(s);
        if i % 100 == 99 {
            let t = Instant::now();
            let r = tokio::time::timeout(
                Duration::from_secs(5),
                client.get(&url).header("authorization", &auth).send(),
            )
            .await;
            let ok = matches!(&r, Ok(Ok(r)) if r.status() == 200);
            if !ok {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no answer after {} idle connections: {r:?}\n{}",
                    i + 1,
                    log()
                );
            }
            slowest = slowest.max(t.elapsed());
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server died: {}",
        log()
    );
    let rss_after = rss();
    eprintln!(
        "chartty serve at ulimit -n 1024 with {IDLE} idle connections: slowest answer {slowest:?}, \
         resident {rss_before} kB before, {rss_after} kB after"
    );
    drop(idle);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn excess_connections_wait_while_every_slot_is_busy() {
    let srv = start(
        Limits {
            max_connections: 2,
            body_read_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        true,
    )
    .await;
    let auth = srv.auth();
    let body = json!({"resourceType": "Patient", "name": [{"family": "Busy"}]}).to_string();
    let len = body.len().to_string();
    let head = request(
        "POST",
        "/fhir/Patient",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", &len),
        ],
        b"",
    );
    // Two requests in flight, their bodies half sent: both slots are busy.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = connect(srv.addr()).await;
        s.write_all(&head).await.unwrap();
        s.write_all(&body.as_bytes()[..10]).await.unwrap();
        busy.push(s);
    }
    wait_until("both are busy", || srv.srv.transport_stats().open == 2).await;
    // A third connection waits: not refused, not answered.
    let mut third = connect(srv.addr()).await;
    third
        .write_all(&request("GET", "/fhir/metadata", &[], b""))
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte))
            .await
            .is_err(),
        "answered while every slot was busy"
    );
    // One request finishes; its connection turns idle and makes room.
    busy[0].write_all(&body.as_bytes()[10..]).await.unwrap();
    assert_eq!(read_reply(&mut busy[0]).await.status, 201);
    assert_eq!(read_reply(&mut third).await.status, 200);
    // The other busy request was never cut off.
    busy[1].write_all(&body.as_bytes()[10..]).await.unwrap();
    assert_eq!(read_reply(&mut busy[1]).await.status, 201);
    let stats = srv.srv.transport_stats();
    assert!(stats.open <= 2, "{stats:?}");
    srv.stop().await;
}

#[tokio::test]
async fn stopping_finishes_requests_in_flight_and_closes_idle_connections() {
    let srv = start(
        Limits {
            body_read_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        true,
    )
    .await;
    let addr = srv.addr();
    let auth = srv.auth();
    let mut idle = connect(addr).await;
    idle.write_all(&request(
        "GET",
        "/fhir/Patient?_count=1",
        &[("Authorization", &auth)],
        b"",
    ))
    .await
    .unwrap();
    assert_eq!(read_reply(&mut idle).await.status, 200);

    let body = json!({"resourceType": "Patient", "name": [{"family": "Late"}]}).to_string();
    let len = body.len().to_string();
    let mut in_flight = connect(addr).await;
    in_flight
        .write_all(&request(
            "POST",
            "/fhir/Patient",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/fhir+json"),
                ("Content-Length", &len),
            ],
            b"",
        ))
        .await
        .unwrap();
    in_flight.write_all(&body.as_bytes()[..5]).await.unwrap();
    wait_until("both are open", || srv.srv.transport_stats().open == 2).await;

    let stopping = tokio::spawn(srv.stop());
    // The idle connection is closed at once; new ones are not accepted.
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await);
    // The request in flight completes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_flight.write_all(&body.as_bytes()[5..]).await.unwrap();
    assert_eq!(read_reply(&mut in_flight).await.status, 201);
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("stops in time")
        .unwrap();
    match TcpStream::connect(addr).await {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
        Ok(mut s) => assert!(closed_within(&mut s, Duration::from_secs(1)).await),
    }
}

// ------------------------------------------------------------- sizes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_unauthenticated_body_is_refused_without_being_read() {
    let _heavy = HEAVY.lock().await;
    let srv = start(Limits::default(), true).await;
    let addr = srv.addr();
    // Warm up, so that the measurement below sees no first-use allocations.
    for _ in 0..3 {
        let r = exchange(addr, &request("GET", "/fhir/metadata", &[], b"")).await;
        assert_eq!(r.status, 200);
    }
    let rss_before = resident_bytes();
    let read_before = srv.srv.transport_stats().bytes_read;

    // 50 MB declared, no token: the answer comes before a byte of the body
    // is sent, and says so in an OperationOutcome.
    const FIFTY_MB: usize = 50_000_000;
    let mut s = connect(addr).await;
    s.write_all(&request(
        "POST",
        "/fhir/Patient",
        &[
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", &FIFTY_MB.to_string()),
        ],
        b"",
    ))
    .await
    .unwrap();
    let reply = read_reply(&mut s).await;
    reply.assert_outcome(413);
    assert_eq!(reply.header("connection"), Some("close"));
    // Sending the body anyway gets nowhere: the server stopped reading.
    let chunk = vec![b' '; 1 << 20];
    let mut sent = 0;
    while sent < FIFTY_MB {
        match tokio::time::timeout(Duration::from_secs(2), s.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
    assert!(sent < FIFTY_MB, "the server took all {sent} bytes");

    // The same with `Expect: 100-continue`: no 100, the 413 at once.
    let mut s = connect(addr).await;
    s.write_all(&request(
        "POST",
        "/fhir/Patient",
        &[
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", &FIFTY_MB.to_string()),
            ("Expect", "100-continue"),
        ],
        b"",
    ))
    .await
    .unwrap();
    read_reply(&mut s).await.assert_outcome(413);

    // Under the limit but without a token: 401 before the body is read.
    let mut s = connect(addr).await;
    s.write_all(&request(
        "POST",
        "/fhir/Patient",
        &[
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", "5000000"),
        ],
        b"",
    ))
    .await
    .unwrap();
    let reply = read_reply(&mut s).await;
    reply.assert_outcome(401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    // A token the server does not know is no better.
    let mut s = connect(addr).await;
    s.write_all(&request(
        "POST",
        "/fhir/Patient",
        &[
            ("Authorization", "Bearer forged"),
            ("Content-Type", "application/fhir+json"),
            ("Content-Length", "5000000"),
        ],
        b"",
    ))
    .await
    .unwrap();
    read_reply(&mut s).await.assert_outcome(401);

    let read = srv.srv.transport_stats().bytes_read - read_before;
    let grown = resident_bytes().saturating_sub(rss_before);
    eprintln!(
        "sent {sent} bytes of body; the server read {read} bytes; resident memory grew {grown} bytes"
    );
    assert!(read < 1 << 20, "the server read {read} bytes");
    assert!(grown < 16 << 20, "resident memory grew by {grown} bytes");

    // An authenticated caller gets the same 413.
    let auth = srv.auth();
    let reply = exchange(
        addr,
        &request(
            "POST",
            "/fhir/Patient",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/fhir+json"),
                ("Content-Length", &FIFTY_MB.to_string()),
            ],
            b"",
        ),
    )
    .await;
    reply.assert_outcome(413);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    const LIMIT: usize = 1 << 20;
    let srv = start(
        Limits {
            max_body: LIMIT,
            ..Limits::default()
        },
        true,
    )
    .await;
    let auth = srv.auth();
    let read_before = srv.srv.transport_stats().bytes_read;
    let stream = connect(srv.addr()).await;
    let (mut rd, mut wr) = stream.into_split();
    let head = request(
        "POST",
        "/fhir/Patient",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/fhir+json"),
            ("Transfer-Encoding", "chunked"),
        ],
        b"",
    );
    // Up to 20 MB in 64 KiB chunks, until the server stops taking them.
    let writer = tokio::spawn(async move {
        wr.write_all(&head).await.unwrap();
        let data = vec![b' '; 64 * 1024];
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        let mut sent = 0usize;
        while sent < 20 << 20 {
            match tokio::time::timeout(Duration::from_secs(2), wr.write_all(&chunk)).await {
                Ok(Ok(())) => sent += data.len(),
                _ => break,
            }
        }
        sent
    });
    let mut buf = Vec::new();
    let reply = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = rd.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(reply.is_ok(), "the connection was closed in time");
    let sent = writer.await.unwrap();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome");
    let read = srv.srv.transport_stats().bytes_read - read_before;
    eprintln!("sent {sent} bytes of chunked body; the server read {read}");
    assert!(sent < 20 << 20, "the server took all {sent} bytes");
    assert!(
        read < (LIMIT + (512 << 10)) as u64,
        "the server read {read} bytes"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_body_at_the_limit_is_accepted_and_over_http2_too() {
    const LIMIT: usize = 64 * 1024;
    let srv = start(
        Limits {
            max_body: LIMIT,
            ..Limits::default()
        },
        true,
    )
    .await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let padded = |len: usize| {
        let mut p = json!({"resourceType": "Patient", "name": [{"family": "Big"}]}).to_string();
        let pad = len - p.len();
        p.insert_str(1, &format!("\"x\":\"{}\",", "a".repeat(pad - 7)));
        assert_eq!(p.len(), len);
        p
    };
    for (client, version) in [
        (reqwest::Client::new(), reqwest::Version::HTTP_11),
        (
            reqwest::Client::builder()
                .http2_prior_knowledge()
                .build()
                .unwrap(),
            reqwest::Version::HTTP_2,
        ),
    ] {
        let url = format!("{}/Patient", srv.srv.base_url);
        let r = client
            .post(&url)
            .header("authorization", srv.auth())
            .header("content-type", "application/fhir+json")
            .body(padded(LIMIT))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), version);
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        let r = client
            .post(&url)
            .header("authorization", srv.auth())
            .header("content-type", "application/fhir+json")
            .body(padded(LIMIT + 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["resourceType"], "OperationOutcome");
    }
    srv.stop().await;
}

#[tokio::test]
async fn long_uris_and_large_headers_get_outcomes() {
    let srv = start(Limits::default(), true).await;
    let addr = srv.addr();
    let auth = srv.auth();
    // Just under the limits: answered.
    let path = format!("/fhir/Patient?name={}", "a".repeat(8 * 1024 - 30));
    assert!(path.len() <= 8 * 1024);
    let r = exchange(
        addr,
        &request("GET", &path, &[("Authorization", &auth)], b""),
    )
    .await;
    assert_eq!(r.status, 200);

    // 414: a long request target.
    let path = format!("/fhir/Patient?name={}", "a".repeat(9 * 1024));
    let r = exchange(
        addr,
        &request("GET", &path, &[("Authorization", &auth)], b""),
    )
    .await;
    r.assert_outcome(414);

    // 431: one huge header, and too many headers.
    let big = "b".repeat(40 * 1024);
    let r = exchange(
        addr,
        &request(
            "GET",
            "/fhir/metadata",
            &[("Authorization", &auth), ("X-Big", &big)],
            b"",
        ),
    )
    .await;
    r.assert_outcome(431);
    let names: Vec<String> = (0..120).map(|i| format!("X-Many-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = exchange(addr, &request("GET", "/fhir/metadata", &many, b"")).await;
    r.assert_outcome(431);

    // 405 and 404 are outcomes too.
    let r = exchange(
        addr,
        &request("DELETE", "/fhir/Patient", &[("Authorization", &auth)], b""),
    )
    .await;
    r.assert_outcome(405);
    let r = exchange(addr, &request("OPTIONS", "/fhir/Patient", &[], b"")).await;
    r.assert_outcome(405);
    let r = exchange(addr, &request("GET", "/elsewhere", &[], b"")).await;
    r.assert_outcome(404);

    // The server is still fine.
    let r = exchange(addr, &request("GET", "/fhir/metadata", &[], b"")).await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

// ------------------------------------------------------------ open access

fn json_patient() -> String {
    json!({"resourceType": "Patient", "name": [{"family": "Forged"}]}).to_string()
}

async fn patient_count(srv: &Server) -> i64 {
    let r = exchange(
        srv.addr(),
        &request("GET", "/fhir/Patient?_summary=count", &[], b""),
    )
    .await;
    assert_eq!(r.status, 200);
    r.json()["total"].as_i64().unwrap()
}

#[tokio::test]
async fn open_access_refuses_browser_shaped_writes() {
    let srv = start(Limits::default(), false).await;
    let addr = srv.addr();
    let body = json_patient();
    // What a web page can send cross-site without a preflight: text/plain,
    // form types, or no Content-Type at all, with or without an Origin.
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for path in ["/fhir/Patient", "/fhir"] {
            let mut headers = Vec::new();
            if let Some(c) = content_type {
                headers.push(("Content-Type", c));
            }
            let r = exchange(addr, &request("POST", path, &headers, body.as_bytes())).await;
            r.assert_outcome(415);
        }
        let mut headers = vec![("Origin", "http://evil.example")];
        if let Some(c) = content_type {
            headers.push(("Content-Type", c));
        }
        let r = exchange(
            addr,
            &request("POST", "/fhir/Patient", &headers, body.as_bytes()),
        )
        .await;
        r.assert_outcome(403);
    }
    assert_eq!(patient_count(&srv).await, 0, "nothing was written");

    // What the client sends is taken.
    for content_type in [
        "application/fhir+json",
        "application/fhir+json; charset=utf-8",
        "application/json",
    ] {
        let r = exchange(
            addr,
            &request(
                "POST",
                "/fhir/Patient",
                &[("Content-Type", content_type)],
                body.as_bytes(),
            ),
        )
        .await;
        assert_eq!(r.status, 201, "{content_type}");
    }
    assert_eq!(patient_count(&srv).await, 3);
    // POST _search keeps its FHIR form body: it reads, and writes nothing.
    let r = exchange(
        addr,
        &request(
            "POST",
            "/fhir/Patient/_search",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"family=forged",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["entry"].as_array().map(Vec::len), Some(3));
    srv.stop().await;
}

#[tokio::test]
async fn open_access_checks_host_and_origin() {
    let srv = start(Limits::default(), false).await;
    let addr = srv.addr();
    let port = addr.port();
    let own = format!("127.0.0.1:{port}");
    let local = format!("localhost:{port}");
    // DNS rebinding: a name that resolves to 127.0.0.1 for the attacker's page.
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
        "10.1.2.3".to_string(),
    ] {
        let r = exchange(
            addr,
            &request("GET", "/fhir/Patient", &[("Host", &host)], b""),
        )
        .await;
        r.assert_outcome(421);
        let r = exchange(
            addr,
            &request(
                "POST",
                "/fhir/Patient",
                &[("Host", &host), ("Content-Type", "application/fhir+json")],
                json_patient().as_bytes(),
            ),
        )
        .await;
        r.assert_outcome(421);
    }
    // Loopback names are fine, whatever the port (an SSH tunnel changes it).
    for host in [own.as_str(), local.as_str(), "localhost:9999", "[::1]:8080"] {
        let r = exchange(
            addr,
            &request("GET", "/fhir/metadata", &[("Host", host)], b""),
        )
        .await;
        assert_eq!(r.status, 200, "{host}");
    }
    // An absolute request target naming another host is refused too.
    let r = exchange(
        addr,
        &request(
            "GET",
            "http://evil.example/fhir/Patient",
            &[("Host", "evil.example")],
            b"",
        ),
    )
    .await;
    r.assert_outcome(421);

    // Origin: the server's own passes, any other (and "null") is refused.
    let own_origin = format!("http://{own}");
    for (origin, host, status) in [
        (own_origin.as_str(), own.as_str(), 200),
        ("http://evil.example", own.as_str(), 403),
        ("null", own.as_str(), 403),
        ("https://127.0.0.1:1", own.as_str(), 403),
        (own_origin.as_str(), local.as_str(), 403),
    ] {
        let r = exchange(
            addr,
            &request(
                "GET",
                "/fhir/Patient",
                &[("Host", host), ("Origin", origin)],
                b"",
            ),
        )
        .await;
        if status == 200 {
            assert_eq!(r.status, 200, "{origin} via {host}");
        } else {
            r.assert_outcome(status);
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn with_users_host_and_origin_are_left_to_the_token() {
    let srv = start(Limits::default(), true).await;
    let auth = srv.auth();
    let r = exchange(
        srv.addr(),
        &request(
            "GET",
            "/fhir/Patient?_count=1",
            &[
                ("Host", "portal.clinic.example"),
                ("Origin", "https://app.clinic.example"),
                ("Authorization", &auth),
            ],
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    srv.stop().await;
}

#[tokio::test]
async fn open_access_binds_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = || ServerConfig {
        db: dir.path().join("portal.db"),
        demo: None,
    };
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = match server::start_with_staff(config(), listener, Vec::new()).await {
        Ok(_) => panic!("an open server started on 0.0.0.0"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("without users"), "{err}");
    assert!(err.contains("loopback"), "{err}");
    assert!(
        !dir.path().join("portal.db").exists(),
        "refused before the database was touched"
    );
    // With users it may listen anywhere (the tokens guard it).
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let srv = server::start_with_staff(config(), listener, demo::staff())
        .await
        .unwrap();
    srv.stop().await;
    // And loopback is fine without users.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start_with_staff(config(), listener, Vec::new())
        .await
        .unwrap();
    srv.stop().await;
}
