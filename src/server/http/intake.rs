//! What only triage adds to the FHIR API: a patient app's message that
//! does not fit is kept for a human instead of refused, and
//! `Task/$queue-stats` reports on the queues the caller may see.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;

use super::super::access::{Caller, Current, Interaction};
use super::super::audit::{self, Event};
use super::super::outcome::FhirError;
use super::super::search as engine;
use super::super::store;
use super::super::triage;
use super::{App, Cx, Failed, Req, Resp, error_response, to_response};

/// Store the message as text (see [`triage::wrapped_message`]), route it to
/// the review queue, and answer 201 with what was stored.
pub async fn keep_for_review(
    app: &Arc<App>,
    ctx: &audit::Context,
    caller: &Caller,
    body: &Bytes,
    reason: &str,
) -> Response {
    let raw = body.to_vec();
    let reason = reason.to_string();
    let rules = app.options.triage.clone();
    let base = app.base_url.clone();
    let ctx2 = ctx.clone();
    let c = caller.clone();
    let result = app
        .db
        .write(move |conn| -> Result<Resp, Box<Failed>> {
            let now = chrono::Utc::now();
            let message = triage::wrapped_message(conn, &raw, &reason, now)?;
            let id = store::new_id();
            let s = store::write(
                conn,
                "Communication",
                &id,
                Some(message),
                now.timestamp_millis(),
            )
            .map_err(FhirError::from)?;
            let value = s.value();
            let mut trail = audit::Trail::default();
            trail.saw("Communication", &id, s.version, &value);
            if let Some(rules) = &rules {
                triage::route_message(conn, rules, &id, &value, Some(reason), now, &mut trail)?;
            }
            let resp = Resp::stored(201, &s, &base, value);
            let mut e = Event::of(Some(&c), &ctx2, "create");
            e.ty = Some("Communication".into());
            e.id = Some(id);
            e.status = 201;
            e.detail = Some("kept for review: it did not fit the intake format".into());
            e.patients = trail.patients.iter().cloned().collect();
            e.entities = trail.entities;
            audit::append(conn, &[e]).map_err(FhirError::from)?;
            Ok(resp)
        })
        .await;
    match result {
        Ok(resp) => to_response(resp),
        Err(f) => error_response(&f.error),
    }
}

/// `GET Task/$queue-stats?period=…`: the figures of `crate::triage::stats`
/// over the tasks the caller may search, as a `Parameters` resource.
pub fn queue_stats(cx: &mut Cx<'_>, req: &Req) -> Result<Resp, FhirError> {
    let grant = cx.authorize(Interaction::Search, "Task", Current::Unread, None)?;
    let now = store::ms_to_datetime(cx.now);
    let period = req
        .query
        .iter()
        .find(|(k, _)| k == "period")
        .map(|(_, v)| v.as_str());
    let (start, end) = triage::stats_period(period, now)?;
    let when = |prefix: &str, t: chrono::DateTime<chrono::Utc>| {
        format!(
            "{prefix}{}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    };
    let asked = vec![
        ("authored-on".to_string(), when("ge", start)),
        ("authored-on".to_string(), when("lt", end)),
        ("_count".to_string(), engine::MAX_COUNT.to_string()),
    ];
    let mut q = engine::parse("Task", &asked, &grant.scope.params)?;
    for (sql, args) in &grant.scope.sql {
        q.restrict(sql.clone(), args.clone());
    }
    let mut versions = Vec::new();
    let mut tasks = 0usize;
    let mut page = q.first(cx.conn, engine::MAX_COUNT)?;
    while !page.is_empty() {
        let last = page.last().map(|s| s.rid);
        for s in &page {
            if cx.show(s)?.is_none() {
                continue;
            }
            tasks += 1;
            for v in store::history(cx.conn, "Task", &s.id)? {
                if !v.deleted {
                    versions.push(v.value());
                }
            }
        }
        // One page is the common case; a long period reads on by rid.
        if page.len() < engine::MAX_COUNT || tasks >= STATS_MAX_TASKS {
            break;
        }
        let Some(after) = last else { break };
        let mut next = engine::parse("Task", &asked, &grant.scope.params)?;
        for (sql, args) in &grant.scope.sql {
            next.restrict(sql.clone(), args.clone());
        }
        next.restrict(
            "r.rid > ?".into(),
            vec![rusqlite::types::Value::Integer(after)],
        );
        page = next.first(cx.conn, engine::MAX_COUNT)?;
    }
    let figures = crate::triage::stats::queue_stats(&versions, start, end, now);
    Ok(Resp {
        status: 200,
        body: Some(figures.to_parameters()),
        ..Default::default()
    })
}

/// Beyond this many tasks a period is too long to count in one request.
const STATS_MAX_TASKS: usize = 50_000;
