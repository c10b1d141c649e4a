//! A small clinic shaped like real FHIR data, built here so tests do not
//! depend on what the demo generator makes: every status a record can have,
//! a record a strict reader cannot decode, a busy record (glucose four times
//! a day), mixed units, comparators, meaningful trailing zeros, an old
//! critical value that is still the latest, notes in HTML, names with ễ, ø,
//! ı, ł, two patients of one name, a patient with no MRN. Fixed ids and
//! dates relative to [`anchor`].

#![allow(dead_code)]

use std::time::Duration;

use chartty::api::ApiClient;
use chartty::config::Settings;
use chartty::drafts::{DraftStore, KeySource};
use chartty::server::{RunningServer, ServerConfig};
use chartty::tui::headless::Headless;
use chartty::tui::keeper::DraftKeeper;
use chartty::tui::keymap::Keymap;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use serde_json::{Value, json};

pub const LAN: &str = "p-lan";
pub const LAN_TWIN: &str = "p-lan-twin";
pub const SOREN: &str = "p-soren";
pub const AYSE: &str = "p-ayse";
pub const LUKASZ: &str = "p-lukasz";
pub const NO_MRN: &str = "p-no-mrn";
pub const LOINC: &str = "http://loinc.org";
pub const SSN: &str = "http://hl7.org/fhir/sid/us-ssn";

pub fn anchor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

/// `days` before the anchor, at `hour` UTC, as a FHIR instant.
pub fn ago(days: i64, hour: u32) -> String {
    let d = anchor() - Days::days(days);
    format!("{}T{hour:02}:00:00Z", d.format("%Y-%m-%d"))
}

/// A JSON number exactly as written (`"5.0"` stays 5.0).
pub fn num(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn mrn(value: &str) -> Value {
    json!({"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
        "system": "https://clinic.example/mrn", "value": value})
}

fn cc(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn patient(id: &str, family: &str, given: &[&str], birth: &str, gender: &str, ids: Value) -> Value {
    json!({"resourceType": "Patient", "id": id, "identifier": ids,
        "name": [{"use": "official", "family": family, "given": given}],
        "gender": gender, "birthDate": birth})
}

fn allergy(
    id: &str,
    text: &str,
    clinical: &str,
    verification: &str,
    criticality: Option<&str>,
) -> Value {
    let mut a = json!({"resourceType": "AllergyIntolerance", "id": id,
        "patient": {"reference": format!("Patient/{LAN}")},
        "code": {"text": text},
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", clinical),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", verification)});
    if let Some(c) = criticality {
        a["criticality"] = json!(c);
    }
    a
}

fn condition(id: &str, text: &str, clinical: &str, verification: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
        "subject": {"reference": format!("Patient/{LAN}")},
        "code": {"text": text},
        "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", clinical),
        "verificationStatus": cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", verification),
        "onsetDateTime": "2019-03-01"})
}

fn med(id: &str, text: &str, status: &str, dose: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
        "subject": {"reference": format!("Patient/{LAN}")},
        "medicationCodeableConcept": {"text": text},
        "dosageInstruction": [{"text": dose}]})
}

/// An observation of the main patient.
#[allow(clippy::too_many_arguments)]
pub fn obs(
    id: &str,
    category: &str,
    code: &str,
    name: &str,
    value: Value,
    unit: &str,
    when: &str,
    status: &str,
) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": status,
        "subject": {"reference": format!("Patient/{LAN}")},
        "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", category)],
        "code": {"coding": [{"system": LOINC, "code": code, "display": name}], "text": name},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
}

fn flagged(mut o: Value, flag: &str, low: &str, high: &str) -> Value {
    o["interpretation"] = json!([cc(
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        flag
    )]);
    o["referenceRange"] = json!([{"low": {"value": num(low)}, "high": {"value": num(high)}}]);
    o
}

fn note(
    id: &str,
    title: &str,
    status: &str,
    doc_status: &str,
    days: i64,
    content_type: &str,
    text: &str,
) -> Value {
    use base64::Engine;
    json!({"resourceType": "DocumentReference", "id": id, "status": status, "docStatus": doc_status,
        "subject": {"reference": format!("Patient/{LAN}")},
        "type": {"coding": [{"system": LOINC, "code": "11506-3", "display": "Progress note"}], "text": title},
        "date": ago(days, 15),
        "author": [{"display": "Dr. Ama Mensah"}],
        "content": [{"attachment": {"contentType": content_type,
            "data": base64::engine::general_purpose::STANDARD.encode(text)}}]})
}

/// The clinic as a transaction Bundle of PUTs (fixed ids).
pub fn messy_clinic() -> Value {
    let lan = format!("Patient/{LAN}");
    let mut r: Vec<Value> = vec![
        patient(
            LAN,
            "Nguyễn",
            &["Thị", "Lan"],
            "1971-05-14",
            "female",
            json!([mrn("00100001"), {"system": SSN, "value": "999-12-3456"}]),
        ),
        patient(
            LAN_TWIN,
            "Nguyen",
            &["Thi"],
            "1980-09-02",
            "female",
            json!([mrn("00100002")]),
        ),
        patient(
            SOREN,
            "Østergaard",
            &["Søren"],
            "1960-01-02",
            "male",
            json!([mrn("00100003")]),
        ),
        patient(
            AYSE,
            "Yılmaz",
            &["Ayşe"],
            "1985-02-03",
            "female",
            json!([mrn("00100004")]),
        ),
        patient(
            LUKASZ,
            "Wójcik",
            &["Łukasz"],
            "1990-03-04",
            "male",
            json!([mrn("00100005")]),
        ),
        patient(
            NO_MRN,
            "Okafor",
            &["Chidi"],
            "1975-06-07",
            "male",
            json!([{"system": SSN, "value": "999-55-0001"}]),
        ),
        allergy("al-pen", "Penicillin", "active", "confirmed", Some("high")),
        allergy("al-latex", "Latex", "active", "unconfirmed", None),
        allergy(
            "al-sulfa",
            "Sulfonamides",
            "active",
            "entered-in-error",
            Some("high"),
        ),
        allergy("al-codeine", "Codeine", "active", "refuted", None),
        allergy("al-shellfish", "Shellfish", "resolved", "confirmed", None),
        condition("c-dm", "Type 2 diabetes mellitus", "active", "confirmed"),
        condition("c-htn", "Essential hypertension", "recurrence", "confirmed"),
        condition("c-asthma", "Asthma", "resolved", "confirmed"),
        condition("c-pna", "Pneumonia", "active", "entered-in-error"),
        condition("c-sle", "Systemic lupus erythematosus", "active", "refuted"),
        med(
            "m-metformin",
            "Metformin 500 MG Oral Tablet",
            "active",
            "500 mg twice daily",
        ),
        med(
            "m-warfarin",
            "Warfarin 5 MG Oral Tablet",
            "on-hold",
            "5 mg daily",
        ),
        med(
            "m-lisinopril",
            "Lisinopril 10 MG Oral Tablet",
            "stopped",
            "10 mg daily",
        ),
        med(
            "m-amox",
            "Amoxicillin 500 MG Oral Capsule",
            "entered-in-error",
            "500 mg three times daily",
        ),
        // Potassium: the latest valid value is a critical 6.8 from 43 days
        // ago; newer ones were cancelled or entered in error.
        flagged(
            obs(
                "k-old",
                "laboratory",
                "2823-3",
                "Potassium",
                num("4.1"),
                "mmol/L",
                &ago(120, 8),
                "final",
            ),
            "N",
            "3.5",
            "5.1",
        ),
        flagged(
            obs(
                "k-crit",
                "laboratory",
                "2823-3",
                "Potassium",
                num("6.8"),
                "mmol/L",
                &ago(43, 8),
                "final",
            ),
            "HH",
            "3.5",
            "5.1",
        ),
        flagged(
            obs(
                "k-cancelled",
                "laboratory",
                "2823-3",
                "Potassium",
                num("7.9"),
                "mmol/L",
                &ago(5, 8),
                "cancelled",
            ),
            "HH",
            "3.5",
            "5.1",
        ),
        flagged(
            obs(
                "k-eie",
                "laboratory",
                "2823-3",
                "Potassium",
                num("3.1"),
                "mmol/L",
                &ago(3, 8),
                "entered-in-error",
            ),
            "L",
            "3.5",
            "5.1",
        ),
        // HbA1c in % and in mmol/mol: no exact factor, two series.
        obs(
            "a1c-pct",
            "laboratory",
            "4548-4",
            "Hemoglobin A1c",
            num("7.10"),
            "%",
            &ago(60, 9),
            "final",
        ),
        obs(
            "a1c-si",
            "laboratory",
            "4548-4",
            "Hemoglobin A1c",
            num("54"),
            "mmol/mol",
            &ago(200, 9),
            "final",
        ),
        // Creatinine in mg/dL and µmol/L: one trend, converted.
        obs(
            "cr-1",
            "laboratory",
            "2160-0",
            "Creatinine",
            num("1.10"),
            "mg/dL",
            &ago(10, 9),
            "final",
        ),
        obs(
            "cr-2",
            "laboratory",
            "2160-0",
            "Creatinine",
            num("97"),
            "umol/L",
            &ago(90, 9),
            "final",
        ),
        obs(
            "crp",
            "laboratory",
            "1988-5",
            "C reactive protein",
            json!(null),
            "mg/dL",
            &ago(10, 9),
            "final",
        ),
        obs(
            "inr",
            "laboratory",
            "6301-6",
            "INR",
            num("2.50"),
            "{INR}",
            &ago(2, 9),
            "preliminary",
        ),
        obs(
            "hgb",
            "laboratory",
            "718-7",
            "Hemoglobin",
            num("13.0"),
            "g/dL",
            &ago(10, 9),
            "amended",
        ),
        // Vitals: temperature in °C with its precision, and in °F; weight in kg and lb.
        obs(
            "t-c",
            "vital-signs",
            "8310-5",
            "Body temperature",
            num("37.20"),
            "Cel",
            &ago(1, 10),
            "final",
        ),
        obs(
            "t-f",
            "vital-signs",
            "8310-5",
            "Body temperature",
            num("99.1"),
            "[degF]",
            &ago(30, 10),
            "final",
        ),
        obs(
            "w-kg",
            "vital-signs",
            "29463-7",
            "Body weight",
            num("72.5"),
            "kg",
            &ago(1, 10),
            "final",
        ),
        obs(
            "w-lb",
            "vital-signs",
            "29463-7",
            "Body weight",
            num("162"),
            "[lb_av]",
            &ago(100, 10),
            "final",
        ),
        obs(
            "hr-old",
            "vital-signs",
            "8867-4",
            "Heart rate",
            num("88"),
            "/min",
            &ago(200, 10),
            "final",
        ),
        note(
            "n-soap",
            "Progress note",
            "current",
            "final",
            10,
            "text/plain",
            "S: Feels well.\nA: Diabetes, stable.\nP: Continue metformin.",
        ),
        note(
            "n-eie",
            "Progress note (wrong patient)",
            "entered-in-error",
            "final",
            9,
            "text/plain",
            "Written in the wrong chart.",
        ),
        note(
            "n-old",
            "Telephone note",
            "superseded",
            "final",
            8,
            "text/plain",
            "Called about INR; first version.",
        ),
        note(
            "n-html",
            "Discharge summary",
            "current",
            "final",
            7,
            "text/html",
            "<html><head><style>p{}</style></head><body><h2>Plan</h2><p>Recheck INR &amp; potassium in 1&nbsp;wk.</p><ul><li>Hold warfarin</li></ul></body></html>",
        ),
        note(
            "n-draft",
            "Progress note",
            "current",
            "preliminary",
            1,
            "text/plain",
            "Draft: seen today.",
        ),
        json!({"resourceType": "Encounter", "id": "e-1", "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": lan},
            "type": [{"text": "Office visit"}], "period": {"start": ago(10, 9)}}),
        json!({"resourceType": "Encounter", "id": "e-eie", "status": "entered-in-error",
            "class": {"code": "AMB"}, "subject": {"reference": lan},
            "type": [{"text": "Wrong visit"}], "period": {"start": ago(9, 9)}}),
    ];
    // The CRP came back below the detection limit.
    if let Some(crp) = r.iter_mut().find(|v| v["id"] == "crp") {
        crp["valueQuantity"] = json!({"value": num("0.3"), "comparator": "<", "unit": "mg/dL",
            "system": "http://unitsofmeasure.org", "code": "mg/dL"});
    }
    // The newer note replaces the superseded one.
    r.push({
        let mut n = note(
            "n-new",
            "Telephone note",
            "current",
            "amended",
            6,
            "text/plain",
            "Called about INR; corrected dose.",
        );
        n["relatesTo"] =
            json!([{"code": "replaces", "target": {"reference": "DocumentReference/n-old"}}]);
        n
    });
    // The nursing queue: a STAT item, an overdue refill, one due tomorrow.
    for (id, who, priority, due, code, text) in [
        (
            "t-stat",
            LAN,
            "stat",
            ago(0, 11),
            "clinical",
            "Chest pain since this morning, 7/10",
        ),
        (
            "t-refill",
            SOREN,
            "routine",
            ago(2, 9),
            "refill",
            "Refill: metformin 500 mg",
        ),
        (
            "t-results",
            AYSE,
            "routine",
            ago(-1, 16),
            "results",
            "Asks about HbA1c result",
        ),
    ] {
        r.push(
            json!({"resourceType": "Task", "id": id, "status": "requested", "intent": "order",
            "priority": priority, "for": {"reference": format!("Patient/{who}")},
            "code": {"coding": [{"system": "urn:chartty:task-category", "code": code}]},
            "description": text,
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
            "authoredOn": ago(3, 8),
            "restriction": {"period": {"end": due}}}),
        );
    }
    // A busy record: point-of-care glucose four times a day for 55 days.
    for i in 0..220u32 {
        let (day, slot) = (i64::from(i / 4), i % 4);
        r.push(obs(
            &format!("glu-{i}"),
            "laboratory",
            "2345-7",
            "Glucose",
            json!(90 + (i * 7) % 80),
            "mg/dL",
            &ago(day, 7 + slot * 4),
            "final",
        ));
    }
    json!({"resourceType": "Bundle", "type": "transaction",
        "entry": r.into_iter().map(|res| {
            let url = format!("{}/{}", res["resourceType"].as_str().unwrap(), res["id"].as_str().unwrap());
            json!({"fullUrl": format!("https://clinic.example/fhir/{url}"), "resource": res,
                "request": {"method": "PUT", "url": url}})
        }).collect::<Vec<_>>()})
}

/// A portal server with the demo clinic and its users (one per role).
pub struct Portal {
    pub server: RunningServer,
    _dir: tempfile::TempDir,
}

pub async fn demo_portal(patients: usize, seed: u64) -> Portal {
    demo_portal_with(patients, seed, chartty::server::Options::default()).await
}

/// The demo portal with these server options (routing rules, escalation).
pub async fn demo_portal_with(
    patients: usize,
    seed: u64,
    options: chartty::server::Options,
) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = chartty::server::start_with(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(chartty::server::demo::DemoOptions {
                patients,
                seed,
                anchor: anchor(),
            }),
        },
        listener,
        chartty::server::demo::staff(),
        options,
    )
    .await
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    Portal { server, _dir: dir }
}

/// The built-in routing rules with the clinic open around the clock (and
/// no holidays), or never open: routing that does not depend on when the
/// test runs.
pub fn clinic_rules(open: bool) -> chartty::triage::RuleSet {
    let text = include_str!("../../rules/routing.toml");
    let hours = if open { "00:00-23:59" } else { "closed" };
    let mut out = String::new();
    let mut in_holidays = false;
    for line in text.lines() {
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .find(|d| line.starts_with(&format!("{d} = ")));
        if line.starts_with("holidays") {
            in_holidays = !line.trim_end().ends_with(']');
            out.push_str("holidays = []\n");
        } else if in_holidays {
            in_holidays = line.trim() != "]";
        } else if let Some(d) = day {
            out.push_str(&format!("{d} = \"{hours}\"\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    chartty::triage::RuleSet::from_toml(&out).expect("the edited rules parse")
}

/// A patient's message as the patient app posts it (intake account);
/// the message as stored.
pub async fn patient_message(p: &Portal, body: &Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/Communication", p.server.base_url))
        .bearer_auth(token(p, chartty::roles::Role::Intake))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.unwrap()
}

/// Put the queue's selection on a task (by id), as `j` presses would.
pub fn select_task(h: &mut Headless, id: &str) {
    h.keys("<home>").unwrap();
    let pos = h
        .app
        .panes
        .tasks
        .shown()
        .iter()
        .position(|r| r.task_id == id)
        .unwrap_or_else(|| panic!("{id} is listed"));
    for _ in 0..pos {
        h.keys("j").unwrap();
    }
    assert_eq!(
        h.app.panes.tasks.selected_row().map(|r| r.task_id.as_str()),
        Some(id)
    );
}

/// GET a path of the portal as the demo user of `role`: the JSON answer.
pub async fn get_as(p: &Portal, role: chartty::roles::Role, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/{path}", p.server.base_url))
        .bearer_auth(token(p, role))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A portal server with open access (no users) holding the messy clinic.
pub struct Clinic {
    pub server: RunningServer,
    _dir: tempfile::TempDir,
}

pub async fn messy_portal() -> Clinic {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = chartty::server::start_with_staff(
        ServerConfig {
            db: dir.path().join("clinic.db"),
            demo: None,
        },
        listener,
        Vec::new(),
    )
    .await
    .unwrap();
    // reqwest is built without a TLS provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .post(&server.base_url)
        .header("Content-Type", "application/fhir+json")
        .body(messy_clinic().to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert!(status.is_success(), "the clinic loads: {status} {body}");
    Clinic { server, _dir: dir }
}

pub fn settings() -> Settings {
    Settings {
        time_zone: chrono_tz::Tz::UTC,
        ..Settings::default()
    }
}

/// The app against `base`, started and settled, with a request log.
pub async fn app_at(base: &str, settings: &Settings) -> Headless {
    app_as(base, settings, None).await
}

/// [`app_at`] signed in with a role (its queue is loaded).
pub async fn app_as(
    base: &str,
    settings: &Settings,
    role: Option<chartty::roles::Role>,
) -> Headless {
    let session = Session {
        base_url: base.to_string(),
        role,
        user: role.map(|r| format!("Test {}", r.label())),
        ..Session::default()
    };
    started(session, settings, None).await
}

/// The token of the demo user of `role`.
pub fn token(p: &Portal, role: chartty::roles::Role) -> String {
    p.server
        .token_for(role)
        .unwrap_or_else(|| panic!("the demo has a {role} user"))
        .to_string()
}

/// The app signed in to the demo portal as `role` with that user's token,
/// started and settled, with a request log; drafts kept by `keeper` (in
/// memory when `None`).
pub async fn signed_in(
    p: &Portal,
    role: chartty::roles::Role,
    settings: &Settings,
    keeper: Option<Box<dyn DraftKeeper>>,
) -> Headless {
    let session = Session {
        base_url: p.server.base_url.clone(),
        token: Some(token(p, role)),
        role: Some(role),
        ..Session::default()
    };
    started(session, settings, keeper).await
}

/// The app of `session`, started and settled, with a request log.
async fn started(
    session: Session,
    settings: &Settings,
    keeper: Option<Box<dyn DraftKeeper>>,
) -> Headless {
    let client = ApiClient::new(
        &session.base_url,
        session.token.clone(),
        Duration::from_secs(30),
    )
    .unwrap()
    .with_request_log();
    started_with(session, settings, keeper, client).await
}

/// The app of `session` talking through `client`, started and settled.
pub async fn started_with(
    session: Session,
    settings: &Settings,
    keeper: Option<Box<dyn DraftKeeper>>,
    client: ApiClient,
) -> Headless {
    let mut app = App::new(
        settings,
        session,
        Keymap::defaults(),
        Theme::default(),
        anchor(),
    );
    app.start();
    let mut h = match keeper {
        Some(k) => Headless::with_keeper(app, client, k),
        None => Headless::new(app, client),
    };
    // The latency on the status bar is the last reply's: fixed, so screens compare.
    h.fixed_latency = Some(Duration::from_millis(12));
    h.settle().await;
    h
}

/// The drafts key of the tests that keep drafts on disk: the OS credential
/// store stays out of flow tests.
pub const DRAFT_KEY: [u8; 32] = [7; 32];

pub struct FixedKey(pub [u8; 32]);

impl KeySource for FixedKey {
    fn key(&self) -> Result<[u8; 32], String> {
        Ok(self.0)
    }
    fn describe(&self) -> String {
        "a test key".into()
    }
}

/// The encrypted draft store in `dir`, sealed with [`DRAFT_KEY`].
pub fn local_drafts(dir: &std::path::Path) -> Box<dyn DraftKeeper> {
    Box::new(DraftStore::open_with(dir, Box::new(FixedKey(DRAFT_KEY))))
}

/// The screen as text, one line per row.
pub fn screen(h: &mut Headless, w: u16, ht: u16) -> String {
    let mut terminal = ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, ht)).unwrap();
    h.render(&mut terminal).unwrap();
    let buf = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..ht {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Open a patient by typing `query` and Enter (the first listed).
pub async fn open(h: &mut Headless, query: &str, id: &str) {
    h.keys(&format!("/<c-u>{query}")).unwrap();
    h.settle().await;
    let pos = h
        .app
        .panes
        .search
        .listed()
        .iter()
        .position(|r| r.id == id)
        .unwrap_or_else(|| panic!("{query} lists {id}: {:?}", h.app.panes.search.listed()));
    for _ in 0..pos {
        h.keys("<down>").unwrap();
    }
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.as_deref()),
        Some(id),
        "the chart of {id} is open"
    );
}

/// POST a resource to the portal as the demo attending: the stored JSON.
pub async fn post(p: &Portal, ty: &str, body: &Value) -> Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/{ty}", p.server.base_url))
        .bearer_auth(token(p, chartty::roles::Role::Attending))
        .header("Content-Type", "application/fhir+json")
        .header("Prefer", "return=representation")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    assert!(status.is_success(), "POST {ty}: {status} {v}");
    v
}

/// A patient's message and its task in `queue`, made over HTTP.
pub async fn message_task(p: &Portal, pid: &str, queue: &str, text: &str) -> (String, String) {
    let msg = post(
        p,
        "Communication",
        &json!({"resourceType": "Communication", "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}],
        "subject": {"reference": format!("Patient/{pid}")},
        "sent": (anchor() - chrono::Duration::minutes(20)).to_rfc3339(),
        "payload": [{"contentString": text}]}),
    )
    .await;
    let msg_id = msg["id"].as_str().unwrap().to_string();
    let task = post(
        p,
        "Task",
        &json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "priority": "routine",
            "code": {"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]},
            "description": text,
            "for": {"reference": format!("Patient/{pid}")},
            "focus": {"reference": format!("Communication/{msg_id}")},
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": queue}]}],
            "restriction": {"period": {"end": (anchor() + chrono::Duration::hours(4)).to_rfc3339()}}}),
    )
    .await;
    (msg_id, task["id"].as_str().unwrap().to_string())
}

/// A progress note from its template with every blank filled, up to the
/// sign question.
pub async fn fill_progress_note(h: &mut Headless) {
    h.keys("4n<enter>").unwrap();
    h.paste("Feels better.");
    h.keys("<tab>12<enter>").unwrap();
    h.paste("Stable on treatment.");
    h.keys("<tab>2").unwrap();
    h.paste("Recheck in two weeks.");
    h.keys("<c-s>").unwrap();
    assert!(
        matches!(h.app.popup(), Some(chartty::tui::popups::Popup::Confirm(_))),
        "{}",
        h.app.notice().map(|n| n.text.clone()).unwrap_or_default()
    );
}

/// The notes on the server for a patient, written by this test (their
/// identifier is the client-made one).
pub async fn notes_written(p: &Portal, patient: &str) -> Vec<Value> {
    let b = get_as(
        p,
        chartty::roles::Role::Attending,
        &format!("DocumentReference?patient={patient}&_count=100"),
    )
    .await;
    b["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["resource"].clone())
        // Demo notes carry no client-made identifier.
        .filter(|d| {
            d["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|i| i["system"] == chartty::fhir::codes::CLIENT_ID_SYSTEM)
        })
        .collect()
}

/// The texts of a task's notes, oldest first.
pub fn notes_of(task: &Value) -> Vec<String> {
    task["note"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["text"].as_str().map(str::to_string))
        .collect()
}

/// A patient's structured answers (the contained `QuestionnaireResponse`
/// of a symptom message): chest tightness since this morning at
/// `severity`, chest pain the one red flag.
pub fn chest_tightness_answers(severity: i64) -> Value {
    let flag = |id: &str, yes: bool| json!({"linkId": id, "answer": [{"valueBoolean": yes}]});
    json!({"resourceType": "QuestionnaireResponse", "id": "answers", "status": "completed",
    "questionnaire": "urn:chartty:questionnaire:symptom",
    "item": [
        {"linkId": "what", "answer": [{"valueString": "Chest tightness"}]},
        {"linkId": "since", "answer": [{"valueString": "this morning"}]},
        {"linkId": "severity", "answer": [{"valueInteger": severity}]},
        {"linkId": "red-flags", "item": [
            flag("chest-pain", true),
            flag("short-of-breath", false),
            flag("stroke-signs", false),
            flag("suicidal-thoughts", false),
            flag("severe-bleeding", false)
        ]}
    ]})
}
