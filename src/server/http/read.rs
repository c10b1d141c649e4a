//! read, vread and history of one resource.
//!
//! The caller's access to the type is decided before the lookup; then each
//! version found is authorised on its own (a task that moved queues, a
//! note that was signed) and shown as the caller may see it. For a caller
//! whose access depends on the resource, one that does not exist answers
//! exactly as one that is hidden.

use serde_json::{Value, json};

use super::super::access::{Current, Interaction};
use super::super::outcome::FhirError;
use super::super::store;
use super::{Cx, Resp, audit_events};

/// The current version of `ty/id`, once the caller may see it.
fn visible_current(cx: &mut Cx<'_>, ty: &str, id: &str) -> Result<store::Stored, FhirError> {
    let grant = cx.authorize(Interaction::Read, ty, Current::Unread, None)?;
    let Some(cur) = store::current(cx.conn, ty, id)? else {
        return Err(cx.absent(ty, id, &grant));
    };
    let value = cur.value();
    cx.authorize(Interaction::Read, ty, Current::Present(&value), None)?;
    Ok(cur)
}

pub fn read(cx: &mut Cx<'_>, ty: &str, id: &str) -> Result<Resp, FhirError> {
    if ty == "AuditEvent" {
        return audit_events::read(cx, id, None);
    }
    let cur = visible_current(cx, ty, id)?;
    if cur.deleted {
        return Err(FhirError::gone(format!("{ty}/{id} was deleted")));
    }
    let shown = cx.show(&cur)?.ok_or_else(FhirError::internal)?;
    Ok(Resp {
        location: None,
        ..Resp::stored(200, &cur, cx.base, shown)
    })
}

pub fn vread(cx: &mut Cx<'_>, ty: &str, id: &str, vid: &str) -> Result<Resp, FhirError> {
    if ty == "AuditEvent" {
        return audit_events::read(cx, id, Some(vid));
    }
    visible_current(cx, ty, id)?;
    let none = || FhirError::not_found(format!("{ty}/{id} has no version {vid}"));
    let v: i64 = vid.parse().map_err(|_| none())?;
    let s = store::version(cx.conn, ty, id, v)?.ok_or_else(none)?;
    let value = s.value();
    cx.authorize(Interaction::Read, ty, Current::Present(&value), None)?;
    if s.deleted {
        return Err(FhirError::gone(format!(
            "{ty}/{id} version {vid} is a deletion"
        )));
    }
    let shown = cx.show(&s)?.ok_or_else(FhirError::internal)?;
    Ok(Resp {
        location: None,
        ..Resp::stored(200, &s, cx.base, shown)
    })
}

pub fn history(cx: &mut Cx<'_>, ty: &str, id: &str) -> Result<Resp, FhirError> {
    if ty == "AuditEvent" {
        return audit_events::history(cx, id);
    }
    visible_current(cx, ty, id)?;
    let versions = store::history(cx.conn, ty, id)?;
    let mut entries: Vec<Value> = Vec::with_capacity(versions.len());
    for s in &versions {
        // Each version as the caller may see it; versions it may not see
        // (before a task came to its queue) are left out.
        let shown = if s.deleted { None } else { cx.show(s)? };
        if !s.deleted && shown.is_none() {
            continue;
        }
        let method = if s.deleted {
            "DELETE"
        } else if s.version == 1 {
            "POST"
        } else {
            "PUT"
        };
        let mut e = json!({
            "fullUrl": format!("{}/{ty}/{id}", cx.base),
            "request": {"method": method, "url": format!("{ty}/{id}")},
            "response": {"status": "200", "etag": s.etag(), "lastModified": store::instant(s.lu)}
        });
        if let Some(v) = shown {
            e["resource"] = v;
        }
        entries.push(e);
    }
    Ok(Resp::bundle(json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": entries.len(),
        "entry": entries
    })))
}
