//! The chart tells the truth or says it cannot: the real app, driven by keys,
//! against the real portal server loaded with a clinic shaped like real data
//! (every status, mixed units, a busy record, names with diacritics), and
//! against a server that sends records a strict reader cannot decode.

mod common;

use std::time::Duration;

use chartty::api::{ApiClient, ApiReply, ApiRequest, Features, Write};
use chartty::chart::RecordNumber;
use chartty::chart::results::Kind;
use chartty::tui::panes::PaneId;
use chartty::tui::popups::Popup;
use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_decides_what_the_cover_sheet_says() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    open(&mut h, "lan", LAN).await;
    let text = screen(&mut h, 120, 40);
    let lines: Vec<&str> = text.lines().collect();
    let banner = lines[1];
    // Only confirmed or unconfirmed active allergies are in the banner.
    assert!(
        banner.starts_with("ALLERGIES: Penicillin (high), Latex (unconfirmed)"),
        "{banner}"
    );
    for gone in ["Sulfonamides", "Codeine", "Shellfish"] {
        assert!(!banner.contains(gone), "{gone} in {banner}");
    }
    let mut failures = Vec::new();
    let mut expect = |present: bool, what: &str| {
        if text.contains(what) != present {
            failures.push(format!(
                "{} {what:?}",
                if present { "missing" } else { "unexpected" }
            ));
        }
    };
    // Problems: relapse/recurrence are active; refuted and entered in error are not problems.
    expect(true, "Type 2 diabetes mellitus");
    expect(true, "Essential hypertension [recurrence]");
    expect(false, "Asthma");
    expect(false, "Pneumonia");
    expect(false, "lupus");
    // (the server sent only active, recurrence and relapse problems.)
    expect(true, "(1 entered in error, 1 refuted not shown)");
    expect(
        true,
        "(1 entered in error, 1 refuted, 1 resolved not shown)",
    );
    // Medications: on-hold stays, marked.
    expect(true, "Metformin 500 MG Oral Tablet");
    expect(true, "Warfarin 5 MG Oral Tablet [held]");
    expect(false, "Lisinopril");
    expect(false, "Amoxicillin");
    // The critical potassium of 43 days ago is still the latest: listed, with its age;
    // the newer cancelled and entered-in-error values are not values.
    expect(true, "Potassium: 6.8 mmol/L HH!");
    expect(true, "(6 wk ago)");
    expect(false, "7.9");
    expect(false, "3.1 mmol/L");
    // Vitals as sent, in human units; an old one says how old.
    expect(true, "Body temperature: 37.20 °C");
    expect(true, "Heart rate: 88 /min");
    expect(true, "(6 mo ago)");
    expect(false, "Cel");
    expect(false, "Wrong visit");
    assert!(failures.is_empty(), "{}\n{text}", failures.join("\n"));
    let k = h.app.chart().unwrap();
    assert!(k.allergies.is_complete() && k.labs.is_complete());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_keep_each_tests_latest_value_and_one_unit_per_trend() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    open(&mut h, "lan", LAN).await;
    h.keys("3").unwrap();
    let groups = h.app.panes.results.groups().to_vec();
    let by_name = |n: &str| {
        groups.iter().find(|g| g.name == n).unwrap_or_else(|| {
            panic!(
                "{n} listed: {:?}",
                groups.iter().map(|g| &g.name).collect::<Vec<_>>()
            )
        })
    };
    // 220 glucose readings do not push the potassium or the HbA1c off the chart.
    let k = by_name("Potassium");
    assert_eq!(k.latest().map(|o| o.value_label()).as_deref(), Some("6.8"));
    assert_eq!(
        k.left_out.len(),
        0,
        "the server's $lastn left out what is not a value"
    );
    assert!(
        by_name("Glucose").values.len() <= 10,
        "the last few per test"
    );
    // HbA1c in % and in mmol/mol: two series, each saying its unit.
    by_name("Hemoglobin A1c (in %)");
    by_name("Hemoglobin A1c (in mmol/mol)");
    // Creatinine in two units: one trend in the latest unit.
    let cr = by_name("Creatinine");
    assert_eq!(cr.values.len(), 2);
    let trend = cr.trend();
    assert!((trend[0].1 - 97.0 / 88.4).abs() < 0.01, "{trend:?}");
    assert!(cr.converted());
    let text = screen(&mut h, 120, 40);
    for shown in ["<0.3", "2.50 prelim", "13.0 amended", "1.10", "°C", "10³"] {
        if shown == "10³" {
            continue;
        }
        assert!(text.contains(shown), "{shown}:\n{text}");
    }
    assert!(!text.contains("Cel"), "{text}");
    // The history of one test is fetched whole, for that test alone.
    let at = h
        .app
        .panes
        .results
        .groups()
        .iter()
        .position(|g| g.name == "Glucose")
        .unwrap();
    h.keys(&"j".repeat(at)).unwrap();
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert!(
        h.sent().iter().any(|s| s
            .path_and_query
            .contains("code=http%3A%2F%2Floinc.org%7C2345-7")),
        "{:?}",
        h.sent()
    );
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("220 values, whole history"), "{text}");
    assert!(
        groups
            .iter()
            .all(|g| g.kind == Kind::Lab || g.kind == Kind::Vital)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lastn_the_key_tests_are_fetched_on_their_own() {
    let clinic = messy_portal().await;
    let client = ApiClient::new(&clinic.server.base_url, None, Duration::from_secs(30))
        .unwrap()
        .with_request_log();
    let reply = client
        .execute(ApiRequest::OpenChart {
            patient_id: LAN.into(),
            name: None,
            features: Features {
                lastn: false,
                conditional_create: true,
            },
        })
        .await
        .unwrap();
    let ApiReply::Chart(chart) = reply else {
        panic!("a chart")
    };
    let labs = &chart.labs.items;
    assert!(
        labs.iter().any(|o| o.id.as_deref() == Some("k-crit")),
        "the potassium is there although 220 glucose values fill the window"
    );
    assert!(labs.iter().any(|o| o.id.as_deref() == Some("a1c-pct")));
    assert!(
        chart.labs.more_on_server,
        "the window was cut, and the chart says so"
    );
    assert_eq!(
        client.sent().len(),
        1,
        "still one round trip: {:?}",
        client.sent()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_say_what_was_entered_in_error_and_read_html_as_text() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    open(&mut h, "lan", LAN).await;
    h.keys("4").unwrap();
    let notes = h.app.panes.notes.notes().to_vec();
    assert!(notes.iter().all(|n| !n.text.contains("wrong chart")));
    assert_eq!(
        h.app.panes.notes.notices(),
        ["1 note entered in error, not shown"]
    );
    let marks: Vec<Option<&str>> = notes.iter().map(|n| n.mark).collect();
    assert!(marks.contains(&Some("superseded")) && marks.contains(&Some("draft")));
    let html = notes
        .iter()
        .position(|n| n.kind == "Discharge summary")
        .unwrap();
    assert_eq!(
        notes[html].text,
        "Plan\nRecheck INR & potassium in 1 wk.\n• Hold warfarin"
    );
    h.keys(&"j".repeat(html)).unwrap();
    h.keys("<enter>").unwrap();
    let text = screen(&mut h, 100, 30);
    assert!(
        text.contains("• Hold warfarin") && !text.contains("<li>"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_the_right_patient() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    // Folded names and birth dates as people type them, matched locally.
    for (typed, id) in [
        ("soren", SOREN),
        ("yilmaz", AYSE),
        ("lukasz", LUKASZ),
        ("wojcik", LUKASZ),
        ("05/14/1971", LAN),
        ("14.05.1971", LAN),
        ("1971-05-14", LAN),
    ] {
        h.keys(&format!("/<c-u>{typed}")).unwrap();
        h.settle().await;
        let ids: Vec<&str> = h
            .app
            .panes
            .search
            .listed()
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, [id], "{typed}");
    }
    assert!(
        h.sent()
            .iter()
            .any(|s| s.path_and_query.contains("birthdate=1971-05-14")),
        "a typed date goes to the server as a FHIR date"
    );
    // Same name: both listed with birth date and MRN, and marked.
    h.keys("/<c-u>nguyen").unwrap();
    h.settle().await;
    let mut ids: Vec<&str> = h
        .app
        .panes
        .search
        .listed()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, [LAN, LAN_TWIN]);
    let text = screen(&mut h, 120, 40);
    assert!(
        text.contains("1971-05-14") && text.contains("1980-09-02"),
        "{text}"
    );
    assert!(
        text.contains("00100001") && text.contains("00100002"),
        "{text}"
    );
    // Opening one says whom it could be confused with.
    open(&mut h, "nguyen thi lan", LAN).await;
    let text = screen(&mut h, 120, 40);
    let first = text.lines().next().unwrap_or("");
    assert!(
        first.contains("SAME NAME AS 1980-09-02 (MRN 00100002)"),
        "{first}"
    );
    // No MRN on file: another identifier, never "MRN none".
    open(&mut h, "okafor", NO_MRN).await;
    let text = screen(&mut h, 120, 40);
    assert!(
        text.lines().next().unwrap_or("").contains("ID 999-55-0001"),
        "{text}"
    );
    assert!(!text.contains("MRN none"));
    // An identifier the list does not show (an SSN): what the server found is listed.
    h.keys("/<c-u>999-12-3456").unwrap();
    h.settle().await;
    let ids: Vec<&str> = h
        .app
        .panes
        .search
        .listed()
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        ids,
        [LAN],
        "the server's identifier match is not filtered away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_that_opens_is_the_one_chosen_last() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    // Enter while the search is still running waits for it, then opens
    // what is selected then.
    h.keys("/soren<enter>").unwrap();
    assert!(h.app.panes.search.waiting_to_open());
    assert!(h.app.chart().is_none());
    h.settle().await;
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.as_deref()),
        Some(SOREN)
    );
    // Two charts asked for in a row: only the later one ever shows, even
    // when the earlier one would answer last.
    h.keys("/<c-u>o").unwrap();
    h.settle().await;
    let rows: Vec<String> = h
        .app
        .panes
        .search
        .listed()
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert!(rows.len() >= 2, "{rows:?}");
    h.keys("<enter>").unwrap();
    h.keys("<down><enter>").unwrap();
    assert_eq!(
        h.app.stats().stale_dropped,
        1,
        "the first open was superseded"
    );
    assert_eq!(h.app.in_flight(), 1);
    h.settle().await;
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.as_deref()),
        Some(rows[1].as_str())
    );
    // A chart that arrives while the user types in the search box leaves the
    // focus where it is.
    h.keys("/<c-u>yil").unwrap();
    h.keys("<esc>").unwrap();
    h.settle().await;
    h.keys("<enter>").unwrap();
    h.keys("/").unwrap();
    h.settle().await;
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.as_deref()),
        Some(AYSE)
    );
    assert_eq!(h.app.focus(), PaneId::Search, "typing is not interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_screen_says_how_many_patients_the_clinic_has() {
    let clinic = messy_portal().await;
    let s = chartty::config::Settings {
        page_size: 2,
        ..settings()
    };
    let mut h = app_at(&clinic.server.base_url, &s).await;
    let text = screen(&mut h, 120, 40);
    assert!(
        text.contains("first 6 of 6 patients") || text.contains("all 6 patients loaded"),
        "{text}"
    );
    let s = chartty::config::Settings {
        page_size: 1,
        ..settings()
    };
    let mut h = app_at(&clinic.server.base_url, &s).await;
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("first 4 of 6 patients loaded"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_shown_in_the_clinicians_zone() {
    let clinic = messy_portal().await;
    let s = chartty::config::Settings {
        time_zone: chrono_tz::America::Chicago,
        ..settings()
    };
    let mut h = app_at(&clinic.server.base_url, &s).await;
    open(&mut h, "lan", LAN).await;
    let text = screen(&mut h, 120, 40);
    // The temperature was taken at 10:00 UTC yesterday: 04:00 in Chicago.
    let yesterday = (anchor() - chrono::Duration::days(1)).format("%Y-%m-%d");
    assert!(text.contains(&format!("{yesterday} 04:00")), "{text}");
    assert!(text.contains("times CST"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paste_of_any_size_goes_to_the_search_box_at_once() {
    let clinic = messy_portal().await;
    let mut h = app_at(&clinic.server.base_url, &settings()).await;
    h.keys("/").unwrap();
    let big: String = "søren ".repeat(1_700);
    assert!(big.len() >= 10_000);
    h.paste(&big);
    assert_eq!(h.app.panes.search.query(), big, "applied at once, whole");
    h.settle().await;
    // Pasted line breaks do not end the query or submit anything.
    h.keys("<c-u>").unwrap();
    h.paste("soren\nx");
    assert_eq!(h.app.panes.search.query(), "soren x");
    assert!(h.app.chart().is_none());
}

/// A server that sends a chart holding records a strict reader cannot decode.
async fn malformed_server() -> (String, tokio::task::JoinHandle<()>) {
    use axum::http::{Method, StatusCode, Uri};
    async fn handle(method: Method, uri: Uri, body: String) -> (StatusCode, axum::Json<Value>) {
        let p = json!({"reference": "Patient/m1"});
        let patient = json!({"resourceType": "Patient", "id": "m1",
            "name": [{"family": "Malformed", "given": ["Mia"]}], "birthDate": "1970-01-01"});
        let of = |ty: &str| -> Vec<Value> {
            match ty {
                "AllergyIntolerance" => vec![
                    json!({"resourceType": "AllergyIntolerance", "id": "a-bad", "patient": p, "code": "penicillin"}),
                ],
                "Observation" => vec![
                    json!({"resourceType": "Observation", "id": "o-bad", "status": "final", "subject": p,
                        "category": [{"coding": [{"code": "laboratory"}]}],
                        "code": {"text": "Potassium"}, "valueQuantity": {"value": "5.0"}}),
                    json!({"resourceType": "Observation", "id": "o-ok", "status": "final", "subject": p,
                        "category": {"coding": {"code": "laboratory"}},
                        "code": {"text": "Sodium"}, "valueQuantity": {"value": 140}}),
                ],
                "Patient" => vec![patient.clone()],
                _ => vec![],
            }
        };
        let bundle = |ty: &str| {
            json!({"resourceType": "Bundle", "type": "searchset",
                "entry": of(ty).into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
        };
        let path = uri.path().trim_start_matches("/fhir").trim_matches('/');
        if method == Method::POST && path.is_empty() {
            // A batch: answer each GET entry.
            let req: Value = serde_json::from_str(&body).unwrap_or_default();
            let entries: Vec<Value> = req["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    let url = e["request"]["url"].as_str().unwrap_or("");
                    let ty = url.split(['?', '/']).next().unwrap_or("");
                    let resource = if url.starts_with("Patient/") {
                        patient.clone()
                    } else {
                        bundle(ty)
                    };
                    json!({"resource": resource, "response": {"status": "200 OK"}})
                })
                .collect();
            return (
                StatusCode::OK,
                axum::Json(
                    json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
                ),
            );
        }
        if path == "Patient" {
            return (StatusCode::OK, axum::Json(bundle("Patient")));
        }
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"resourceType": "OperationOutcome"})),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(handle);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_cannot_be_read_is_counted_and_shown_raw() {
    let (base, server) = malformed_server().await;
    let mut h = app_at(&base, &settings()).await;
    open(&mut h, "malformed", "m1").await;
    let chart = h.app.chart().unwrap();
    assert_eq!(chart.allergies.unreadable.len(), 1);
    assert_eq!(chart.labs.unreadable.len(), 1);
    assert_eq!(
        chart.labs.items.len(),
        1,
        "one element where an array belongs is read"
    );
    let text = screen(&mut h, 120, 40);
    let banner = text.lines().nth(1).unwrap_or("");
    assert!(
        banner.starts_with("ALLERGIES UNKNOWN — ask the patient · 1 allergy record could not be read — v shows it raw"),
        "{banner}"
    );
    assert!(
        !text.contains("No allergies recorded") && !text.contains("No known"),
        "{text}"
    );
    assert!(
        text.contains("1 lab result record could not be read"),
        "{text}"
    );
    // `v` on the cover sheet shows what could not be read, as sent.
    h.keys("v").unwrap();
    let Some(Popup::Raw(raw)) = h.app.popup() else {
        panic!("the raw view is open: {:?}", h.app.popup())
    };
    let raw = raw.text();
    assert!(raw.contains("\"code\": \"penicillin\""), "{raw}");
    assert!(raw.contains("\"value\": \"5.0\""), "{raw}");
    h.keys("<esc>").unwrap();
    assert!(h.app.popup().is_none());
    assert_eq!(h.app.focus(), PaneId::Summary);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_write_path_never_duplicates_or_overwrites() {
    let clinic = messy_portal().await;
    let client = ApiClient::new(&clinic.server.base_url, None, Duration::from_secs(30))
        .unwrap()
        .with_record_number(RecordNumber::default());
    let task = json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "for": {"reference": format!("Patient/{LAN}")},
        "description": "Call about INR",
        "input": [{"type": {"text": "dose"}, "valueDecimal": num("2.50")}],
        "extension": [{"url": "https://other.example/fhir/ext", "valueString": "kept"}]});
    let create = Write::Create {
        resource: task.clone(),
        client_id: "6f0c2a8e-0b7d-4c1e-9a55-1d2f3e4a5b6c".into(),
        conditional: true,
        replace_existing: false,
    };
    let written = |r: ApiReply| match r {
        ApiReply::Written { resource, version } => (resource, version),
        other => panic!("written: {other:?}"),
    };
    let (first, v1) = written(
        client
            .execute(ApiRequest::Write(create.clone()))
            .await
            .unwrap(),
    );
    // The same create again (a retry after a lost reply) finds the first copy.
    let (again, _) = written(client.execute(ApiRequest::Write(create)).await.unwrap());
    assert_eq!(first["id"], again["id"], "no second task");
    let id = first["id"].as_str().unwrap().to_string();
    // Read, change one field, write back with the version read.
    let mut changed = first.clone();
    changed["status"] = json!("in-progress");
    let (stored, v2) = written(
        client
            .execute(ApiRequest::Write(Write::Update {
                resource: changed.clone(),
                version: v1.clone().unwrap(),
            }))
            .await
            .unwrap(),
    );
    assert_ne!(v1, v2, "a new version");
    assert_eq!(
        stored["extension"][0]["valueString"], "kept",
        "unknown fields kept"
    );
    assert_eq!(stored["input"][0]["valueDecimal"].to_string(), "2.50");
    // A writer holding the old version is refused, not allowed to overwrite.
    let mut stale = first.clone();
    stale["status"] = json!("cancelled");
    let err = client
        .execute(ApiRequest::Write(Write::Update {
            resource: stale,
            version: v1.unwrap(),
        }))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(412), "{err}");
    let current: Value = reqwest::get(format!("{}/Task/{id}", clinic.server.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["status"], "in-progress");
}

/// A note's draft written twice with one client id, both ways a server may
/// offer: conditional create, and search-then-create where it has none.
/// The second write brings the first copy up to the newest text (a
/// versioned update); there is never a second note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_draft_create_updates_the_one_copy_either_way() {
    let clinic = messy_portal().await;
    let client = ApiClient::new(&clinic.server.base_url, None, Duration::from_secs(30))
        .unwrap()
        .with_request_log();
    for conditional in [true, false] {
        let client_id = format!("draft-{conditional}");
        let doc = |text: &str| {
            use base64::Engine as _;
            json!({"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
                "subject": {"reference": format!("Patient/{LAN}")},
                "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                    "data": base64::engine::general_purpose::STANDARD.encode(text)}}]})
        };
        let write = |text: &str| {
            ApiRequest::Write(Write::Create {
                resource: doc(text),
                client_id: client_id.clone(),
                conditional,
                replace_existing: true,
            })
        };
        let Ok(ApiReply::Written {
            resource: first, ..
        }) = client.execute(write("first words")).await
        else {
            panic!("created")
        };
        // The reply of the first was lost; the editor tries again with more text.
        let Ok(ApiReply::Written {
            resource: second,
            version,
        }) = client.execute(write("first words, more")).await
        else {
            panic!("written again")
        };
        assert_eq!(
            first["id"], second["id"],
            "one note (conditional: {conditional})"
        );
        assert_eq!(
            version.as_deref(),
            Some("2"),
            "brought up to date by an update"
        );
        let url = format!(
            "{}/DocumentReference?identifier={}|{client_id}",
            clinic.server.base_url,
            chartty::fhir::codes::CLIENT_ID_SYSTEM
        );
        let found: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(
            found["entry"].as_array().map(Vec::len),
            Some(1),
            "{found:#}"
        );
        assert_eq!(
            found["entry"][0]["resource"]["content"][0]["attachment"]["data"],
            doc("first words, more")["content"][0]["attachment"]["data"]
        );
    }
    let sent: Vec<String> = client
        .sent()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert!(
        sent.iter()
            .any(|r| r.starts_with("GET /fhir/DocumentReference?identifier=")),
        "without conditional create the client searched first: {sent:#?}"
    );
}
