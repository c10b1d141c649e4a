//! search (GET and POST `_search`) and `Observation/$lastn`.
//!
//! The caller's scope is decided before the search runs and limits it in
//! SQL (so counts and pages hold only what the caller may see); then every
//! match and every `_include`d resource is authorised on its own and shown
//! as the caller may see it, and recorded in the audit trail.

use super::super::access::{Current, Interaction};
use super::super::lastn;
use super::super::outcome::FhirError;
use super::super::params;
use super::super::search::{self as engine, Mode};
use super::route::Req;
use super::{Cx, Resp, audit_events};

pub fn search(cx: &mut Cx<'_>, ty: &str, req: &Req) -> Result<Resp, FhirError> {
    if ty == "AuditEvent" {
        return audit_events::search(cx, req);
    }
    if params::type_params(ty).is_none() {
        return Err(FhirError::not_found(format!(
            "resource type {ty:?} is not supported here"
        )));
    }
    let grant = cx.authorize(Interaction::Search, ty, Current::Unread, None)?;
    let mut q = engine::parse(ty, &req.query, &grant.scope.params)?;
    for (sql, args) in &grant.scope.sql {
        q.restrict(sql.clone(), args.clone());
    }
    if req.strict && !q.unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown search parameters: {}",
            q.unknown.join(", ")
        )));
    }
    let conn = cx.conn;
    let base = cx.base;
    let body = engine::bundle_with(conn, &q, base, &mut |s, _: Mode| cx.show(s))?;
    Ok(Resp::bundle(body))
}

/// `Patient/<id>/<Type>`: the search of `Type` by that patient, as any
/// other search of `Type` (scope, per-resource decision, audit).
pub fn compartment(cx: &mut Cx<'_>, pid: &str, ty: &str, req: &Req) -> Result<Resp, FhirError> {
    if ty == "Patient" || params::find_param(ty, "patient").is_none() {
        return Err(FhirError::not_found(format!(
            "{ty} is not searched by patient here"
        )));
    }
    if !params::is_valid_id(pid) {
        return Err(FhirError::bad_request(format!("{pid:?} is not a valid id")));
    }
    let mut inner = req.clone();
    inner.route = super::Route::Type(ty.to_string());
    inner
        .query
        .push(("patient".to_string(), format!("Patient/{pid}")));
    search(cx, ty, &inner)
}

pub fn lastn(cx: &mut Cx<'_>, req: &Req) -> Result<Resp, FhirError> {
    // The same decision as an Observation search: a role that may not read
    // results gets the same 403.
    let grant = cx.authorize(Interaction::Search, "Observation", Current::Unread, None)?;
    let conn = cx.conn;
    let base = cx.base;
    let body = lastn::bundle_with(
        conn,
        &req.query,
        &grant.scope.params,
        &grant.scope.sql,
        base,
        req.strict,
        &mut |s| cx.show(s),
    )?;
    Ok(Resp::bundle(body))
}
