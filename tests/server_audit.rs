//! The audit trail over real HTTP: every kind of interaction leaves the
//! records it should, naming the person and the patient, committed before
//! the answer goes out; `chartty serve audit verify` finds an edited, a
//! deleted and an inserted record in a tampered database file; archived
//! records keep the chain checkable; and a server killed with SIGKILL in
//! the middle of a stream of writes has lost no record of a write it
//! acknowledged.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chartty::roles::Role;
use chartty::server::{self, RunningServer, ServerConfig, audit, demo};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Fixture {
    srv: RunningServer,
    c: Client,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

/// One audit record as stored.
#[derive(Debug, Clone)]
struct Rec {
    user: Option<String>,
    role: Option<String>,
    who: Option<String>,
    source: Option<String>,
    action: String,
    ty: Option<String>,
    id: Option<String>,
    version: Option<i64>,
    query: Option<String>,
    entities: Vec<String>,
    patients: Vec<String>,
    status: i64,
    detail: Option<String>,
}

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start_with_staff(
        ServerConfig {
            db: db.clone(),
            demo: None,
        },
        listener,
        demo::staff(),
    )
    .await
    .unwrap();
    Fixture {
        srv,
        c: client(),
        db,
        _dir: dir,
    }
}

/// The records of one request, read from the database file the moment the
/// answer has arrived (nothing is waited for).
fn records(db: &Path, request: &str) -> Vec<Rec> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT user, role, who, source, action, type, id, version, query, entities, patients, status, detail
             FROM audit WHERE request = ?1 ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([request], |r| {
        let list = |s: String| serde_json::from_str::<Vec<String>>(&s).unwrap();
        Ok(Rec {
            user: r.get(0)?,
            role: r.get(1)?,
            who: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            ty: r.get(5)?,
            id: r.get(6)?,
            version: r.get(7)?,
            query: r.get(8)?,
            entities: list(r.get(9)?),
            patients: list(r.get(10)?),
            status: r.get(11)?,
            detail: r.get(12)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

struct Answer {
    status: StatusCode,
    body: Value,
    request: String,
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.srv.base_url)
    }

    async fn send(
        &self,
        role: Option<Role>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Answer {
        let mut req = self.c.request(method, self.url(path));
        if let Some(role) = role {
            req = req.bearer_auth(self.srv.token_for(role).unwrap());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/fhir+json").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let request = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("every answer names its request")
            .to_string();
        let text = r.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            request,
        }
    }

    async fn get(&self, role: Role, path: &str) -> Answer {
        self.send(Some(role), Method::GET, path, &[], None).await
    }

    async fn post(&self, role: Role, path: &str, body: &Value) -> Answer {
        self.send(Some(role), Method::POST, path, &[], Some(body.to_string()))
            .await
    }

    fn records(&self, a: &Answer) -> Vec<Rec> {
        records(&self.db, &a.request)
    }
}

fn one(recs: &[Rec]) -> &Rec {
    assert_eq!(recs.len(), 1, "{recs:#?}");
    &recs[0]
}

fn by(rec: &Rec, role: Role) {
    let login = format!("pr-{}", role.code());
    assert_eq!(rec.user.as_deref(), Some(login.as_str()), "{rec:#?}");
    assert_eq!(rec.role.as_deref(), Some(role.code()), "{rec:#?}");
    assert_eq!(
        rec.who.as_deref(),
        Some(format!("Practitioner/{login}").as_str()),
        "{rec:#?}"
    );
    assert!(
        rec.source
            .as_deref()
            .is_some_and(|s| s.starts_with("127.0.0.1:")),
        "{rec:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interaction_is_recorded_with_the_person_and_the_patient() {
    let f = fixture().await;
    use Role::*;
    // create: the id the server gave, version 1, the patient.
    let a = f
        .post(
            Attending,
            "Patient",
            &json!({"resourceType": "Patient", "name": [{"family": "Audit", "given": ["Ada"]}], "gender": "female"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let pid = a.body["id"].as_str().unwrap().to_string();
    let patient = format!("Patient/{pid}");
    let r = one(&f.records(&a)).clone();
    by(&r, Attending);
    assert_eq!(
        (
            r.action.as_str(),
            r.ty.as_deref(),
            r.id.as_deref(),
            r.version,
            r.status
        ),
        ("create", Some("Patient"), Some(pid.as_str()), Some(1), 201)
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    assert_eq!(r.entities, [format!("{patient}/_history/1")]);

    let obs = json!({"resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": patient}, "effectiveDateTime": "2026-01-10T09:00:00Z",
        "valueQuantity": {"value": 72, "unit": "/min"}});
    let a = f.post(Nurse, "Observation", &obs).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let oid = a.body["id"].as_str().unwrap().to_string();
    let r = one(&f.records(&a)).clone();
    by(&r, Nurse);
    assert_eq!(
        (r.action.as_str(), r.id.as_deref()),
        ("create", Some(oid.as_str()))
    );
    assert_eq!(r.patients, vec![patient.clone()]);

    // read, vread, history.
    let a = f.get(Nurse, &format!("Patient/{pid}")).await;
    assert_eq!(a.status, StatusCode::OK);
    let r = one(&f.records(&a)).clone();
    by(&r, Nurse);
    assert_eq!(
        (r.action.as_str(), r.id.as_deref(), r.version, r.status),
        ("read", Some(pid.as_str()), Some(1), 200)
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    let a = f
        .get(Resident, &format!("Observation/{oid}/_history/1"))
        .await;
    let r = one(&f.records(&a)).clone();
    by(&r, Resident);
    assert_eq!((r.action.as_str(), r.version), ("vread", Some(1)));
    assert_eq!(r.patients, vec![patient.clone()]);
    let a = f
        .get(Resident, &format!("Observation/{oid}/_history"))
        .await;
    let r = one(&f.records(&a)).clone();
    assert_eq!(r.action, "history");
    assert_eq!(r.entities, [format!("Observation/{oid}/_history/1")]);
    assert_eq!(r.patients, vec![patient.clone()]);

    // search with _include: every resource shown, and the patient.
    let a = f
        .get(
            Nurse,
            &format!("Observation?patient={pid}&_include=Observation:patient"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let r = one(&f.records(&a)).clone();
    assert_eq!(r.action, "search");
    assert_eq!(r.ty.as_deref(), Some("Observation"));
    assert!(
        r.query
            .as_deref()
            .unwrap()
            .contains("_include=Observation%3Apatient"),
        "{r:#?}"
    );
    assert_eq!(
        r.entities,
        [
            format!("Observation/{oid}/_history/1"),
            format!("{patient}/_history/1")
        ]
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    // A search without a patient parameter still names the patients shown.
    let a = f.get(Nurse, "Observation?code=8867-4").await;
    let r = one(&f.records(&a)).clone();
    assert_eq!(r.patients, vec![patient.clone()]);
    // $lastn.
    let a = f
        .get(Nurse, &format!("Observation/$lastn?patient=Patient/{pid}"))
        .await;
    let r = one(&f.records(&a)).clone();
    assert_eq!(r.action, "operation");
    assert_eq!(r.entities, [format!("Observation/{oid}/_history/1")]);
    assert_eq!(r.patients, vec![patient.clone()]);

    // update: the new version.
    let mut p = f.get(Attending, &format!("Patient/{pid}")).await.body;
    p["gender"] = json!("other");
    let a = f
        .send(
            Some(Attending),
            Method::PUT,
            &format!("Patient/{pid}"),
            &[],
            Some(p.to_string()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let r = one(&f.records(&a)).clone();
    assert_eq!(
        (r.action.as_str(), r.version, r.status),
        ("update", Some(2), 200)
    );

    // Refused: the rule, the patient asked about.
    let a = f
        .send(
            Some(Nurse),
            Method::DELETE,
            &format!("Patient/{pid}"),
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let r = one(&f.records(&a)).clone();
    by(&r, Nurse);
    assert_eq!((r.action.as_str(), r.status), ("delete", 403));
    assert!(
        r.detail
            .as_deref()
            .unwrap()
            .contains("records-are-never-deleted"),
        "{r:#?}"
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    let a = f
        .get(Frontdesk, &format!("Observation?patient={pid}"))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let r = one(&f.records(&a)).clone();
    by(&r, Frontdesk);
    assert_eq!((r.status, r.patients.clone()), (403, vec![patient.clone()]));
    assert!(r.entities.is_empty());

    // Unauthenticated and bad requests.
    let a = f
        .send(None, Method::GET, &format!("Patient/{pid}"), &[], None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let r = one(&f.records(&a)).clone();
    assert_eq!((r.user.as_deref(), r.status), (None, 401));
    assert_eq!(
        (r.ty.as_deref(), r.id.as_deref()),
        (Some("Patient"), Some(pid.as_str()))
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    assert!(r.source.is_some());
    // A write without a token is refused before its body is read, and
    // recorded all the same.
    let a = f
        .send(
            None,
            Method::POST,
            "Observation",
            &[],
            Some("{\"resourceType\": \"Observation\"}".into()),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let r = one(&f.records(&a)).clone();
    assert_eq!(
        (r.user.as_deref(), r.status, r.action.as_str()),
        (None, 401, "create")
    );
    assert!(
        r.source
            .as_deref()
            .is_some_and(|s| s.starts_with("127.0.0.1:"))
    );
    let a = f
        .send(
            Some(Nurse),
            Method::POST,
            "Observation",
            &[],
            Some("{\"resourceType\": ".into()),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let r = one(&f.records(&a)).clone();
    by(&r, Nurse);
    assert_eq!((r.action.as_str(), r.status), ("create", 400));
    let a = f
        .post(
            Attending,
            "Observation",
            &json!({"resourceType": "Observation", "status": "done", "code": {}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(one(&f.records(&a)).status, 422);

    // A batch: each entry, then the batch, under one request.
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("Patient/{pid}")}},
        {"request": {"method": "GET", "url": format!("Observation?patient={pid}")}},
        {"request": {"method": "GET", "url": format!("Condition?patient={pid}")}},
    ]});
    let a = f.post(Frontdesk, "", &bundle).await;
    assert_eq!(a.status, StatusCode::OK);
    let recs = f.records(&a);
    let summary: Vec<(&str, i64)> = recs.iter().map(|r| (r.action.as_str(), r.status)).collect();
    assert_eq!(
        summary,
        [
            ("read", 200),
            ("search", 403),
            ("search", 403),
            ("batch", 200)
        ]
    );
    assert!(
        recs[..3]
            .iter()
            .all(|r| r.patients == vec![patient.clone()]),
        "{recs:#?}"
    );

    // A transaction: each entry with the change, then the transaction.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b6f0f55-1111-4a8e-9c1d-000000000001",
         "resource": {"resourceType": "Task", "status": "requested", "intent": "order",
                      "for": {"reference": patient},
                      "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}]},
         "request": {"method": "POST", "url": "Task"}},
        {"resource": {"resourceType": "Communication", "status": "completed", "subject": {"reference": patient},
                      "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}],
                      "basedOn": [{"reference": "urn:uuid:0b6f0f55-1111-4a8e-9c1d-000000000001"}]},
         "request": {"method": "POST", "url": "Communication"}},
    ]});
    let a = f.post(Nurse, "", &bundle).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let recs = f.records(&a);
    let summary: Vec<(&str, Option<&str>, i64)> = recs
        .iter()
        .map(|r| (r.action.as_str(), r.ty.as_deref(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("create", Some("Task"), 201),
            ("create", Some("Communication"), 201),
            ("transaction", None, 200)
        ]
    );
    assert!(
        recs[..2]
            .iter()
            .all(|r| r.id.is_some() && r.patients == vec![patient.clone()])
    );
    // A transaction that fails: the entry that failed and the transaction;
    // nothing of the entries rolled back.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": patient}},
         "request": {"method": "POST", "url": "Task"}},
        {"resource": {"resourceType": "Condition", "subject": {"reference": patient}},
         "request": {"method": "POST", "url": "Condition"}},
    ]});
    let a = f.post(Nurse, "", &bundle).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let recs = f.records(&a);
    let summary: Vec<(&str, Option<&str>, i64)> = recs
        .iter()
        .map(|r| (r.action.as_str(), r.ty.as_deref(), r.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("create", Some("Condition"), 403),
            ("transaction", None, 403)
        ]
    );

    // Conditional create that finds what exists: recorded as what it showed.
    let a = f
        .send(
            Some(Attending),
            Method::POST,
            "Patient",
            &[("if-none-exist", &format!("_id={pid}"))],
            Some(json!({"resourceType": "Patient"}).to_string()),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let r = one(&f.records(&a)).clone();
    assert_eq!(
        (r.action.as_str(), r.status, r.patients.clone()),
        ("create", 200, vec![patient.clone()])
    );

    // $whoami.
    let a = f.get(Billing, "$whoami").await;
    assert_eq!(one(&f.records(&a)).action, "whoami");

    // Privacy officers search the trail by patient and by user.
    let a = f
        .get(
            Attending,
            &format!("AuditEvent?patient={patient}&_count=100"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let events = a.body["entry"].as_array().unwrap();
    assert!(events.len() >= 15, "{}", events.len());
    assert!(events.iter().all(|e| {
        e["resource"]["entity"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["what"]["reference"] == patient.as_str())
    }));
    // Newest first.
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));
    for path in [
        "AuditEvent?user=pr-frontdesk&_count=100".to_string(),
        "AuditEvent?agent=Practitioner/pr-frontdesk&_count=100".to_string(),
    ] {
        let a = f.get(Attending, &path).await;
        let events = a.body["entry"].as_array().unwrap();
        assert_eq!(events.len(), 5, "{path}: {}", a.body);
        assert!(
            events
                .iter()
                .all(|e| e["resource"]["agent"][0]["altId"] == "pr-frontdesk")
        );
    }
    let a = f
        .get(
            Attending,
            "AuditEvent?user=pr-frontdesk&outcome=4&_count=100",
        )
        .await;
    assert_eq!(a.body["entry"].as_array().unwrap().len(), 3);
    // Searching the trail is itself recorded, with the patient asked about.
    let a = f
        .get(Attending, &format!("AuditEvent?patient={patient}"))
        .await;
    let r = one(&f.records(&a)).clone();
    assert_eq!(
        (r.action.as_str(), r.ty.as_deref()),
        ("search", Some("AuditEvent"))
    );
    assert_eq!(r.patients, vec![patient.clone()]);
    // Nobody else reads it, and nobody writes it.
    assert_eq!(
        f.get(Nurse, "AuditEvent").await.status,
        StatusCode::FORBIDDEN
    );
    let first = f.get(Attending, "AuditEvent/1").await;
    assert_eq!(first.status, StatusCode::OK);
    for role in staff_roles() {
        let a = f
            .send(
                Some(role),
                Method::PUT,
                "AuditEvent/1",
                &[],
                Some(first.body.to_string()),
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{role}");
    }

    let Fixture { srv, db, _dir, .. } = f;
    srv.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let verdict = audit::verify(&conn).unwrap();
    assert!(verdict.intact(), "{:?}", verdict.problems);
    // Nothing of the audit is a resource.
    let stored: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM resources WHERE type = 'AuditEvent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 0);
}

fn verify_cli(db: &Path, archives: &[&Path]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chartty"));
    cmd.args(["serve", "audit", "verify", "--db"]).arg(db);
    for a in archives {
        cmd.arg("--archive").arg(a);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A copy of the database, every change of the server in the main file.
fn copy_of(db: &Path, name: &str) -> PathBuf {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let to = db.with_file_name(name);
    std::fs::copy(db, &to).unwrap();
    to
}

/// The roles of the clinic's staff (the fixture has no patient app).
fn staff_roles() -> impl Iterator<Item = Role> {
    Role::ALL.into_iter().filter(|r| *r != Role::Intake)
}

async fn a_server_with_some_history() -> (tempfile::TempDir, PathBuf) {
    let f = fixture().await;
    for role in staff_roles() {
        f.get(role, "Patient?_count=5").await;
        f.post(
            role,
            "Task",
            &json!({"resourceType": "Task", "status": "requested", "intent": "order"}),
        )
        .await;
    }
    let Fixture { srv, db, _dir, .. } = f;
    srv.stop().await;
    (_dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_an_edited_a_deleted_and_an_inserted_record() {
    let (_dir, db) = a_server_with_some_history().await;
    let (ok, out) = verify_cli(&db, &[]);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("audit chain intact: 10 records, head 10 "),
        "{out}"
    );

    // The table refuses changes; one who can write the file drops the
    // triggers first.
    let tamper = |name: &str, sql: &str| {
        let path = copy_of(&db, name);
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert!(
            conn.execute("UPDATE audit SET status = 200 WHERE seq = 4", [])
                .is_err()
        );
        conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        path
    };

    // Edited: a refusal made to look like a success.
    let edited = tamper("edited.db", "UPDATE audit SET status = 200 WHERE seq = 4;");
    let (ok, out) = verify_cli(&edited, &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("record 4 was changed"), "{out}");

    // Deleted: one in the middle, and the last ones.
    let deleted = tamper("deleted.db", "DELETE FROM audit WHERE seq = 6;");
    let (ok, out) = verify_cli(&deleted, &[]);
    assert!(!ok);
    assert!(out.contains("record 6 is missing"), "{out}");
    let cut = tamper("cut.db", "DELETE FROM audit WHERE seq >= 9;");
    let (ok, out) = verify_cli(&cut, &[]);
    assert!(!ok);
    assert!(out.contains("records after 8 were deleted"), "{out}");

    // Inserted: a record added at the end, its hash computed as the
    // server would.
    let inserted = copy_of(&db, "inserted.db");
    {
        let conn = rusqlite::Connection::open(&inserted).unwrap();
        let prev: Vec<u8> = conn
            .query_row("SELECT hash FROM audit WHERE seq = 10", [], |r| r.get(0))
            .unwrap();
        let prev: [u8; 32] = prev.try_into().unwrap();
        let forged = audit::Event {
            at: 1,
            request: "forged".into(),
            user: Some("pr-attending".into()),
            action: "read".into(),
            status: 200,
            ..audit::Event::default()
        };
        let hash = audit::hash_of(&prev, 11, &forged, "[]", "[]");
        conn.execute(
            "INSERT INTO audit (seq, at, request, user, action, entities, patients, status, prev, hash)
             VALUES (11, 1, 'forged', 'pr-attending', 'read', '[]', '[]', 200, ?1, ?2)",
            rusqlite::params![prev.as_slice(), hash.as_slice()],
        )
        .unwrap();
        // And one between two others, renumbering none: it takes the
        // place of a record removed.
        conn.execute_batch("DROP TRIGGER audit_no_delete;").unwrap();
        conn.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
        conn.execute(
            "INSERT INTO audit (seq, at, request, action, entities, patients, status, prev, hash)
             SELECT 3, at, request, 'read', entities, patients, 200, prev, hash FROM audit WHERE seq = 2",
            [],
        )
        .unwrap();
    }
    let (ok, out) = verify_cli(&inserted, &[]);
    assert!(!ok);
    assert!(out.contains("record 3 was changed"), "{out}");
    assert!(
        out.contains("records after 10 (up to 11) were added"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_records_move_to_a_file_and_the_chain_still_verifies() {
    let (dir, db) = a_server_with_some_history().await;
    let file = dir.path().join("audit-2026.ndjson");
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args(["serve", "audit", "archive", "--db"])
        .arg(&db)
        .args(["--before", &tomorrow, "--out"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("archived 10 audit records (1 to 10)"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 11);
    // The database keeps the record of the archiving, chained to the file.
    let (ok, out) = verify_cli(&db, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("1 records"), "{out}");
    let (ok, out) = verify_cli(&db, &[&file]);
    assert!(ok, "{out}");
    assert!(out.contains("11 records"), "{out}");
    // Never overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args(["serve", "audit", "archive", "--db"])
        .arg(&db)
        .args(["--before", &tomorrow, "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());
    // A record taken out of the file is found.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("\"seq\":5,")).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (ok, out) = verify_cli(&db, &[&file]);
    assert!(!ok);
    assert!(out.contains("record 5 is missing"), "{out}");
}

/// Reads `chartty serve`'s first lines: the base URL and the tokens.
fn started(stdout: std::process::ChildStdout) -> (String, HashMap<String, String>) {
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("serving FHIR R4 at ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let mut tokens = HashMap::new();
    for _ in Role::ALL {
        let line = lines.next().unwrap().unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("token"), "{line}");
        tokens.insert(
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        );
    }
    // Read on to the end: a closed pipe would stop the server at its next line.
    std::thread::spawn(move || lines.for_each(drop));
    (base, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_has_lost_no_record_of_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args([
            "serve",
            "--demo",
            "--patients",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--db",
        ])
        .arg(&db)
        .env("CHARTTY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (base, tokens) = tokio::task::spawn_blocking(move || started(stdout))
        .await
        .unwrap();
    let c = client();
    let nurse = tokens["nurse"].clone();
    let patients: Value = c
        .get(format!("{base}/Patient?_count=1"))
        .bearer_auth(&nurse)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = patients["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Writers post messages as fast as they are answered.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..6 {
        let (c, base, nurse, pid, acked) = (
            c.clone(),
            base.clone(),
            nurse.clone(),
            pid.clone(),
            acked.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let body = json!({"resourceType": "Communication", "status": "completed",
                    "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}],
                    "subject": {"reference": format!("Patient/{pid}")},
                    "payload": [{"contentString": format!("writer {w} message {i}")}]});
                let Ok(r) = c
                    .post(format!("{base}/Communication"))
                    .bearer_auth(&nurse)
                    .header("content-type", "application/fhir+json")
                    .body(body.to_string())
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != StatusCode::CREATED {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(v["id"].as_str().unwrap().to_string());
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 150 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL, by the child's own pid, in the middle of the stream.
    child.kill().unwrap();
    child.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150, "{} writes acknowledged", acked.len());

    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut lost = Vec::new();
    for id in &acked {
        let stored: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM resources WHERE type = 'Communication' AND id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        let audited: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE action = 'create' AND type = 'Communication'
                 AND id = ?1 AND status = 201 AND user = 'pr-nurse'",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        if stored != 1 || audited != 1 {
            lost.push(format!("{id}: stored {stored}, audited {audited}"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    // Every write stored has its record (none without, acknowledged or not).
    let unaudited: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM resources r WHERE r.type = 'Communication' AND r.json LIKE '%writer %'
             AND NOT EXISTS (SELECT 1 FROM audit a WHERE a.type = 'Communication' AND a.id = r.id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unaudited, 0);
    drop(conn);
    let (ok, out) = verify_cli(&db, &[]);
    assert!(ok, "{out}");
}

#[test]
fn import_never_writes_audit_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(
        &file,
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "AuditEvent", "id": "forged", "recorded": "2020-01-01T00:00:00Z",
                          "type": {"code": "rest"}, "agent": [{"requestor": true}], "source": {}}}
        ]})
        .to_string(),
    )
    .unwrap();
    let db = dir.path().join("portal.db");
    let report = server::import_paths(&db, &[file], false).unwrap();
    assert_eq!(report.resources, 1);
    assert!(
        report.errors.iter().any(|e| e.contains("AuditEvent")),
        "{:?}",
        report.errors
    );
    let mut store = server::Store::open(&db).unwrap();
    assert_eq!(store.count("AuditEvent").unwrap(), 0);
    assert!(
        store
            .ingest([json!({"resourceType": "AuditEvent", "id": "x"})])
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_and_revocation_takes_effect_at_once() {
    let f = fixture().await;
    let a = f.get(Role::Nurse, "Patient?_count=1").await;
    assert_eq!(a.status, StatusCode::OK);
    // Revoked from the command line while the server runs.
    let out = Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args(["serve", "token", "revoke", "--db"])
        .arg(&f.db)
        .arg(f.srv.token_for(Role::Nurse).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "revoked a token of pr-nurse"
    );
    let a = f.get(Role::Nurse, "Patient?_count=1").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.body["issue"][0]["diagnostics"], "the token was revoked");
    let r = one(&f.records(&a)).clone();
    assert_eq!(r.user, None, "a revoked token signs nobody in");
    assert!(
        r.detail.as_deref().unwrap().contains("a token of pr-nurse"),
        "{r:#?}"
    );
    // The others still work; the revocation itself is on the trail.
    assert_eq!(
        f.get(Role::Resident, "Patient").await.status,
        StatusCode::OK
    );
    let a = f
        .get(Role::Attending, "AuditEvent?action=E&_count=100")
        .await;
    assert!(
        a.body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource"]["outcomeDesc"]
                .as_str()
                .is_some_and(|d| d.contains("one token of pr-nurse"))),
        "{}",
        a.body
    );
    let Fixture { srv, _dir, .. } = f;
    srv.stop().await;

    // Tokens expire.
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = server::start_with(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: None,
        },
        listener,
        demo::staff(),
        server::Options {
            token_ttl: Duration::from_millis(800),
            ..server::Options::default()
        },
    )
    .await
    .unwrap();
    let c = client();
    let get = || {
        c.get(format!("{}/Patient", srv.base_url))
            .bearer_auth(srv.token_for(Role::Billing).unwrap())
            .send()
    };
    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let r = get().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["issue"][0]["diagnostics"],
        "the token has expired; sign in again"
    );
    srv.stop().await;
}
