//! Portal server speed at clinic scale: import of the shared FHIR data, demo
//! clinic generation and bulk load, patient name search per keystroke, the
//! 7-search batch that opens a chart, and `Observation/$lastn` (the latest
//! of every lab test of a chart, whatever the length of its history).
//!
//! Run by hand: `cargo bench --bench server`. `CHARTTY_BENCH_PATIENTS`
//! (default 100000) sets the size of the search database; the demo clinic
//! with full charts is the first min(10000, that) patients, the rest carry
//! demographics only. Prints figures; asserts nothing about time.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use chartty::server::demo::{self, DemoOptions};
use chartty::server::{self, ServerConfig, Store, import_paths, search};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use unicode_normalization::UnicodeNormalization;

/// The patients with full charts: the 10,000-patient demo clinic.
const DEMO_PATIENTS: usize = 10_000;
/// Charts opened in the batch measurement, spread over the demo clinic.
const CHARTS_OPENED: usize = 300;
/// Patients whose names are typed into the search box, spread over everyone.
const NAMES_TYPED: usize = 160;
const NAME_SEARCH_TARGET_MS: f64 = 5.0;
const CHART_BATCH_TARGET_MS: f64 = 20.0;
const LASTN_TARGET_MS: f64 = 5.0;

fn main() -> anyhow::Result<()> {
    let patients: usize = match std::env::var("CHARTTY_BENCH_PATIENTS") {
        Ok(v) => v
            .trim()
            .parse()
            .with_context(|| format!("CHARTTY_BENCH_PATIENTS={v:?} is not a number"))?,
        Err(_) => 100_000,
    };
    let patients = patients.max(1);
    let charts = DEMO_PATIENTS.min(patients);
    let dir = tempfile::tempdir()?;
    // A fixed "now" so every run builds the same clinic.
    let anchor = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .ok_or_else(|| anyhow!("fixed anchor"))?;
    let opts = DemoOptions {
        patients: charts,
        seed: 1,
        anchor,
    };

    println!("== import");
    match shared_data() {
        Some(data) => {
            let db = dir.path().join("import.db");
            let t = Instant::now();
            let report = import_paths(&db, std::slice::from_ref(&data), false)?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "import {}: {} files, {} resources in {secs:.2} s = {:.0} resources/s ({} errors reported)",
                data.display(),
                report.files,
                report.resources,
                report.resources as f64 / secs,
                report.errors.len()
            );
        }
        None => println!("import: shared data not found next to the crate, skipped"),
    }

    println!("\n== demo clinic ({charts} patients, seed {})", opts.seed);
    let t = Instant::now();
    let generated = demo::generate(opts).map(black_box).count();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "generation alone:   {generated} resources in {secs:.2} s = {:.0} resources/s, {:.0} patients/s",
        generated as f64 / secs,
        charts as f64 / secs
    );

    let db = dir.path().join("clinic.db");
    let mut store = Store::open(&db)?;
    let t = Instant::now();
    let written = store.ingest(demo::generate(opts))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "generation + ingest: {written} resources in {secs:.2} s = {:.0} resources/s into a fresh database ({:.0} MB)",
        written as f64 / secs,
        file_mb(&db)
    );

    println!("\n== search database ({patients} patients)");
    if patients > charts {
        let t = Instant::now();
        let more = store.ingest((charts..patients).map(|i| demo::patient(&opts, i)))?;
        println!(
            "added {more} demographics-only patients in {:.2} s",
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "contents: {patients} patients; full demo charts for the first {charts} (p000000..), \
         Patient resources only for the rest; {:.0} MB",
        file_mb(&db)
    );
    for (ty, n) in counts(&store)? {
        println!("  {ty:<20} {n:>9}");
    }

    let prefixes = typed_prefixes(&opts, patients);
    let chart_ids: Vec<String> = (0..CHARTS_OPENED.min(charts))
        .map(|k| format!("p{:06}", k * charts / CHARTS_OPENED.min(charts)))
        .collect();

    println!("\n== in process (the store's own cost, no HTTP)");
    let conn = store.connection();
    for p in prefixes.iter().take(20) {
        direct(conn, &name_search(p))?;
    }
    let mut samples = Vec::with_capacity(prefixes.len());
    let mut hits = 0;
    for p in &prefixes {
        let url = name_search(p);
        let t = Instant::now();
        hits += direct(conn, &url)?;
        samples.push(t.elapsed());
    }
    report(
        "Patient?name=<prefix>&_count=20",
        samples,
        NAME_SEARCH_TARGET_MS,
    );
    println!(
        "  {} prefixes of {NAMES_TYPED} names, {:.1} entries per page on average",
        prefixes.len(),
        hits as f64 / prefixes.len() as f64
    );
    let mut samples = Vec::with_capacity(chart_ids.len());
    let mut entries = 0;
    for pid in &chart_ids {
        let t = Instant::now();
        for s in chart_searches(pid) {
            entries += direct(conn, &s)?;
        }
        samples.push(t.elapsed());
    }
    report("chart: the 7 searches", samples, CHART_BATCH_TARGET_MS);
    println!(
        "  {} charts, {:.1} entries per chart on average",
        chart_ids.len(),
        entries as f64 / chart_ids.len() as f64
    );
    let lastn_ids = lastn_charts(conn, &chart_ids)?;
    let (long, short): (Vec<_>, Vec<_>) = lastn_ids.iter().partition(|(_, n)| *n >= 200);
    for (label, charts) in [("opened charts", &short), ("200+ lab results", &long)] {
        let mut samples = Vec::with_capacity(charts.len());
        let mut entries = 0;
        for (pid, _) in charts.iter() {
            let t = Instant::now();
            entries += direct_lastn(conn, &lastn_query(pid))?;
            samples.push(t.elapsed());
        }
        report(
            &format!("$lastn lab max=1, {label}"),
            samples,
            LASTN_TARGET_MS,
        );
        let most = charts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        println!(
            "  {} charts with up to {most} lab results, {:.1} tests each on average",
            charts.len(),
            entries as f64 / charts.len().max(1) as f64
        );
    }
    // What a client without $lastn does to find the latest labs: the newest
    // 200, which on these charts are finger-stick glucose only.
    let mut samples = Vec::with_capacity(long.len());
    for (pid, _) in &long {
        let url =
            format!("Observation?patient=Patient/{pid}&category=laboratory&_sort=-date&_count=200");
        let t = Instant::now();
        direct(conn, &url)?;
        samples.push(t.elapsed());
    }
    report_against("last 200 labs by search, 200+ lab results", samples, None);
    drop(store);

    println!("\n== over loopback HTTP (real server, keep-alive, gzip)");
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(over_http(db, &prefixes, &chart_ids, &lastn_ids))?;
    Ok(())
}

async fn over_http(
    db: PathBuf,
    prefixes: &[String],
    chart_ids: &[String],
    lastn_ids: &[(String, i64)],
) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let srv = server::start(ServerConfig { db, demo: None }, listener).await?;
    let client = reqwest::Client::builder().build()?;
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = client
                .get(&url)
                .header("accept", "application/fhir+json")
                .send()
                .await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::ensure!(status.is_success(), "{url}: {status}");
            Ok::<usize, anyhow::Error>(body.len())
        }
    };
    for p in prefixes.iter().take(20) {
        get(format!("{}/{}", srv.base_url, name_search(p))).await?;
    }
    let mut samples = Vec::with_capacity(prefixes.len());
    for p in prefixes {
        let url = format!("{}/{}", srv.base_url, name_search(p));
        let t = Instant::now();
        get(url).await?;
        samples.push(t.elapsed());
    }
    report(
        "GET Patient?name=<prefix>&_count=20",
        samples,
        NAME_SEARCH_TARGET_MS,
    );

    let mut samples = Vec::with_capacity(chart_ids.len());
    let mut bytes = 0;
    for pid in chart_ids {
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": chart_searches(pid)
                .into_iter()
                .map(|url| json!({ "request": { "method": "GET", "url": url } }))
                .collect::<Vec<_>>(),
        });
        let t = Instant::now();
        let response = client
            .post(&srv.base_url)
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        samples.push(t.elapsed());
        anyhow::ensure!(status.is_success(), "batch for {pid}: {status}");
        let reply: Value = serde_json::from_slice(&body)?;
        let failed = reply["entry"]
            .as_array()
            .map_or(7, |e| e.iter().filter(|e| !entry_ok(e)).count());
        anyhow::ensure!(failed == 0, "batch for {pid}: {failed} searches failed");
        bytes += body.len();
    }
    report(
        "POST / batch of the 7 chart searches",
        samples,
        CHART_BATCH_TARGET_MS,
    );
    println!(
        "  {} charts, {:.0} bytes per response on average (after gzip decoding)",
        chart_ids.len(),
        bytes as f64 / chart_ids.len().max(1) as f64
    );
    let mut samples = Vec::with_capacity(lastn_ids.len());
    for (pid, _) in lastn_ids {
        let url = format!("{}/{}", srv.base_url, lastn_query(pid));
        let t = Instant::now();
        get(url).await?;
        samples.push(t.elapsed());
    }
    report(
        "GET Observation/$lastn lab, max=1",
        samples,
        LASTN_TARGET_MS,
    );
    srv.stop().await;
    Ok(())
}

fn entry_ok(entry: &Value) -> bool {
    entry["response"]["status"]
        .as_str()
        .is_some_and(|s| s.starts_with('2'))
}

/// The shared test data beside the crate (`../shared/data`), if present.
fn shared_data() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::iter::once(manifest.join("../shared/data"))
        .chain(manifest.ancestors().map(|a| a.join("shared/data")))
        .find(|d| d.is_dir())
}

fn file_mb(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0, |m| m.len()) as f64 / 1e6
}

fn counts(store: &Store) -> anyhow::Result<Vec<(String, i64)>> {
    let mut stmt = store.connection().prepare(
        "SELECT type, COUNT(*) FROM resources WHERE deleted = 0 GROUP BY type ORDER BY type",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What people type into the search box: the first one to five letters of
/// family and given names of patients spread over the whole database, as
/// written (Ordó) and as typed on a plain keyboard (ordo).
fn typed_prefixes(opts: &DemoOptions, patients: usize) -> Vec<String> {
    let mut prefixes = Vec::new();
    let typed = NAMES_TYPED.min(patients);
    for k in 0..typed {
        let index = k * patients / typed;
        let p = demo::patient(opts, index);
        let name = &p["name"][0];
        let word = if k % 2 == 0 {
            name["family"].as_str()
        } else {
            name["given"][0].as_str()
        };
        let Some(word) = word else { continue };
        let plain: String = word
            .nfd()
            .filter(char::is_ascii)
            .collect::<String>()
            .to_lowercase();
        let source = if k % 3 == 2 { plain.as_str() } else { word };
        let chars: Vec<char> = source.chars().collect();
        for len in 1..=chars.len().min(5) {
            prefixes.push(chars[..len].iter().collect());
        }
    }
    prefixes
}

fn name_search(prefix: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
    format!("Patient?name={encoded}&_count=20")
}

/// What the client sends to open a chart in one round trip.
fn chart_searches(pid: &str) -> Vec<String> {
    let patient = format!("Patient/{pid}");
    vec![
        format!("AllergyIntolerance?patient={patient}"),
        format!("Condition?patient={patient}&clinical-status=active"),
        format!("MedicationRequest?patient={patient}&status=active"),
        format!("Observation?patient={patient}&category=vital-signs&_sort=-date&_count=50"),
        format!("Observation?patient={patient}&category=laboratory&_sort=-date&_count=50"),
        format!("DocumentReference?patient={patient}&_sort=-date&_count=10"),
        format!("Task?patient={patient}"),
    ]
}

/// The charts `$lastn` is measured on: the opened charts plus every chart
/// with 200 or more lab results (the finger-stick glucose patients), each
/// with its number of lab results.
fn lastn_charts(
    conn: &rusqlite::Connection,
    chart_ids: &[String],
) -> anyhow::Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT substr(l.subject, 9), COUNT(*) FROM idx_lastn l
         JOIN idx_token t ON t.rid = l.rid AND t.param = 'category' AND t.code = 'laboratory'
         WHERE l.subject LIKE 'Patient/%' GROUP BY l.subject",
    )?;
    let counts: std::collections::HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<(String, i64)> = chart_ids
        .iter()
        .map(|p| (p.clone(), counts.get(p).copied().unwrap_or(0)))
        .collect();
    let mut long: Vec<(String, i64)> = counts
        .into_iter()
        .filter(|(p, n)| *n >= 200 && !chart_ids.contains(p))
        .collect();
    long.sort();
    out.extend(long);
    Ok(out)
}

fn lastn_query(pid: &str) -> String {
    format!("Observation/$lastn?patient=Patient/{pid}&category=laboratory&max=1")
}

fn direct_lastn(conn: &rusqlite::Connection, url: &str) -> anyhow::Result<usize> {
    let (_, qs) = url.split_once('?').unwrap_or((url, ""));
    let bundle = chartty::server::lastn::bundle(
        conn,
        &search::parse_query(qs),
        &[],
        "http://bench/fhir",
        false,
    )
    .map_err(|e| anyhow!("{url}: {}", e.message))?;
    Ok(bundle["entry"].as_array().map_or(0, Vec::len))
}

/// Runs one search the way the server does, without HTTP; returns the entries.
fn direct(conn: &rusqlite::Connection, url: &str) -> anyhow::Result<usize> {
    let (ty, qs) = url.split_once('?').unwrap_or((url, ""));
    let q = search::parse(ty, &search::parse_query(qs), &[])
        .map_err(|e| anyhow!("{url}: {}", e.message))?;
    let bundle = search::bundle(conn, &q, "http://bench/fhir", &|_| true)
        .map_err(|e| anyhow!("{url}: {}", e.message))?;
    Ok(bundle["entry"].as_array().map_or(0, Vec::len))
}

/// Prints the distribution of `samples`, against a target median if one
/// applies (a comparison line has none).
fn report(label: &str, samples: Vec<Duration>, target_ms: f64) {
    report_against(label, samples, Some(target_ms));
}

fn report_against(label: &str, mut samples: Vec<Duration>, target_ms: Option<f64>) {
    if samples.is_empty() {
        println!("{label}: no samples");
        return;
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    let median = ms(at(0.5));
    let verdict = match target_ms {
        Some(t) if median <= t => format!("  (target median <= {t} ms: met)"),
        Some(t) => format!("  (target median <= {t} ms: MISSED)"),
        None => "  (for comparison)".to_string(),
    };
    println!(
        "{label:<41} n={:<5} median {median:>7.3} ms  p95 {:>7.3} ms  max {:>7.3} ms{verdict}",
        samples.len(),
        ms(at(0.95)),
        ms(samples[samples.len() - 1]),
    );
}
