//! Bytes chartty writes to the terminal, measured on a real pseudo-terminal
//! (120x40) through a scripted session against `chartty demo --patients
//! 300`: start-up until the patient list settles, then each key of a
//! session (search 5 letters, open the chart, results, 4 row moves, open a
//! result, back, tasks, 3 moves, summary, Tab, Tab). Prints the start-up
//! bytes, each key's bytes, the session total, and the median and p95 per
//! key: the figures a slow link pays for (at 20 kbit/s every kilobyte
//! costs 0.4 s). The same session runs again with `--low-bandwidth`, and
//! both columns are printed side by side.
//!
//! `cargo bench --bench terminal_bytes`

#[path = "../tests/pty_support/mod.rs"]
mod pty_support;

use std::time::{Duration, Instant};

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

/// Figures of one session.
struct Figures {
    start: usize,
    keys: Vec<(String, usize)>,
    letters: usize,
}

/// Start the demo with `extra` arguments, wait for the list, then the
/// scripted keys; each key's bytes.
fn session(extra: &[&str]) -> Figures {
    let root = new_root();
    let mut args = vec!["demo", "--patients", "300"];
    args.extend_from_slice(extra);
    let mut app = PtyApp::spawn_in(&root, &args, &[], (120, 40));
    app.wait_patients();
    let start = settle(&app);

    let query = a_query(&app);
    let mut keys: Vec<(String, Vec<u8>)> = vec![("/".into(), b"/".to_vec())];
    for c in query.chars() {
        keys.push((format!("type {c}"), c.to_string().into_bytes()));
    }
    for (label, bytes) in [
        ("Enter (open chart)", b"\r".as_slice()),
        ("3 results", b"3"),
        ("j", b"j"),
        ("j", b"j"),
        ("j", b"j"),
        ("j", b"j"),
        ("Enter (result history)", b"\r"),
        ("Esc back", b"\x1b"),
        ("5 tasks", b"5"),
        ("j", b"j"),
        ("j", b"j"),
        ("j", b"j"),
        ("2 summary", b"2"),
        ("Tab", b"\t"),
        ("Tab", b"\t"),
    ] {
        keys.push((label.to_string(), bytes.to_vec()));
    }

    let mut figures = Vec::new();
    let mut before = start;
    for (label, bytes) in &keys {
        app.send(bytes);
        let after = settle(&app);
        figures.push((label.clone(), after - before));
        before = after;
    }
    app.send(b"q");
    let _ = app.wait_exit(Duration::from_secs(10));
    Figures {
        start,
        keys: figures,
        letters: query.chars().count(),
    }
}

fn median_p95(values: &[usize]) -> (usize, usize) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let p95 = sorted[(sorted.len() * 95 / 100).min(sorted.len() - 1)];
    (median, p95)
}

fn main() {
    let normal = session(&[]);
    let low = session(&["--low-bandwidth"]);
    println!("terminal bytes, 120x40, chartty demo --patients 300");
    println!("  {:<24} {:>8} {:>8}", "", "normal", "--low-bandwidth");
    println!(
        "  {:<24} {:>6} B {:>6} B",
        "start-up (list settled)", normal.start, low.start
    );
    for ((label, n), (_, l)) in normal.keys.iter().zip(&low.keys) {
        println!("  {label:<24} {n:>6} B {l:>6} B");
    }
    for (name, f) in [("normal", &normal), ("low-bandwidth", &low)] {
        let per_key: Vec<usize> = f.keys.iter().map(|(_, n)| *n).collect();
        let session: usize = per_key.iter().sum();
        let (median, p95) = median_p95(&per_key);
        let (letters, _) = median_p95(&per_key[1..=f.letters]);
        println!(
            "  {name}: {} keys, {session} B in all; per key median {median} B, p95 {p95} B; typed letters median {letters} B",
            per_key.len(),
        );
    }
    println!(
        "  targets: start-up <= 8 KB, letter <= 1 KB median, pane switch <= 2.5 KB, row move <= 250 B, session <= 25 KB"
    );
}
