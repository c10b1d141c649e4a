//! The portal server under load: requests per second and latency (median,
//! p99) at 1, 16 and 200 concurrent keep-alive connections, for the mix a
//! clinic's clients send (patient name searches, the batch that opens a
//! chart, reads), and the process's resident memory before and after 20,000
//! requests.
//!
//! Run by hand: `cargo bench --bench server_load`. The server runs in this
//! process with a demo clinic of `CHARTTY_LOAD_PATIENTS` patients (default
//! 2,000). The 20,000 requests are repeated `CHARTTY_LOAD_PASSES` times
//! (default 2) to tell a leak from a high-water mark. The load client speaks
//! HTTP/1.1 with gzip, as the TUI does, one request in flight per connection;
//! it shares the process (and the machine's cores) with the server, so the
//! memory figures include it, the same in every run. Prints figures; asserts
//! nothing about time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chartty::roles::Role;
use chartty::server::demo::{self, DemoOptions};
use chartty::server::{self, ServerConfig};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

/// (concurrent connections, requests): 20,000 requests in all.
const LEVELS: &[(usize, usize)] = &[(1, 2_000), (16, 6_000), (200, 12_000)];
const WARM_UP: usize = 500;

fn main() -> anyhow::Result<()> {
    let patients: usize = match std::env::var("CHARTTY_LOAD_PATIENTS") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("CHARTTY_LOAD_PATIENTS={v:?} is not a number"))?,
        Err(_) => 2_000,
    };
    let patients = patients.max(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passes: usize = match std::env::var("CHARTTY_LOAD_PASSES") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("CHARTTY_LOAD_PASSES={v:?} is not a number"))?,
        Err(_) => 2,
    };
    rt.block_on(run(patients, passes.max(1)))
}

/// One request of the mix.
#[derive(Clone)]
enum Call {
    Get(String),
    Batch(String),
}

async fn run(patients: usize, passes: usize) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let anchor = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .ok_or_else(|| anyhow!("fixed anchor"))?;
    let opts = DemoOptions {
        patients,
        seed: 1,
        anchor,
    };
    let t = Instant::now();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let srv = server::start(
        ServerConfig {
            db: dir.path().join("load.db"),
            demo: Some(opts),
        },
        listener,
    )
    .await?;
    println!(
        "demo clinic of {patients} patients ready in {:.1} s; server at {}",
        t.elapsed().as_secs_f64(),
        srv.base_url
    );
    let token = srv
        .token_for(Role::Attending)
        .ok_or_else(|| anyhow!("no attending user"))?
        .to_string();
    let mix = Arc::new(mix(&opts, patients));
    println!(
        "mix of {} requests, repeated: 4 in 10 patient name searches, 2 chart batches \
         (7 searches each), 2 patient reads, 1 lab search, 1 $lastn",
        mix.len()
    );

    load(&srv.base_url, &token, &mix, 16, WARM_UP).await?;
    let rss_before = resident_kb();
    println!("\nresident memory after start and {WARM_UP} warm-up requests: {rss_before} kB");
    println!(
        "{:>11} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "connections", "requests", "req/s", "median ms", "p99 ms", "max ms"
    );
    let mut total = 0;
    for &(connections, requests) in LEVELS {
        let r = load(&srv.base_url, &token, &mix, connections, requests).await?;
        total += requests;
        println!(
            "{connections:>11} {requests:>9} {:>10.0} {:>10.2} {:>10.2} {:>10.2}   resident {} kB",
            r.per_second,
            r.median_ms,
            r.p99_ms,
            r.max_ms,
            resident_kb()
        );
    }
    let rss_after = resident_kb();
    println!(
        "resident memory before {total} requests: {rss_before} kB, after: {rss_after} kB ({:+} kB)",
        rss_after as i64 - rss_before as i64
    );
    // The same again: memory that keeps growing is a leak, memory that
    // stays where the busiest level left it is that level's high-water mark.
    let mut last = rss_after;
    for pass in 2..=passes {
        for &(connections, requests) in LEVELS {
            load(&srv.base_url, &token, &mix, connections, requests).await?;
        }
        let rss = resident_kb();
        println!(
            "after pass {pass} ({} requests in all): {rss} kB ({:+} kB since the pass before)",
            pass * total,
            rss as i64 - last as i64
        );
        last = rss;
    }
    srv.stop().await;
    Ok(())
}

/// The requests of the mix, spread over the clinic.
fn mix(opts: &DemoOptions, patients: usize) -> Vec<Call> {
    let mut calls = Vec::new();
    for k in 0..200 {
        let index = (k * 7919) % patients;
        let pid = format!("p{index:06}");
        let p = demo::patient(opts, index);
        let family = p["name"][0]["family"].as_str().unwrap_or("a");
        let given = p["name"][0]["given"][0].as_str().unwrap_or("a");
        let prefix = |word: &str, n: usize| -> String {
            let s: String = word.chars().take(n).collect();
            url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
        };
        let name = |w: &str, n: usize| format!("Patient?name={}&_count=20", prefix(w, n));
        calls.extend([
            Call::Get(name(family, 2)),
            Call::Get(format!("Patient/{pid}")),
            Call::Get(name(family, 4)),
            Call::Batch(pid.clone()),
            Call::Get(format!(
                "Observation?patient=Patient/{pid}&category=laboratory&_sort=-date&_count=20"
            )),
            Call::Get(name(given, 3)),
            Call::Get(format!("Patient/{pid}")),
            Call::Batch(pid.clone()),
            Call::Get(name(given, 1)),
            Call::Get(format!(
                "Observation/$lastn?patient=Patient/{pid}&category=laboratory&max=1"
            )),
        ]);
    }
    calls
}

/// What the client sends to open a chart in one round trip.
fn chart_batch(pid: &str) -> String {
    let patient = format!("Patient/{pid}");
    let searches = [
        format!("AllergyIntolerance?patient={patient}"),
        format!("Condition?patient={patient}&clinical-status=active"),
        format!("MedicationRequest?patient={patient}&status=active"),
        format!("Observation?patient={patient}&category=vital-signs&_sort=-date&_count=50"),
        format!("Observation?patient={patient}&category=laboratory&_sort=-date&_count=50"),
        format!("DocumentReference?patient={patient}&_sort=-date&_count=10"),
        format!("Task?patient={patient}"),
    ];
    json!({
        "resourceType": "Bundle",
        "type": "batch",
        "entry": searches
            .iter()
            .map(|url| json!({ "request": { "method": "GET", "url": url } }))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

struct Figures {
    per_second: f64,
    median_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// `requests` requests of the mix over `connections` keep-alive connections.
async fn load(
    base: &str,
    token: &str,
    mix: &Arc<Vec<Call>>,
    connections: usize,
    requests: usize,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // One pool for all: each of the `connections` workers has one request
    // in flight at a time, so the pool holds that many keep-alive
    // connections.
    let client = reqwest::Client::builder()
        .http1_only()
        .gzip(true)
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let client = client.clone();
        let (base, auth) = (base.to_string(), format!("Bearer {token}"));
        let (mix, next) = (mix.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let call = &mix[i % mix.len()];
                let t = Instant::now();
                let request = match call {
                    Call::Get(path) => client.get(format!("{base}/{path}")),
                    Call::Batch(pid) => client
                        .post(&base)
                        .header("content-type", "application/fhir+json")
                        .body(chart_batch(pid)),
                };
                let response = request
                    .header("authorization", &auth)
                    .header("accept", "application/fhir+json")
                    .send()
                    .await?;
                let status = response.status();
                let body = response.bytes().await?;
                samples.push(t.elapsed());
                anyhow::ensure!(status.is_success(), "{status}");
                if let Call::Batch(pid) = call {
                    let reply: Value = serde_json::from_slice(&body)?;
                    let failed = reply["entry"].as_array().map_or(7, |e| {
                        e.iter()
                            .filter(|e| {
                                !e["response"]["status"]
                                    .as_str()
                                    .is_some_and(|s| s.starts_with('2'))
                            })
                            .count()
                    });
                    anyhow::ensure!(failed == 0, "batch for {pid}: {failed} searches failed");
                }
            }
            Ok::<_, anyhow::Error>(samples)
        }));
    }
    let mut samples = Vec::with_capacity(requests);
    for w in workers {
        samples.extend(w.await??);
    }
    let wall = started.elapsed().as_secs_f64();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |p: f64| ms(samples[((samples.len() - 1) as f64 * p).round() as usize]);
    Ok(Figures {
        per_second: samples.len() as f64 / wall,
        median_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

/// Resident memory of this process (server and load client), in kB.
fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}
