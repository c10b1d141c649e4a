//! TUI figures: fuzzy patient search per keystroke at 10k and 100k patients
//! (time on the UI task, and time until the matcher thread's answer is
//! applied), and bytes written to a 120x40 terminal for the first paint and
//! for a one-row selection move. Prints figures; asserts nothing.
//!
//! cargo bench --bench tui

use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chartty::api::{ApiReply, ApiRequest, Completed};
use chartty::chart::{PatientRow, RecordNumber};
use chartty::config::Settings;
use chartty::fhir::model::Patient;
use chartty::tui::event::{Clock, Event};
use chartty::tui::keymap::Keymap;
use chartty::tui::keys::parse_keys;
use chartty::tui::matcher::{MatchWorker, Matches};
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use serde_json::json;

const FAMILY: &[&str] = &[
    "García",
    "Smith",
    "Johnson",
    "Nguyen",
    "Müller",
    "Kowalski",
    "O'Brien",
    "Rossi",
    "Dubois",
    "Ivanova",
    "Kim",
    "Patel",
    "Hernández",
    "Ordóñez",
    "Andersson",
    "Brown",
    "Wilson",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Hill",
    "Campbell",
    "Mitchell",
    "Roberts",
    "Carter",
    "Phillips",
    "Evans",
    "Turner",
    "Torres",
    "Parker",
    "Collins",
    "Edwards",
];
const GIVEN: &[&str] = &[
    "Ana", "John", "Maria", "Agustín", "Wei", "Fatima", "James", "Olga", "Pierre", "Sofia", "Liam",
    "Emma", "Noah", "Olivia", "Lucas", "Mia", "Ethan", "Ava", "Mateo", "Isabella", "Jonas",
    "Chloe", "Arjun", "Priya", "Kenji", "Yuki", "Omar", "Layla", "David", "Sarah", "Joanna",
    "Miguel", "Elena", "Hugo", "Clara", "Felix", "Ines", "Tomás", "Nora", "Leo",
];

/// A deterministic population (xorshift), so runs compare; as the api hands
/// pages over: list entries, each decoded from its resource one at a time.
fn population(n: usize) -> Vec<PatientRow> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .filter_map(|i| {
            let family = FAMILY[(next() % FAMILY.len() as u64) as usize];
            let given = GIVEN[(next() % GIVEN.len() as u64) as usize];
            let year = 1930 + next() % 90;
            let month = 1 + next() % 12;
            let day = 1 + next() % 28;
            serde_json::from_value::<Patient>(json!({
                "resourceType": "Patient",
                "id": format!("p{i}"),
                "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}, "value": format!("{:08}", 10_000 + i)}],
                "name": [{"family": family, "given": [given]}],
                "gender": if i % 2 == 0 { "female" } else { "male" },
                "birthDate": format!("{year}-{month:02}-{day:02}"),
            }))
            .ok()
            .and_then(|p| RecordNumber::default().row(&p))
        })
        .collect()
}

/// The app with its matcher thread, driven as the terminal loop drives it.
struct Driven {
    app: App,
    matcher: MatchWorker,
    matches: mpsc::Receiver<Matches>,
}

impl Driven {
    fn clock(&self) -> Clock {
        Clock {
            instant: Instant::now(),
            now: self.app.now(),
        }
    }

    fn update(&mut self, event: Event) {
        let clock = self.clock();
        self.app.update(event, clock);
        for job in self.app.take_match_jobs() {
            self.matcher.send(job);
        }
        let _ = self.app.take_requests();
    }

    /// Apply matcher answers until none is pending.
    fn settle(&mut self) {
        while self.app.matching() {
            match self.matches.recv_timeout(Duration::from_secs(60)) {
                Ok(m) => self.update(Event::Matched(m)),
                Err(_) => break,
            }
        }
    }
}

fn app_with(patients: Vec<PatientRow>) -> Driven {
    let session = Session {
        base_url: "http://127.0.0.1:8080/fhir".into(),
        token: None,
        role: None,
        user: Some("Bench User".into()),
        ..Session::default()
    };
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let mut app = App::new(
        &Settings::default(),
        session,
        Keymap::defaults(),
        Theme::default(),
        now,
    );
    app.start();
    // The working-set page the app asked for at start.
    let page = app
        .take_requests()
        .into_iter()
        .find(|(_, r)| matches!(r, ApiRequest::PatientPage { .. }))
        .map(|(id, _)| id)
        .unwrap_or(2);
    let (tx, matches) = mpsc::channel();
    let matcher = MatchWorker::spawn(move |m| {
        let _ = tx.send(m);
    });
    let mut d = Driven {
        app,
        matcher,
        matches,
    };
    d.update(Event::Api(Completed {
        id: page,
        result: Ok(ApiReply::Patients {
            total: Some(patients.len() as u64),
            patients,
            next: None,
        }),
        latency: Duration::from_millis(12),
    }));
    d.settle();
    d
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn bench_search(n: usize) {
    let mut app = app_with(population(n));
    if let Some(kb) = resident_kb() {
        // Includes the freed decoded page the allocator may keep.
        println!(
            "resident with {n} patients in the working set: {} MB",
            kb / 1024
        );
    }
    let queries = [
        "garc 1984",
        "smi jo",
        "00012345",
        "ordo agus",
        "patel priya 19",
        "kim",
        "mül",
        "then",
        "walker 2001",
        "noah",
    ];
    let mut times = Vec::new();
    let mut ui = Vec::new();
    let cpu_before = process_cpu();
    for q in queries {
        for k in parse_keys(&format!("/{q}")).unwrap_or_default() {
            let t = Instant::now();
            app.update(Event::Key(k));
            ui.push(t.elapsed());
            // Typed one key at a time: each waits for its own answer.
            app.settle();
            let e = t.elapsed();
            if std::env::var_os("CHARTTY_BENCH_VERBOSE").is_some() {
                println!("  {q:<16} {:?} {:.2} ms", k.code, e.as_secs_f64() * 1e3);
            }
            times.push(e);
        }
        // Clear the box for the next query (not timed).
        for k in parse_keys("<c-u><esc>").unwrap_or_default() {
            app.update(Event::Key(k));
        }
        app.settle();
    }
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(a, b)| a.saturating_sub(b));
    times.sort();
    ui.sort();
    println!(
        "search {n:>6} patients: {} keystrokes, key to listed rows (matcher thread): median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "  on the UI task per keystroke: median {:.3} ms, max {:.3} ms",
        percentile(&ui, 0.5).as_secs_f64() * 1e3,
        ui.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    if let Some(cpu) = cpu {
        // Independent of other load on the machine (all threads, whole run).
        println!(
            "  cpu time per keystroke (mean, all threads): {:.2} ms",
            cpu.as_secs_f64() * 1e3 / times.len().max(1) as f64
        );
    }
}

/// Resident set size of this process (Linux `/proc`), if known.
fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of this process so far (Linux `/proc`), if known.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks are 1/100 s on Linux.
    Some(Duration::from_millis((utime + stime) * 10))
}

#[derive(Clone, Default)]
struct Counter(Arc<Mutex<usize>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut n) = self.0.lock() {
            *n += buf.len();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Counter {
    fn take(&self) -> usize {
        self.0
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or(0)
    }
}

fn bench_bytes() -> io::Result<()> {
    let counter = Counter::default();
    let backend = CrosstermBackend::new(counter.clone());
    let mut terminal = Terminal::with_options(
        backend,
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, 120, 40)),
        },
    )?;
    let mut d = app_with(population(2_000));
    terminal.draw(|f| d.app.render(f))?;
    let first = counter.take();
    let mut moves = Vec::new();
    for _ in 0..10 {
        for k in parse_keys("j").unwrap_or_default() {
            d.update(Event::Key(k));
        }
        terminal.draw(|f| d.app.render(f))?;
        moves.push(counter.take());
    }
    moves.sort_unstable();
    println!(
        "terminal 120x40: first paint {first} bytes; one-row selection move median {} bytes, max {} bytes",
        moves[moves.len() / 2],
        moves.last().copied().unwrap_or(0)
    );
    Ok(())
}

fn main() -> io::Result<()> {
    bench_search(10_000);
    bench_search(100_000);
    bench_bytes()
}
