//! What a session costs on a bad link, measured on a real pseudo-terminal
//! (120x40): chartty runs against the portal server (300 demo patients)
//! through the fault-injecting proxy of the tests, which counts what
//! crosses the network. The scripted session, as an attending: search five
//! letters, open the chart, browse the results (four row moves, a history,
//! back), the tasks (three moves), the summary and two Tabs (the browsing
//! session the terminal targets are set for); then open the chart again,
//! write and sign a short progress note, and triage three tasks (claim,
//! complete, claim).
//!
//! Printed per key and in all: bytes written to the terminal (what crosses
//! an SSH link to a jump host; at 20 kbit/s every kilobyte costs 0.4 s),
//! HTTP requests and bytes received from the server as on the wire
//! (compressed), and the round trips to open a chart cold (the connection
//! dropped just before) and warm. The session runs twice, as is and with
//! `--low-bandwidth`, printed side by side.
//!
//! `cargo bench --bench terminal_bytes`; `CHARTTY_PTY_BIN=path/to/chartty`
//! measures another build (the one before a change) the same way.

#[path = "../tests/fault_proxy/mod.rs"]
mod fault_proxy;
#[path = "../tests/pty_support/mod.rs"]
mod pty_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chartty::roles::Role;
use chartty::server::demo::DemoOptions;
use chartty::server::{Options, RunningServer, ServerConfig};
use fault_proxy::FaultProxy;
use pty_support::{PtyApp, new_root};

/// Output is settled when nothing more arrives for this long.
const QUIET: Duration = Duration::from_millis(400);

fn settle(app: &PtyApp) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = app.output().len();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = app.output().len();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= QUIET {
            break;
        }
    }
    last
}

/// The first five letters of the first listed family name.
fn a_query(app: &PtyApp) -> String {
    let screen = app.screen();
    screen
        .lines()
        .iter()
        .filter_map(|l| {
            let inner = l.trim_matches(|c: char| !c.is_alphanumeric() && c != ',');
            let (family, _) = inner.split_once(',')?;
            let family = family.trim();
            (family.chars().count() >= 3 && family.chars().all(char::is_alphabetic))
                .then(|| family.chars().take(5).collect::<String>().to_lowercase())
        })
        .next()
        .unwrap_or_else(|| "smith".into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Letter,
    Pane,
    Row,
    /// Opening a chart: its round trips are counted.
    ChartCold,
    ChartWarm,
    Other,
}

struct Key {
    label: String,
    bytes: Vec<u8>,
    kind: Kind,
}

fn key(label: &str, bytes: &[u8], kind: Kind) -> Key {
    Key {
        label: label.to_string(),
        bytes: bytes.to_vec(),
        kind,
    }
}

/// Text pasted in one piece (bracketed paste).
fn paste(label: &str, text: &str) -> Key {
    let mut bytes = b"\x1b[200~".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\x1b[201~");
    key(label, &bytes, Kind::Other)
}

/// One key's cost.
struct Cost {
    label: String,
    kind: Kind,
    terminal: usize,
    requests: u64,
    received: u64,
    round_trips: u32,
}

struct Figures {
    start: Cost,
    keys: Vec<Cost>,
    /// Keys of the browsing session the targets are set for (search,
    /// chart, results, tasks, summary), the first of `keys`.
    browsing: usize,
}

/// The browsing session: `/`, the letters, and these 15 keys.
const BROWSING_AFTER_LETTERS: usize = 15;

fn session(rt: &tokio::runtime::Runtime, extra: &[&str]) -> Figures {
    let dir = tempfile::tempdir().expect("a folder for the portal");
    let server: RunningServer = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        chartty::server::start_with(
            ServerConfig {
                db: dir.path().join("portal.db"),
                demo: Some(DemoOptions::new(300, 1)),
            },
            listener,
            chartty::server::demo::staff(),
            Options::default(),
        )
        .await
        .expect("the portal starts")
    });
    let url = url::Url::parse(&server.base_url).expect("the portal's address");
    let upstream = SocketAddr::new(
        url.host_str()
            .and_then(|h| h.parse().ok())
            .expect("a loopback address"),
        url.port().expect("a port"),
    );
    let proxy = rt.block_on(FaultProxy::start(upstream, 1));
    let base = proxy.rebase(&server.base_url);
    let token = server
        .token_for(Role::Attending)
        .expect("the demo's attending")
        .to_string();

    let mut args = vec!["--server", base.as_str(), "--token", token.as_str()];
    args.extend_from_slice(extra);
    let root = new_root();
    let mut app = PtyApp::spawn_in(&root, &args, &[], (120, 40));
    app.wait_patients();
    let written = settle(&app);
    let at_start = proxy.stats();
    let start = Cost {
        label: "start-up (list settled)".into(),
        kind: Kind::Other,
        terminal: written,
        requests: at_start.requests,
        received: at_start.bytes_down,
        round_trips: at_start.round_trips,
    };

    let query = a_query(&app);
    let mut keys = vec![key("/", b"/", Kind::Other)];
    for c in query.chars() {
        keys.push(key(
            &format!("type {c}"),
            c.to_string().as_bytes(),
            Kind::Letter,
        ));
    }
    keys.extend([
        key("Enter (open chart)", b"\r", Kind::ChartCold),
        key("3 results", b"3", Kind::Pane),
        key("j", b"j", Kind::Row),
        key("j", b"j", Kind::Row),
        key("j", b"j", Kind::Row),
        key("j", b"j", Kind::Row),
        key("Enter (result history)", b"\r", Kind::Pane),
        key("Esc back", b"\x1b", Kind::Pane),
        key("5 tasks", b"5", Kind::Pane),
        key("j", b"j", Kind::Row),
        key("j", b"j", Kind::Row),
        key("j", b"j", Kind::Row),
        key("2 summary", b"2", Kind::Pane),
        key("Tab", b"\t", Kind::Pane),
        key("Tab", b"\t", Kind::Pane),
        // The browsing session above is the one the targets are set for.
        key("1 search", b"1", Kind::Pane),
        key("Enter (chart again)", b"\r", Kind::ChartWarm),
        key("4 notes", b"4", Kind::Pane),
        key("n (templates)", b"n", Kind::Other),
        key("Enter (progress note)", b"\r", Kind::Pane),
        paste("paste subjective", "Feels better."),
        key("Tab", b"\t", Kind::Other),
        key("1", b"1", Kind::Letter),
        key("2", b"2", Kind::Letter),
        key("Enter", b"\r", Kind::Other),
        paste("paste assessment", "Stable on treatment."),
        key("Tab", b"\t", Kind::Other),
        key("2", b"2", Kind::Letter),
        paste("paste plan", "Recheck in two weeks."),
        key("Ctrl-s (sign)", b"\x13", Kind::Other),
        key("y (signed)", b"y", Kind::Other),
        key("5 tasks", b"5", Kind::Pane),
        key("gg (first task)", b"gg", Kind::Row),
        key("c (claim)", b"c", Kind::Other),
        key("d (complete)", b"d", Kind::Other),
        key("Enter (disposition)", b"\r", Kind::Other),
        key("c (claim)", b"c", Kind::Other),
    ]);

    let mut costs = Vec::new();
    let mut before = written;
    for k in &keys {
        let chart = matches!(k.kind, Kind::ChartCold | Kind::ChartWarm);
        if k.kind == Kind::ChartCold {
            proxy.drop_connections();
        }
        let was = if chart {
            proxy.reset_stats();
            proxy.stats()
        } else {
            proxy.stats()
        };
        app.send(&k.bytes);
        let after = settle(&app);
        let now = proxy.stats();
        costs.push(Cost {
            label: k.label.clone(),
            kind: k.kind,
            terminal: after - before,
            requests: now.requests - was.requests,
            received: now.bytes_down - was.bytes_down,
            round_trips: if chart { now.round_trips } else { 0 },
        });
        before = after;
    }
    app.send(b"q");
    let _ = app.wait_exit(Duration::from_secs(10));
    drop(proxy);
    rt.block_on(server.stop());
    Figures {
        start,
        keys: costs,
        browsing: 1 + query.chars().count() + BROWSING_AFTER_LETTERS,
    }
}

fn median_p95(values: &[usize]) -> (usize, usize) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
    (median, p95)
}

fn summary(name: &str, f: &Figures) {
    let per_key: Vec<usize> = f.keys.iter().map(|c| c.terminal).collect();
    let session: usize = per_key.iter().sum();
    let (median, p95) = median_p95(&per_key);
    let of = |kind| -> Vec<usize> {
        f.keys
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.terminal)
            .collect()
    };
    let (letters, _) = median_p95(&of(Kind::Letter));
    let panes = of(Kind::Pane);
    let rows = of(Kind::Row);
    let requests: u64 = f.start.requests + f.keys.iter().map(|c| c.requests).sum::<u64>();
    let received: u64 = f.start.received + f.keys.iter().map(|c| c.received).sum::<u64>();
    let rt = |kind| {
        f.keys
            .iter()
            .find(|c| c.kind == kind)
            .map_or(0, |c| c.round_trips)
    };
    let browsing: usize = per_key[..f.browsing].iter().sum();
    println!("  {name}:");
    println!(
        "    terminal: start-up {} B; browsing ({} keys) {browsing} B; whole session {} keys, {session} B; per key median {median} B, p95 {p95} B",
        f.start.terminal,
        f.browsing,
        per_key.len()
    );
    println!(
        "    typed letters median {letters} B; pane switch max {} B; row move max {} B",
        panes.iter().max().copied().unwrap_or(0),
        rows.iter().max().copied().unwrap_or(0)
    );
    println!(
        "    network: {requests} HTTP requests, {received} B received (as on the wire); a chart opens in {} round trips cold, {} warm",
        rt(Kind::ChartCold),
        rt(Kind::ChartWarm)
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let normal = session(&rt, &[]);
    // Another build may not know the flag: measured as is only.
    let low = if std::env::var_os("CHARTTY_PTY_BIN").is_some() {
        session(&rt, &[])
    } else {
        session(&rt, &["--low-bandwidth"])
    };
    println!("a session on a bad link, 120x40, portal with 300 demo patients, as an attending");
    println!(
        "  {:<24} {:>22} {:>22}",
        "", "terminal · req · recv", "--low-bandwidth"
    );
    let row = |c: &Cost, l: &Cost| {
        println!(
            "  {:<24} {:>7} B {:>3} {:>7} B {:>7} B {:>3} {:>7} B",
            c.label, c.terminal, c.requests, c.received, l.terminal, l.requests, l.received
        )
    };
    row(&normal.start, &low.start);
    for (c, l) in normal.keys.iter().zip(&low.keys) {
        row(c, l);
    }
    summary("as is", &normal);
    summary("--low-bandwidth", &low);
    println!(
        "  targets: start-up <= 8 KB, letter <= 1 KB median, pane switch <= 2.5 KB, row move <= 250 B, browsing session <= 25 KB"
    );
}
