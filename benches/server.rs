//! Portal server speed at clinic scale: bulk load, patient name search per
//! keystroke, and the 7-search batch that opens a chart.
//!
//! `cargo bench --bench server` (set CHARTTY_BENCH_PATIENTS to change the
//! population, default 100000). Uses the demo generator's clinic when it
//! produces one, else a synthetic population with accented names. Prints
//! figures; asserts nothing about time.

use std::path::Path;
use std::time::{Duration, Instant};

use chartty::server::demo::{self, DemoOptions};
use chartty::server::{self, ServerConfig, Store, import_paths, search};
use serde_json::{Value, json};

const GIVEN: [&str; 40] = [
    "Agustín",
    "María",
    "José",
    "Ana",
    "Luis",
    "Sofía",
    "John",
    "Mary",
    "Ahmed",
    "Fatima",
    "Chen",
    "Olga",
    "Noé",
    "Zoë",
    "Renée",
    "Björn",
    "Øyvind",
    "Łukasz",
    "Çağla",
    "Đorđe",
    "Emma",
    "Liam",
    "Noah",
    "Olivia",
    "Ava",
    "Mateo",
    "Lucía",
    "Hugo",
    "Inés",
    "Raúl",
    "Yusuf",
    "Aiko",
    "Kenji",
    "Priya",
    "Arjun",
    "Siobhán",
    "Seán",
    "Amélie",
    "Grégoire",
    "Bernardo",
];
const SYLLABLES: [&str; 24] = [
    "or", "dó", "ñez", "gar", "ci", "a", "mül", "ler", "du", "bois", "ko", "wal", "ski", "ngu",
    "yen", "fon", "se", "ca", "pe", "ña", "tan", "ber", "stein", "ha",
];

/// Deterministic xorshift so every run builds the same clinic.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn family(rng: &mut Rng) -> String {
    let n = 2 + rng.next() % 2;
    let mut s: String = (0..n).map(|_| rng.pick(&SYLLABLES)).collect();
    if let Some(first) = s.chars().next() {
        s = first.to_uppercase().collect::<String>() + &s[first.len_utf8()..];
    }
    s
}

fn coding(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn population(patients: usize, charts: usize) -> impl Iterator<Item = Value> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..patients).flat_map(move |i| {
        let pid = format!("p{i}");
        let subject = json!({"reference": format!("Patient/{pid}")});
        let mut out = vec![json!({
            "resourceType": "Patient", "id": pid,
            "name": [{"family": family(&mut rng), "given": [rng.pick(&GIVEN)]}],
            "gender": if rng.next().is_multiple_of(2) { "female" } else { "male" },
            "birthDate": format!("{}-{:02}-{:02}", 1930 + rng.next() % 90, 1 + rng.next() % 12, 1 + rng.next() % 28),
            "identifier": [{"system": "urn:chartty:mrn", "value": format!("MRN{i:07}")}]
        })];
        let full = i < charts;
        let vitals = if full { 200 } else { 3 };
        let labs = if full { 100 } else { 0 };
        for k in 0..vitals + labs {
            let cat = if k < vitals { "vital-signs" } else { "laboratory" };
            out.push(json!({
                "resourceType": "Observation", "id": format!("o{i}-{k}"), "status": "final",
                "category": [coding("http://terminology.hl7.org/CodeSystem/observation-category", cat)],
                "code": coding("http://loinc.org", ["8867-4", "8310-5", "2345-7", "718-7"][k % 4]),
                "subject": subject,
                "effectiveDateTime": format!("20{:02}-{:02}-{:02}T10:00:00Z", 10 + k % 15, 1 + k % 12, 1 + k % 28),
                "valueQuantity": {"value": 60 + (rng.next() % 60), "unit": "/min"}
            }));
        }
        if full {
            for k in 0..5 {
                let status = if k < 3 { "active" } else { "resolved" };
                out.push(json!({"resourceType": "Condition", "id": format!("c{i}-{k}"), "subject": subject,
                    "clinicalStatus": coding("http://terminology.hl7.org/CodeSystem/condition-clinical", status)}));
                out.push(json!({"resourceType": "MedicationRequest", "id": format!("m{i}-{k}"), "status": if k < 3 { "active" } else { "stopped" },
                    "intent": "order", "subject": subject, "medicationCodeableConcept": {"text": "drug"}}));
            }
            for k in 0..2 {
                out.push(json!({"resourceType": "AllergyIntolerance", "id": format!("a{i}-{k}"), "patient": subject}));
            }
            for k in 0..10 {
                out.push(json!({"resourceType": "DocumentReference", "id": format!("d{i}-{k}"), "status": "current",
                    "type": coding("http://loinc.org", "11506-3"), "subject": subject,
                    "date": format!("2024-{:02}-01T09:00:00Z", 1 + k), "content": [{"attachment": {"data": "eA=="}}]}));
            }
            for k in 0..3 {
                out.push(json!({"resourceType": "Task", "id": format!("t{i}-{k}"), "status": "requested", "intent": "order",
                    "for": subject, "performerType": [coding("urn:chartty:role", "nurse")]}));
            }
        }
        out
    })
}

fn chart_searches(pid: &str) -> Vec<String> {
    vec![
        format!("AllergyIntolerance?patient={pid}"),
        format!("Condition?patient={pid}&clinical-status=active"),
        format!("MedicationRequest?patient={pid}&status=active"),
        format!("Observation?patient={pid}&category=vital-signs&_sort=-date&_count=20"),
        format!("Observation?patient={pid}&category=laboratory&_sort=-date&_count=20"),
        format!("DocumentReference?patient={pid}&_sort=-date&_count=10"),
        format!("Task?patient={pid}&status=requested,in-progress"),
    ]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    println!(
        "{label:<48} n={:<5} median {:>8.3} ms  p95 {:>8.3} ms  max {:>8.3} ms",
        samples.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
}

fn direct(conn: &rusqlite::Connection, url: &str) -> usize {
    let (ty, qs) = url.split_once('?').unwrap_or((url, ""));
    let q = search::parse(ty, &search::parse_query(qs), &[]).unwrap();
    let b = search::bundle(conn, &q, "http://bench/fhir", &|_| true).unwrap();
    b["entry"].as_array().map_or(0, Vec::len)
}

fn main() {
    let patients: usize = std::env::var("CHARTTY_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let charts = 200.min(patients);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");

    if let Some(data) = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/data"))
        .find(|d| d.is_dir())
    {
        let import_db = dir.path().join("import.db");
        let t = Instant::now();
        let r = import_paths(&import_db, &[data], false).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "import shared/data: {} files, {} resources in {secs:.2} s = {:.0} resources/s ({} reported)",
            r.files,
            r.resources,
            r.resources as f64 / secs,
            r.errors.len()
        );
    }

    let t = Instant::now();
    let mut store = Store::open(&db).unwrap();
    let opts = DemoOptions::new(patients, 1);
    let has_demo = demo::generate(DemoOptions::new(1, 1)).next().is_some();
    let n = if has_demo {
        store.ingest(demo::generate(opts)).unwrap()
    } else {
        store.ingest(population(patients, charts)).unwrap()
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}: {n} resources ({patients} patients) generated and stored in {secs:.1} s = {:.0} resources/s; db {:.0} MB",
        if has_demo {
            "demo clinic"
        } else {
            "synthetic clinic"
        },
        n as f64 / secs,
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    let chart_ids: Vec<String> = {
        let mut stmt = store
            .connection()
            .prepare("SELECT id FROM resources WHERE type = 'Patient' ORDER BY rid LIMIT ?1")
            .unwrap();
        stmt.query_map([charts as i64], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };

    // Keystroke-by-keystroke name search, in process (the store's own cost).
    // Names typed by a user: family or given names of patients spread over
    // the population, one keystroke at a time (up to five).
    let names: Vec<String> = {
        let step = (patients / 200).max(1) as i64;
        let mut stmt = store
            .connection()
            .prepare("SELECT json FROM resources WHERE type = 'Patient' ORDER BY rid")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .step_by(step as usize)
            .take(200)
            .enumerate()
            .filter_map(|(i, j)| {
                let v: Value = serde_json::from_str(&j).ok()?;
                let name = &v["name"][0];
                let s = if i % 2 == 0 {
                    name["family"].as_str()
                } else {
                    name["given"][0].as_str()
                };
                s.map(str::to_string)
            })
            .collect()
    };
    let mut prefixes = Vec::new();
    for name in &names {
        let chars: Vec<char> = name.chars().collect();
        for len in 1..=chars.len().min(5) {
            prefixes.push(chars[..len].iter().collect::<String>());
        }
    }
    let conn = store.connection();
    let mut samples = Vec::new();
    let mut hits = 0;
    for p in &prefixes {
        let url = format!("Patient?name={}&_count=20", urlencode(p));
        let t = Instant::now();
        hits += direct(conn, &url);
        samples.push(t.elapsed());
    }
    report("Patient?name=<prefix>&_count=20 (in process)", samples);
    println!("  ({} queries, {hits} entries returned)", prefixes.len());

    let mut samples = Vec::new();
    for pid in &chart_ids {
        let t = Instant::now();
        for s in chart_searches(pid) {
            direct(conn, &s);
        }
        samples.push(t.elapsed());
    }
    report("chart: 7 searches (in process)", samples);
    drop(store);

    // The same over HTTP (loopback, gzip, keep-alive) through the server.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let srv = server::start(
            ServerConfig {
                db: db.clone(),
                demo: None,
            },
            listener,
        )
        .await
        .unwrap();
        let c = reqwest::Client::new();
        let mut samples = Vec::new();
        for p in &prefixes {
            let url = format!("{}/Patient?name={}&_count=20", srv.base_url, urlencode(p));
            let t = Instant::now();
            let r = c.get(&url).send().await.unwrap();
            let _ = r.bytes().await.unwrap();
            samples.push(t.elapsed());
        }
        report("Patient?name=<prefix>&_count=20 (HTTP)", samples);
        let mut samples = Vec::new();
        let mut bytes = 0;
        for pid in &chart_ids {
            let bundle = json!({"resourceType": "Bundle", "type": "batch",
                "entry": chart_searches(pid).iter()
                    .map(|u| json!({"request": {"method": "GET", "url": u}})).collect::<Vec<_>>()});
            let t = Instant::now();
            let r = c
                .post(&srv.base_url)
                .header("content-type", "application/fhir+json")
                .header("accept-encoding", "gzip")
                .body(bundle.to_string())
                .send()
                .await
                .unwrap();
            let body = r.bytes().await.unwrap();
            samples.push(t.elapsed());
            bytes += body.len();
        }
        report("chart: 7-search batch Bundle (HTTP)", samples);
        println!(
            "  (mean response {} bytes decoded)",
            bytes / chart_ids.len().max(1)
        );
        srv.stop().await;
    });
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
