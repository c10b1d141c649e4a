//! The audit trail read as FHIR AuditEvents: read by id (the record's
//! sequence number), history (one version), and search, newest first, by
//! `patient`, `agent` (the practitioner), `user` (the login), `entity`,
//! `action` (C R U D E), `subtype` (the interaction), `outcome` (0, 4, 8)
//! and `date`. Only roles the table lets read the audit (the attending, as
//! privacy officer) get here; AuditEvents are never written through the
//! API. A search of the trail is itself recorded (with the patient or user
//! asked about), not every record it returns.

use serde_json::{Value, json};

use super::super::access::{Current, Interaction};
use super::super::audit;
use super::super::outcome::FhirError;
use super::super::params;
use super::super::search::DEFAULT_COUNT;
use super::super::search::MAX_COUNT;
use super::route::Req;
use super::{Cx, Resp};

fn allowed(cx: &Cx<'_>, i: Interaction) -> Result<(), FhirError> {
    cx.authorize(i, "AuditEvent", Current::Unread, None)
        .map(|_| ())
}

fn seq_of(id: &str) -> Result<i64, FhirError> {
    id.parse()
        .map_err(|_| FhirError::not_found(format!("AuditEvent/{id} is not known")))
}

pub fn read(cx: &mut Cx<'_>, id: &str, version: Option<&str>) -> Result<Resp, FhirError> {
    allowed(cx, Interaction::Read)?;
    if version.is_some_and(|v| v != "1") {
        return Err(FhirError::not_found(format!(
            "AuditEvent/{id} has only version 1"
        )));
    }
    let row = audit::read(cx.conn, seq_of(id)?)?
        .ok_or_else(|| FhirError::not_found(format!("AuditEvent/{id} is not known")))?;
    Ok(Resp {
        status: 200,
        body: Some(audit::audit_event(row.seq, &row.event)),
        etag: Some("W/\"1\"".into()),
        ..Default::default()
    })
}

pub fn history(cx: &mut Cx<'_>, id: &str) -> Result<Resp, FhirError> {
    let one = read(cx, id, None)?;
    Ok(Resp::bundle(json!({
        "resourceType": "Bundle", "type": "history", "total": 1,
        "entry": [{"fullUrl": format!("{}/AuditEvent/{id}", cx.base), "resource": one.body,
                   "request": {"method": "POST", "url": "AuditEvent"},
                   "response": {"status": "200", "etag": "W/\"1\""}}]
    })))
}

fn action_names(code: &str) -> &'static [&'static str] {
    match code {
        "C" => &["create"],
        "R" => &["read", "vread", "history", "whoami"],
        "U" => &["update"],
        "D" => &["delete"],
        "E" => &[
            "search",
            "operation",
            "batch",
            "transaction",
            "batch-entry",
            "login",
            "unknown",
            "token-issue",
            "token-revoke",
            "user-add",
            "user-disable",
            "user-enable",
            "audit-archive",
        ],
        _ => &[],
    }
}

fn subtype_name(code: &str) -> &str {
    match code {
        "history-instance" | "history-type" => "history",
        "search-type" | "search-system" => "search",
        other => other,
    }
}

fn reference(value: &str, ty: &str) -> Option<String> {
    if value.contains('/') {
        params::normalize_reference(value)
    } else {
        params::is_valid_id(value).then(|| format!("{ty}/{value}"))
    }
}

pub fn search(cx: &mut Cx<'_>, req: &Req) -> Result<Resp, FhirError> {
    allowed(cx, Interaction::Search)?;
    let mut s = audit::Search {
        count: DEFAULT_COUNT,
        ..Default::default()
    };
    let mut unknown = Vec::new();
    let mut links = Vec::new();
    for (name, value) in &req.query {
        if name != "_cursor" {
            links.push((name.clone(), value.clone()));
        }
        let bad = |what: &str| FhirError::bad_request(format!("{name}: {value:?} is not {what}"));
        match name.as_str() {
            "_id" => {
                for id in value.split(',').filter(|v| !v.is_empty()) {
                    // An id that is not a number names no record.
                    s.ids.push(id.trim().parse().unwrap_or(-1));
                }
            }
            "patient" => {
                s.patient = Some(reference(value, "Patient").ok_or_else(|| bad("a patient"))?)
            }
            "agent" => {
                s.agent = Some(reference(value, "Practitioner").ok_or_else(|| bad("a reference"))?)
            }
            "user" | "altid" => s.user = Some(value.clone()),
            "entity" => {
                s.entity =
                    Some(params::normalize_reference(value).ok_or_else(|| bad("a reference"))?)
            }
            "action" => {
                for code in value.split(',') {
                    s.actions
                        .extend(action_names(code.trim()).iter().map(|a| a.to_string()));
                }
            }
            "subtype" => {
                for code in value.split(',') {
                    let code = code.rsplit('|').next().unwrap_or(code);
                    s.actions.push(subtype_name(code.trim()).to_string());
                }
            }
            "outcome" => s.outcome = Some(value.clone()),
            "date" => {
                let (prefix, rest) = value
                    .get(..2)
                    .filter(|p| ["ge", "gt", "le", "lt", "eq"].contains(p))
                    .map_or(("eq", value.as_str()), |p| (p, &value[2..]));
                let (lo, hi) = crate::fhir::time::range_ms(rest).ok_or_else(|| bad("a date"))?;
                match prefix {
                    "ge" => s.from = Some(lo),
                    "gt" => s.from = Some(hi + 1),
                    "le" => s.to = Some(hi),
                    "lt" => s.to = Some(lo - 1),
                    _ => {
                        s.from = Some(lo);
                        s.to = Some(hi);
                    }
                }
            }
            "_count" => {
                s.count = value
                    .parse::<usize>()
                    .map_err(|_| bad("a whole number"))?
                    .min(MAX_COUNT);
            }
            "_cursor" => s.before = Some(value.parse().map_err(|_| bad("a paging cursor"))?),
            "_format" | "_pretty" => {}
            _ => unknown.push(name.clone()),
        }
    }
    if req.strict && !unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown search parameters: {}",
            unknown.join(", ")
        )));
    }
    let mut rows = audit::search(cx.conn, &s)?;
    let more = rows.len() > s.count;
    rows.truncate(s.count);
    let link = |cursor: Option<i64>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &links {
            ser.append_pair(k, v);
        }
        if let Some(c) = cursor {
            ser.append_pair("_cursor", &c.to_string());
        }
        format!("{}/AuditEvent?{}", cx.base, ser.finish())
    };
    let mut bundle_links = vec![json!({"relation": "self", "url": link(None)})];
    if more && let Some(last) = rows.last() {
        bundle_links.push(json!({"relation": "next", "url": link(Some(last.seq))}));
    }
    let mut entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("{}/AuditEvent/{}", cx.base, r.seq),
                "resource": audit::audit_event(r.seq, &r.event),
                "search": {"mode": "match"}
            })
        })
        .collect();
    if let Some(e) = super::super::search::unknown_outcome(&unknown) {
        entries.push(e);
    }
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "link": bundle_links});
    if !more && s.before.is_none() {
        bundle["total"] = json!(rows.len());
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(Resp::bundle(bundle))
}
