//! Throughput of the sanitiser on the text it sees most: clean names and
//! notes (the borrowed fast path) and, rarely, hostile text.
//! Run: `cargo bench --bench sanitize`

use std::hint::black_box;
use std::time::Instant;

use chartty::fhir::sanitize::{sanitize, sanitize_json};

fn measure(label: &str, input: &str, iterations: u32) {
    let start = Instant::now();
    for _ in 0..iterations {
        black_box(sanitize(black_box(input)));
    }
    let elapsed = start.elapsed();
    let per = elapsed / iterations;
    let mb_s = input.len() as f64 * f64::from(iterations) / elapsed.as_secs_f64() / 1e6;
    println!(
        "{label:<28} {:>6} bytes  {:>9.1?}/call  {mb_s:>8.0} MB/s",
        input.len(),
        per
    );
}

fn main() {
    let name = "Anna Maria Müller-Lüdenscheidt";
    let ascii_note = "Pt seen for follow-up of hypertension. BP 142/88, HR 72. \
        Continue lisinopril 10 mg daily, recheck BMP in 2 weeks.\n"
        .repeat(64);
    let utf8_note =
        "患者は高血圧の経過観察のため来院。血圧 142/88。Überweisung an Kardiologie.\n".repeat(64);
    let hostile = "Doe\u{202e}nhoJ \u{1b}[2J\u{1b}]52;c;AAAA\u{7} zero\u{200b}width\r\n".repeat(64);

    measure("name (clean)", name, 2_000_000);
    measure("note, ASCII (clean)", &ascii_note, 20_000);
    measure("note, UTF-8 (clean)", &utf8_note, 20_000);
    measure("note, hostile", &hostile, 20_000);

    let bundle: serde_json::Value = serde_json::json!({
        "resourceType": "Bundle",
        "entry": (0..100).map(|i| serde_json::json!({
            "resource": {
                "resourceType": "Patient",
                "id": format!("p{i}"),
                "name": [{"family": "Müller", "given": ["Anna", "Maria"]}],
                "birthDate": "1962-03-04",
                "identifier": [{"system": "urn:mrn", "value": format!("MRN{i:06}")}]
            }
        })).collect::<Vec<_>>()
    });
    let iterations = 2_000;
    let mut copies: Vec<_> = (0..iterations).map(|_| bundle.clone()).collect();
    let start = Instant::now();
    for v in &mut copies {
        sanitize_json(black_box(v));
    }
    println!(
        "{:<28} {:>6} patients  {:>7.1?}/bundle",
        "search bundle (JSON, clean)",
        100,
        start.elapsed() / iterations
    );
}
