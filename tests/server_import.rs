//! Import of the shared Synthea data (Bundles and bulk NDJSON), twice, then
//! searches through a real server on a loopback port.

use std::path::{Path, PathBuf};

use chartty::server::{self, ServerConfig, Store, import_paths};
use serde_json::Value;

/// `../shared/data` beside the crate (looked up through the ancestors, so a
/// checkout one level deeper finds it too).
fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/data"))
        .find(|d| d.is_dir())
        .expect("shared/data next to the crate")
}

/// Patients in the data, counted independently of the importer: one per
/// readable Synthea Bundle with a Patient entry, plus the NDJSON lines.
fn expected_patients(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir.join("synthea-r4")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            n += v["entry"]
                .as_array()
                .map(|es| {
                    es.iter()
                        .filter(|e| e["resource"]["resourceType"] == "Patient")
                        .count()
                })
                .unwrap_or(0);
        }
    }
    let ndjson = std::fs::read_to_string(dir.join("bulk-ndjson-10/Patient.000.ndjson")).unwrap();
    n + ndjson.lines().filter(|l| !l.trim().is_empty()).count()
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.json().await.unwrap()
}

fn entries(bundle: &Value, mode: &str) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| e["resource"].clone())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_shared_data_twice_then_search_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let data = data_dir();

    let first = import_paths(&db, std::slice::from_ref(&data), false).unwrap();
    assert!(first.files >= 50, "{first:?}");
    // The zero-byte file with the mangled name is reported by name and position,
    // and is the only problem.
    assert_eq!(first.errors.len(), 1, "{:?}", first.errors);
    assert!(
        first.errors[0].contains("Bernardo_Ord"),
        "{:?}",
        first.errors
    );
    assert!(first.errors[0].contains("line 1"), "{:?}", first.errors);

    let store = Store::open(&db).unwrap();
    let patients = store.count("Patient").unwrap();
    assert_eq!(patients as usize, expected_patients(&data));
    let total: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM resources", [], |r| r.get(0))
        .unwrap();
    // Organizations and Practitioners repeated across Bundles are stored once.
    assert_eq!(total as usize, first.resources - first.unchanged);
    // Every urn:uuid reference was rewritten to Type/id.
    let dangling: i64 = store
        .connection()
        .query_row(
            "SELECT COUNT(*) FROM resources WHERE json LIKE '%\"reference\":\"urn:uuid:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dangling, 0);
    drop(store);

    let second = import_paths(&db, std::slice::from_ref(&data), false).unwrap();
    assert_eq!(second.resources, first.resources);
    assert_eq!(second.unchanged, second.resources, "{second:?}");
    let store = Store::open(&db).unwrap();
    let total_again: i64 = store
        .connection()
        .query_row("SELECT COUNT(*) FROM resources", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total_again, total);
    let max_version: i64 = store
        .connection()
        .query_row("SELECT MAX(version) FROM resources", [], |r| r.get(0))
        .unwrap();
    assert_eq!(max_version, 1);
    drop(store);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start(ServerConfig { db, demo: None }, listener)
        .await
        .unwrap();
    let base = srv.base_url.clone();
    let c = client();

    let found = get(&c, &format!("{base}/Patient?name=agus")).await;
    let matches = entries(&found, "match");
    assert_eq!(matches.len(), 1, "{found}");
    let agustin = &matches[0];
    assert_eq!(agustin["name"][0]["given"][0], "Agustín");
    let pid = agustin["id"].as_str().unwrap().to_string();

    let found = get(&c, &format!("{base}/Patient?name=ordon")).await;
    let names: Vec<&str> = entries(&found, "match")
        .iter()
        .filter_map(|p| p["name"][0]["family"].as_str())
        .map(|_| "x")
        .collect();
    assert_eq!(names.len(), 1, "{found}");
    assert_eq!(entries(&found, "match")[0]["name"][0]["family"], "Ordóñez");

    let mrn = agustin["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"]["coding"][0]["code"] == "MR")
        .unwrap()
        .clone();
    let url = format!(
        "{base}/Patient?identifier={}|{}",
        mrn["system"].as_str().unwrap(),
        mrn["value"].as_str().unwrap()
    );
    let found = get(&c, &url).await;
    assert_eq!(entries(&found, "match")[0]["id"], pid.as_str());

    // His observations and conditions, counted from his own Bundle.
    let bundle: Value = serde_json::from_str(
        &std::fs::read_to_string(
            data.join("synthea-r4/Agustín_Fonseca_cb5696d9-a0de-4f49-94f9-433f96a28eb0.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let count_of = |ty: &str| {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == ty)
            .count() as i64
    };
    let obs = get(
        &c,
        &format!("{base}/Observation?patient=Patient/{pid}&_summary=count"),
    )
    .await;
    assert_eq!(obs["total"], count_of("Observation"));
    let conds = get(&c, &format!("{base}/Condition?patient={pid}&_count=100")).await;
    let conds = entries(&conds, "match");
    assert_eq!(conds.len() as i64, count_of("Condition"));
    assert!(
        conds
            .iter()
            .all(|c| c["subject"]["reference"] == format!("Patient/{pid}").as_str())
    );
    let recent = get(
        &c,
        &format!("{base}/Observation?subject=Patient/{pid}&_sort=-date&_count=5&_include=Observation:patient"),
    )
    .await;
    let obs = entries(&recent, "match");
    assert_eq!(obs.len(), 5);
    let dates: Vec<&str> = obs
        .iter()
        .map(|o| o["effectiveDateTime"].as_str().unwrap())
        .collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted);
    assert_eq!(entries(&recent, "include").len(), 1);

    // NDJSON patients are there too, with their conditions.
    let first_line = std::fs::read_to_string(data.join("bulk-ndjson-10/Patient.000.ndjson"))
        .unwrap()
        .lines()
        .next()
        .map(str::to_string)
        .unwrap();
    let bulk: Value = serde_json::from_str(&first_line).unwrap();
    let bulk_id = bulk["id"].as_str().unwrap();
    let got = get(&c, &format!("{base}/Patient/{bulk_id}")).await;
    assert_eq!(got["name"], bulk["name"]);
    let conds = get(
        &c,
        &format!("{base}/Condition?patient=Patient/{bulk_id}&_summary=count"),
    )
    .await;
    assert!(conds["total"].as_i64().unwrap() > 0);

    srv.stop().await;
}

#[test]
fn conditional_references_bad_lines_and_bad_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let org_sys = "https://github.com/synthetichealth/synthea";
    // A patient Bundle whose Encounter points at an Organization and a
    // Practitioner by identifier; both are defined in files loaded later or
    // first (directory files sort first).
    let patient_bundle = serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Núñez", "given": ["Inés"]}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000002",
         "resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                      "subject": {"reference": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"},
                      "serviceProvider": {"reference": format!("Organization?identifier={org_sys}|org-1")},
                      "participant": [{"individual": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|42"}}]},
         "request": {"method": "POST", "url": "Encounter"}},
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000003",
         "resource": {"status": "final"},
         "request": {"method": "POST", "url": "Observation"}},
    ]});
    std::fs::write(data.join("a_patient.json"), patient_bundle.to_string()).unwrap();
    let org = serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:bbbbbbbb-0000-0000-0000-000000000001",
         "resource": {"resourceType": "Organization", "name": "Clinic", "identifier": [{"system": org_sys, "value": "org-1"}]},
         "request": {"method": "POST", "url": "Organization"}}]});
    // Sorts after the patient file and is not a directory file: resolved in the second pass.
    std::fs::write(data.join("z_orgs.json"), org.to_string()).unwrap();
    let pract = serde_json::json!({"resourceType": "Practitioner", "id": "pr-42",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "42"}]});
    std::fs::write(
        data.join("Practitioner.000.ndjson"),
        format!(
            "{pract}\n{{not json\n\n{}\n",
            serde_json::json!({"id": "x"})
        ),
    )
    .unwrap();
    std::fs::write(data.join("notes.txt"), "not data").unwrap();

    let db = dir.path().join("p.db");
    let report = import_paths(&db, &[data], false).unwrap();
    assert_eq!(report.files, 3, "{report:?}");
    let errors = report.errors.join("\n");
    assert_eq!(report.errors.len(), 3, "{errors}");
    assert!(
        errors.contains("Practitioner.000.ndjson: line 2:"),
        "{errors}"
    );
    assert!(
        errors.contains("Practitioner.000.ndjson: line 4:"),
        "{errors}"
    );
    assert!(errors.contains("a_patient.json: entry 2:"), "{errors}");

    let store = Store::open(&db).unwrap();
    let enc: String = store
        .connection()
        .query_row(
            "SELECT json FROM resources WHERE type = 'Encounter'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let enc: Value = serde_json::from_str(&enc).unwrap();
    assert_eq!(
        enc["participant"][0]["individual"]["reference"],
        "Practitioner/pr-42"
    );
    assert_eq!(
        enc["subject"]["reference"],
        "Patient/aaaaaaaa-0000-0000-0000-000000000001"
    );
    let org_ref = enc["serviceProvider"]["reference"].as_str().unwrap();
    assert_eq!(org_ref, "Organization/bbbbbbbb-0000-0000-0000-000000000001");
    assert_eq!(
        store
            .resolve_conditional(&format!("Organization?identifier={org_sys}|org-1"))
            .unwrap()
            .as_deref(),
        Some(org_ref)
    );
}
