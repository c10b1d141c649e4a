//! create (also conditional, `If-None-Exist`), update (`If-Match`) and
//! delete.
//!
//! What the caller may write is decided from the type and the proposed
//! resource before anything is looked up; the stored version is then
//! authorised (signed notes, final results, another queue's task) before
//! any version check, so a 412 never tells a caller about a resource it may
//! not see. The condition of a conditional create is searched as the
//! caller: what it cannot see does not exist for it. The server sets who
//! wrote (see `access`) and stamps the version and `meta.lastUpdated`.

use serde_json::Value;

use super::super::access::{Current, Interaction};
use super::super::outcome::FhirError;
use super::super::params;
use super::super::search as engine;
use super::super::store::{self, Stored};
use super::super::triage;
use super::super::validate;
use super::route::{Req, parse_version};
use super::{Cx, Resp};

/// The resources matching a conditional create's condition that the
/// caller may see (at most two: one is a match, two is ambiguous).
pub fn visible_matches(
    cx: &mut Cx<'_>,
    ty: &str,
    condition: &str,
) -> Result<Vec<(Stored, Value)>, FhirError> {
    let cond = condition.trim_start_matches('?');
    let cond = cond.strip_prefix(&format!("{ty}?")).unwrap_or(cond);
    let Ok(grant) = cx.authorize(Interaction::Search, ty, Current::Unread, None) else {
        // A caller that may not search the type sees nothing of it.
        return Ok(Vec::new());
    };
    let mut q = engine::parse(ty, &engine::parse_query(cond), &grant.scope.params)?;
    for (sql, args) in &grant.scope.sql {
        q.restrict(sql.clone(), args.clone());
    }
    let mut out = Vec::new();
    for s in q.first(cx.conn, 2)? {
        if let Some(v) = cx.show(&s)? {
            out.push((s, v));
        }
    }
    Ok(out)
}

pub fn create(
    cx: &mut Cx<'_>,
    ty: &str,
    req: &Req,
    assigned_id: Option<&str>,
) -> Result<Resp, FhirError> {
    let body = req
        .body
        .clone()
        .ok_or_else(|| FhirError::bad_request("a resource is required"))?;
    let grant = cx.authorize(Interaction::Create, ty, Current::Absent, Some(&body))?;
    validate::resource(ty, &body, cx.options.max_resource_bytes)?;
    if let Some(cond) = &req.if_none_exist {
        let mut found = visible_matches(cx, ty, cond)?;
        match found.len() {
            0 => {}
            1 => {
                let (s, v) = found.remove(0);
                return Ok(Resp::stored(200, &s, cx.base, v));
            }
            _ => {
                return Err(FhirError::precondition(
                    "If-None-Exist matches more than one resource",
                ));
            }
        }
    }
    let id = assigned_id
        .map(str::to_string)
        .unwrap_or_else(store::new_id);
    let s = store::write(cx.conn, ty, &id, Some(grant.stamped(body)), cx.now)?;
    let value = s.value();
    cx.trail.saw(ty, &id, s.version, &value);
    // A patient's message gets its queue item in the same transaction:
    // it is never stored unrouted.
    if ty == "Communication"
        && let Some(rules) = &cx.options.triage
        && triage::from_patient(&value)
    {
        let now = store::ms_to_datetime(cx.now);
        triage::route_message(cx.conn, rules, &id, &value, None, now, &mut cx.trail)?;
    }
    Ok(Resp::stored(201, &s, cx.base, value))
}

pub fn update(cx: &mut Cx<'_>, ty: &str, id: &str, req: &Req) -> Result<Resp, FhirError> {
    let body = req
        .body
        .clone()
        .ok_or_else(|| FhirError::bad_request("a resource is required"))?;
    cx.authorize(Interaction::Update, ty, Current::Unread, Some(&body))?;
    if !params::is_valid_id(id) {
        return Err(FhirError::bad_request(format!("{id:?} is not a valid id")));
    }
    validate::resource(ty, &body, cx.options.max_resource_bytes)?;
    match body.get("id").and_then(Value::as_str) {
        Some(bid) if bid == id => {}
        Some(bid) => {
            return Err(FhirError::bad_request(format!(
                "the resource id {bid:?} does not match the URL id {id:?}"
            )));
        }
        None => return Err(FhirError::bad_request("the resource must carry its id")),
    }
    let cur = store::current(cx.conn, ty, id)?;
    let stored = cur.as_ref().filter(|c| !c.deleted).map(Stored::value);
    let current = match &stored {
        Some(v) => Current::Present(v),
        None => Current::Absent,
    };
    let grant = cx.authorize(Interaction::Update, ty, current, Some(&body))?;
    if let Some(expected) = &req.if_match {
        let want = parse_version(expected)
            .ok_or_else(|| FhirError::bad_request("If-Match must be an ETag like W/\"3\""))?;
        match &cur {
            Some(c) if !c.deleted && c.version == want => {}
            Some(c) => {
                return Err(FhirError::precondition(format!(
                    "version conflict: {ty}/{id} is at version {}, not {want}",
                    c.version
                )));
            }
            None => {
                return Err(FhirError::precondition(format!("{ty}/{id} does not exist")));
            }
        }
    }
    let created = stored.is_none();
    let s = store::write(cx.conn, ty, id, Some(grant.stamped(body)), cx.now)?;
    let value = s.value();
    cx.trail.saw(ty, id, s.version, &value);
    Ok(Resp::stored(
        if created { 201 } else { 200 },
        &s,
        cx.base,
        value,
    ))
}

pub fn delete(cx: &mut Cx<'_>, ty: &str, id: &str, req: &Req) -> Result<Resp, FhirError> {
    // Refused for every type (see `access`: records are never deleted);
    // kept whole so the rule is the only thing that says no.
    cx.authorize(Interaction::Delete, ty, Current::Unread, None)?;
    let cur = store::current(cx.conn, ty, id)?;
    let Some(c) = cur.filter(|c| !c.deleted) else {
        return Ok(Resp {
            status: 204,
            ..Default::default()
        });
    };
    let value = c.value();
    cx.authorize(Interaction::Delete, ty, Current::Present(&value), None)?;
    if let Some(expected) = &req.if_match
        && parse_version(expected) != Some(c.version)
    {
        return Err(FhirError::precondition("version conflict"));
    }
    let s = store::write(cx.conn, ty, &c.id, None, cx.now)?;
    cx.trail.saw(ty, id, s.version, &value);
    Ok(Resp {
        status: 204,
        ..Default::default()
    })
}
