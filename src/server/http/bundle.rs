//! batch and transaction Bundles.
//!
//! A batch runs each entry as its own interaction (authorised and audited
//! on its own). A transaction runs in one database transaction: every
//! entry is authorised before anything is looked up (so an `ifNoneExist`
//! never tells a caller what it may not see), conditional creates search as
//! the caller, and the audit records of all entries are written in the
//! same transaction as the changes. The first failure undoes everything
//! and is recorded.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::super::access::{Caller, Current, Interaction};
use super::super::audit::{self, Event, Trail};
use super::super::outcome::FhirError;
use super::super::store;
use super::route::{Req, Route, entry_request};
use super::write::visible_matches;
use super::{App, Cx, Failed, Resp, event, interaction, run_one};

fn status_line(code: u16) -> String {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{code} {reason}").trim_end().to_string()
}

fn response_entry(resp: Result<Resp, FhirError>) -> Value {
    match resp {
        Ok(r) => {
            let mut response = json!({"status": status_line(r.status)});
            if let Some(l) = &r.location {
                response["location"] = json!(l);
            }
            if let Some(e) = &r.etag {
                response["etag"] = json!(e);
            }
            if let Some(m) = &r.last_modified {
                response["lastModified"] = json!(m);
            }
            let mut entry = json!({"response": response});
            if let Some(b) = r.body {
                entry["resource"] = b;
            }
            entry
        }
        Err(e) => json!({
            "response": {"status": status_line(e.status.as_u16()), "outcome": e.outcome()}
        }),
    }
}

/// A batch or transaction posted to the base; returns the answer and the
/// audit records still to append.
pub async fn run(
    app: &Arc<App>,
    ctx: &audit::Context,
    caller: &Caller,
    req: Req,
) -> (Result<Resp, FhirError>, Vec<Event>) {
    let kind_event = |status: u16, detail: Option<String>, action: &str| {
        let mut e = Event::of(Some(caller), ctx, action);
        e.status = status;
        e.detail = detail;
        e
    };
    let Some(bundle) = req.body else {
        let err = FhirError::bad_request("a Bundle is required");
        return (
            Err(err.clone()),
            vec![kind_event(400, Some(err.message), "batch")],
        );
    };
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        let err = FhirError::bad_request("POST to the base takes a Bundle");
        return (
            Err(err.clone()),
            vec![kind_event(400, Some(err.message), "batch")],
        );
    }
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match kind {
        "batch" => {
            let mut out = Vec::with_capacity(entries.len());
            let mut events = Vec::new();
            for entry in &entries {
                let result = match entry_request(entry, &app.base_url) {
                    Ok(r) => {
                        let (result, mut evs) = run_one(app, ctx, caller, r).await;
                        events.append(&mut evs);
                        result
                    }
                    Err(e) => {
                        events.push(kind_event(
                            e.status.as_u16(),
                            Some(e.message.clone()),
                            "batch-entry",
                        ));
                        Err(e)
                    }
                };
                out.push(response_entry(result));
            }
            events.push(kind_event(
                200,
                Some(format!("{} entries", entries.len())),
                "batch",
            ));
            (
                Ok(Resp::bundle(
                    json!({"resourceType": "Bundle", "type": "batch-response", "entry": out}),
                )),
                events,
            )
        }
        "transaction" => {
            let base = app.base_url.clone();
            let options = app.options.clone();
            let c = caller.clone();
            let ctx2 = ctx.clone();
            let n = entries.len();
            let result = app
                .db
                .write(move |conn| -> Result<Vec<Value>, Box<TxFailed>> {
                    let mut cx = Cx::new(conn, &base, &c, &options);
                    let (out, done) = transaction(&mut cx, entries)?;
                    let mut events: Vec<Event> = done
                        .into_iter()
                        .map(|(req, resp, trail)| event(&ctx2, Some(&c), &req, Ok(&resp), trail))
                        .collect();
                    let mut t = Event::of(Some(&c), &ctx2, "transaction");
                    t.status = 200;
                    t.detail = Some(format!("{n} entries"));
                    events.push(t);
                    audit::append(conn, &events).map_err(FhirError::from)?;
                    Ok(out)
                })
                .await;
            match result {
                Ok(out) => (
                    Ok(Resp::bundle(json!({
                        "resourceType": "Bundle", "type": "transaction-response", "entry": out
                    }))),
                    Vec::new(),
                ),
                Err(failed) => {
                    let TxFailed(Failed { error, trail }, failed_req) = *failed;
                    let mut events = Vec::new();
                    if let Some(r) = failed_req {
                        events.push(event(ctx, Some(caller), &r, Err(&error), trail));
                    }
                    events.push(kind_event(
                        error.status.as_u16(),
                        Some(error.message.clone()),
                        "transaction",
                    ));
                    (Err(error), events)
                }
            }
        }
        _ => {
            let err = FhirError::bad_request("Bundle.type must be batch or transaction");
            (
                Err(err.clone()),
                vec![kind_event(400, Some(err.message), "batch")],
            )
        }
    }
}

/// A failed transaction: why, and the entry that failed (if one did).
pub struct TxFailed(Failed, Option<Req>);

impl From<FhirError> for Box<TxFailed> {
    fn from(e: FhirError) -> Self {
        Box::new(TxFailed(*Box::<Failed>::from(e), None))
    }
}

/// Replaces `urn:uuid:` references that name entries of this Bundle.
pub fn rewrite_references(value: &mut Value, map: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                if k == "reference"
                    && let Value::String(s) = v
                    && let Some(to) = map.get(s.as_str())
                {
                    *s = to.clone();
                } else {
                    rewrite_references(v, map);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, map)),
        _ => {}
    }
}

/// What an entry asks, for the decision before any lookup.
fn interaction_of(req: &Req) -> Option<(Interaction, &str)> {
    let ty = req.route.ty()?;
    Some(match (&req.route, &req.method) {
        (Route::Type(_), &Method::POST) => (Interaction::Create, ty),
        (Route::Type(_) | Route::Search(_) | Route::Operation(..), _) => (Interaction::Search, ty),
        (Route::Instance(..), &Method::PUT) => (Interaction::Update, ty),
        (Route::Instance(..), &Method::DELETE) => (Interaction::Delete, ty),
        _ => (Interaction::Read, ty),
    })
}

type Done = Vec<(Req, Resp, Trail)>;

/// All entries in one database transaction; the first failure undoes
/// everything. Returns the response entries and, per entry, what it did.
fn transaction(cx: &mut Cx<'_>, entries: Vec<Value>) -> Result<(Vec<Value>, Done), Box<TxFailed>> {
    let fail = |i: usize, e: FhirError, req: Option<&Req>, trail: Trail| {
        Box::new(TxFailed(
            Failed {
                error: FhirError {
                    message: format!("entry {i}: {}", e.message),
                    ..e
                },
                trail,
            },
            req.cloned(),
        ))
    };
    let mut reqs = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        reqs.push(entry_request(entry, cx.base).map_err(|e| fail(i, e, None, Trail::default()))?);
    }
    // Every entry is decided before anything is looked up.
    for (i, req) in reqs.iter().enumerate() {
        if let Some((what, ty)) = interaction_of(req) {
            let proposed = if matches!(what, Interaction::Create | Interaction::Update) {
                req.body.as_ref()
            } else {
                None
            };
            cx.authorize(what, ty, Current::Unread, proposed)
                .map_err(|e| fail(i, e, Some(req), Trail::default()))?;
        }
    }
    // Reserve ids for creates so references between entries can be
    // rewritten before anything is written; a conditional create that
    // matches (what the caller may see) maps to the existing resource.
    let mut map = HashMap::new();
    let mut assigned: Vec<Option<String>> = vec![None; reqs.len()];
    let mut existing: Vec<Option<Resp>> = (0..reqs.len()).map(|_| None).collect();
    let mut trails: Vec<Trail> = vec![Trail::default(); reqs.len()];
    for (i, req) in reqs.iter().enumerate() {
        let Route::Type(ty) = &req.route else {
            continue;
        };
        if req.method != Method::POST {
            continue;
        }
        let mut id = store::new_id();
        if let Some(cond) = &req.if_none_exist {
            let mut found = visible_matches(cx, ty, cond)
                .map_err(|e| fail(i, e, Some(req), std::mem::take(&mut cx.trail)))?;
            match found.len() {
                0 => {}
                1 => {
                    let (s, v) = found.remove(0);
                    id = s.id.clone();
                    existing[i] = Some(Resp::stored(200, &s, cx.base, v));
                    trails[i] = std::mem::take(&mut cx.trail);
                }
                _ => {
                    return Err(fail(
                        i,
                        FhirError::precondition("ifNoneExist matches more than one resource"),
                        Some(req),
                        std::mem::take(&mut cx.trail),
                    ));
                }
            }
        }
        if let Some(full) = entries[i].get("fullUrl").and_then(Value::as_str) {
            map.insert(full.to_string(), format!("{ty}/{id}"));
        }
        assigned[i] = Some(id);
    }
    for req in reqs.iter_mut() {
        if let Some(b) = req.body.as_mut() {
            rewrite_references(b, &map);
        }
    }
    let order = |m: &Method| match *m {
        Method::DELETE => 0,
        Method::POST => 1,
        Method::PUT => 2,
        _ => 3,
    };
    let mut indices: Vec<usize> = (0..reqs.len()).collect();
    indices.sort_by_key(|&i| order(&reqs[i].method));
    let mut out: Vec<Value> = vec![Value::Null; reqs.len()];
    let mut done: Vec<Option<(Req, Resp, Trail)>> = (0..reqs.len()).map(|_| None).collect();
    for i in indices {
        let req = &reqs[i];
        let (resp, trail) = if let Some(resp) = existing[i].take() {
            (resp, std::mem::take(&mut trails[i]))
        } else {
            let mut r = req.clone();
            r.if_none_exist = None;
            let resp = interaction(cx, &r, assigned[i].as_deref())
                .map_err(|e| fail(i, e, Some(req), std::mem::take(&mut cx.trail)))?;
            (resp, std::mem::take(&mut cx.trail))
        };
        let status = resp.status;
        let summary = Resp {
            status,
            ..Default::default()
        };
        out[i] = response_entry(Ok(resp));
        done[i] = Some((req.clone(), summary, trail));
    }
    Ok((out, done.into_iter().flatten().collect()))
}
