//! Audit of every read, search and write, written off the request path by a
//! dedicated thread with its own connection: a row in the append-only `audit`
//! table, and the same event as a FHIR `AuditEvent` so it can be searched
//! (`AuditEvent?patient=…` answers "who looked at this chart"). Clients can
//! never write AuditEvents (see `access`).

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::params;
use serde_json::{Value, json};

use crate::fhir::codes::ROLE_SYSTEM;

use super::access::Caller;
use super::store;

#[derive(Debug)]
pub struct Record {
    pub at: i64,
    pub user: Option<String>,
    pub role: Option<String>,
    pub action: &'static str,
    pub ty: Option<String>,
    pub id: Option<String>,
    /// `Practitioner/<id>` of the caller.
    pub who: Option<String>,
    /// `Patient/<id>` the interaction was about, when known.
    pub patient: Option<String>,
    pub status: u16,
}

enum Msg {
    Record(Record),
    Stop,
}

#[derive(Clone)]
pub struct AuditSink(mpsc::Sender<Msg>);

impl AuditSink {
    pub fn record(
        &self,
        caller: &Caller,
        action: &'static str,
        ty: Option<&str>,
        id: Option<&str>,
        patient: Option<String>,
        status: u16,
    ) {
        let rec = Record {
            at: store::now_ms(),
            user: caller.name().map(str::to_string),
            role: caller.role().map(|r| r.code().to_string()),
            action,
            ty: ty.map(str::to_string),
            id: id.map(str::to_string),
            who: match caller {
                Caller::User(u) => Some(u.practitioner.clone()),
                Caller::Open => None,
            },
            patient,
            status,
        };
        // A stopped writer means the server is shutting down.
        let _ = self.0.send(Msg::Record(rec));
    }

    pub fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

/// Starts the writer thread.
pub fn spawn(db: &Path) -> anyhow::Result<(AuditSink, JoinHandle<()>)> {
    let conn = store::connect(db)?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let handle = std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            let mut conn = conn;
            let mut stop = false;
            while !stop {
                let Ok(first) = rx.recv() else { break };
                let mut batch = Vec::new();
                match first {
                    Msg::Record(r) => batch.push(r),
                    Msg::Stop => stop = true,
                }
                while batch.len() < 1000 {
                    match rx.try_recv() {
                        Ok(Msg::Record(r)) => batch.push(r),
                        Ok(Msg::Stop) => stop = true,
                        Err(_) => break,
                    }
                }
                if let Err(err) = write_batch(&mut conn, &batch) {
                    tracing::error!(error = %err, records = batch.len(), "audit write failed");
                }
            }
        })?;
    Ok((AuditSink(tx), handle))
}

fn write_batch(conn: &mut rusqlite::Connection, batch: &[Record]) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (at, user, role, action, type, id, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.at, r.user, r.role, r.action, r.ty, r.id, r.status
            ])?;
        }
    }
    for r in batch {
        store::write(
            &tx,
            "AuditEvent",
            &store::new_id(),
            Some(audit_event(r)),
            r.at,
        )?;
    }
    tx.commit()
}

/// The FHIR R4 AuditEvent of one interaction.
pub fn audit_event(r: &Record) -> Value {
    let (action, subtype) = match r.action {
        "create" => ("C", "create"),
        "update" => ("U", "update"),
        "delete" => ("D", "delete"),
        "read" => ("R", "read"),
        "vread" => ("R", "vread"),
        "history" => ("R", "history-instance"),
        "search" => ("E", "search-type"),
        "operation" => ("E", "operation"),
        "transaction" => ("E", "transaction"),
        _ => ("E", "batch"),
    };
    let outcome = match r.status {
        0..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut agent = json!({"requestor": true});
    match &r.who {
        Some(who) => agent["who"] = json!({"reference": who, "display": r.user}),
        None => agent["name"] = json!("anonymous (open access)"),
    }
    if let Some(role) = &r.role {
        agent["role"] = json!([{"coding": [{"system": ROLE_SYSTEM, "code": role}]}]);
    }
    let own =
        r.ty.as_ref()
            .zip(r.id.as_ref())
            .map(|(t, i)| format!("{t}/{i}"));
    let mut entities = Vec::new();
    match (&own, &r.ty) {
        (Some(what), _) => entities.push(json!({"what": {"reference": what}})),
        (None, Some(ty)) => entities
            .push(json!({"type": {"system": "http://hl7.org/fhir/resource-types", "code": ty}})),
        _ => {}
    }
    if let Some(p) = &r.patient
        && Some(p) != own.as_ref()
    {
        entities.push(json!({"what": {"reference": p}}));
    }
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": store::instant(r.at),
        "outcome": outcome,
        "outcomeDesc": r.status.to_string(),
        "agent": [agent],
        "source": {"observer": {"display": "chartty portal"}},
    });
    if !entities.is_empty() {
        ev["entity"] = Value::Array(entities);
    }
    ev
}
