//! The FHIR REST surface. Every request goes the same way: parse (the
//! route, the caller's token, the body and headers) → authorise (in the
//! interaction, through [`access::authorize`]) → store or read → audit →
//! respond. One file per kind of interaction: [`read`] (read, vread,
//! history), [`search`] (search, `$lastn`), [`write`] (create, update,
//! delete), [`bundle`] (batch, transaction), [`audit_events`] (the audit
//! trail as AuditEvents), [`capability`] (metadata, `$whoami`).
//!
//! The audit record of a write is appended in the write's own database
//! transaction; the records of reads, refusals and failures are committed
//! before the answer goes out. An answer whose record cannot be committed
//! is not sent (503).

mod audit_events;
mod bundle;
mod capability;
mod intake;
mod read;
mod route;
mod search;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde_json::Value;

use super::access::{self, Caller, Current, DbFacts, Grant, Interaction};
use super::audit::{self, Event, Trail};
use super::db::Db;
use super::options::Options;
use super::outcome::FhirError;
use super::params;
use super::search as engine;
use super::store::{self, Stored};
use super::users;

pub use bundle::rewrite_references;
pub use route::{OPERATIONS, Req, Route};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

pub struct App {
    pub db: Arc<Db>,
    /// No users: anyone who can reach the server may use it.
    pub open: bool,
    pub base_url: String,
    pub options: Options,
}

#[derive(Debug, Default)]
pub struct Resp {
    pub status: u16,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub last_modified: Option<String>,
}

impl Resp {
    fn stored(status: u16, s: &Stored, base: &str, body: Value) -> Resp {
        Resp {
            status,
            body: Some(body),
            etag: Some(s.etag()),
            location: Some(format!("{base}/{}/{}/_history/{}", s.ty, s.id, s.version)),
            last_modified: Some(s.last_modified()),
        }
    }

    fn bundle(body: Value) -> Resp {
        Resp {
            status: 200,
            body: Some(body),
            ..Default::default()
        }
    }
}

/// What one interaction runs with.
pub struct Cx<'a> {
    pub conn: &'a Connection,
    pub base: &'a str,
    pub caller: &'a Caller,
    pub facts: DbFacts<'a>,
    pub trail: Trail,
    pub now: i64,
    pub options: &'a Options,
}

impl<'a> Cx<'a> {
    pub fn new(
        conn: &'a Connection,
        base: &'a str,
        caller: &'a Caller,
        options: &'a Options,
    ) -> Self {
        Cx {
            conn,
            base,
            caller,
            facts: DbFacts::new(conn),
            trail: Trail::default(),
            now: store::now_ms(),
            options,
        }
    }

    /// Asks [`access::authorize`]; a refusal is an error.
    pub fn authorize(
        &self,
        i: Interaction,
        ty: &str,
        current: Current<'_>,
        proposed: Option<&Value>,
    ) -> Result<Grant, FhirError> {
        access::authorize(self.caller, i, ty, current, proposed, &self.facts)?.allowed()
    }

    /// A stored version as the caller may see it (in the trail), or `None`
    /// when the caller may not see it.
    pub fn show(&mut self, s: &Stored) -> Result<Option<Value>, FhirError> {
        let v = s.value();
        match access::authorize(
            self.caller,
            Interaction::Read,
            &s.ty,
            Current::Present(&v),
            None,
            &self.facts,
        )? {
            access::Decision::Allow(g) => {
                self.trail.saw(&s.ty, &s.id, s.version, &v);
                Ok(Some(g.shown(v)))
            }
            access::Decision::Deny(_) => Ok(None),
        }
    }

    /// Before a lookup: refused, or the grant. After it found nothing:
    /// "not found" only where the caller could have seen it, else the same
    /// refusal a hidden one gets.
    pub fn absent(&self, ty: &str, id: &str, grant: &Grant) -> FhirError {
        if grant.conditional
            && let Err(e) = self.authorize(Interaction::Read, ty, Current::Absent, None)
        {
            return e;
        }
        FhirError::not_found(format!("{ty}/{id} is not known"))
    }
}

/// One interaction against `cx.conn`. `assigned_id` is the id a transaction
/// reserved for a create.
pub fn interaction(
    cx: &mut Cx<'_>,
    req: &Req,
    assigned_id: Option<&str>,
) -> Result<Resp, FhirError> {
    let reads = req.method == Method::GET && !matches!(req.route, Route::Type(_));
    if let Some(ty) = req.route.ty()
        && !reads
        && params::type_params(ty).is_none()
    {
        return Err(FhirError::not_found(format!(
            "resource type {ty:?} is not supported here"
        )));
    }
    match (&req.route, &req.method) {
        (Route::Type(ty) | Route::Search(ty), m)
            if *m == Method::GET || matches!(req.route, Route::Search(_)) =>
        {
            search::search(cx, ty, req)
        }
        (Route::Type(ty), &Method::POST) => write::create(cx, ty, req, assigned_id),
        (Route::Instance(ty, id), &Method::GET) => read::read(cx, ty, id),
        (Route::Instance(ty, id), &Method::PUT) => write::update(cx, ty, id, req),
        (Route::Instance(ty, id), &Method::DELETE) => write::delete(cx, ty, id, req),
        (Route::Operation(ty, op), &Method::GET) if ty == "Observation" && op == "lastn" => {
            search::lastn(cx, req)
        }
        (Route::Operation(ty, op), &Method::GET) if ty == "Task" && op == "queue-stats" => {
            intake::queue_stats(cx, req)
        }
        (Route::Compartment(pid, ty), &Method::GET) => search::compartment(cx, pid, ty, req),
        (Route::Version(ty, id, vid), _) => read::vread(cx, ty, id, vid),
        (Route::History(ty, id), _) => read::history(cx, ty, id),
        _ => Err(FhirError::method_not_allowed("not supported here")),
    }
}

/// The audit record of one interaction.
fn event(
    ctx: &audit::Context,
    caller: Option<&Caller>,
    req: &Req,
    result: Result<&Resp, &FhirError>,
    trail: Trail,
) -> Event {
    let mut e = Event::of(caller, ctx, req.action());
    e.ty = req.route.ty().map(str::to_string);
    e.id = req.route.id().map(str::to_string);
    e.query = req.query_string();
    if let Route::Version(_, _, v) = &req.route {
        e.version = v.parse().ok();
    }
    let mut patients: std::collections::BTreeSet<String> =
        req.named_patients().into_iter().collect();
    patients.extend(trail.patients);
    e.patients = patients.into_iter().collect();
    match result {
        Ok(r) => e.status = r.status,
        Err(err) => {
            e.status = err.status.as_u16();
            e.detail = Some(err.message.clone());
        }
    }
    // One resource read or written: its id (a create's is the server's)
    // and version.
    if let [only] = trail.entities.as_slice()
        && matches!(req.action(), "create" | "update" | "read" | "vread")
    {
        let parts: Vec<&str> = only.split('/').collect();
        if let [_, id, "_history", v] = parts.as_slice() {
            e.id.get_or_insert_with(|| id.to_string());
            e.version = e.version.or_else(|| v.parse().ok());
        }
    }
    e.entities = trail.entities;
    e
}

/// Why a write failed, and what it had touched (for its audit record).
pub struct Failed {
    pub error: FhirError,
    pub trail: Trail,
}

impl From<FhirError> for Box<Failed> {
    fn from(error: FhirError) -> Self {
        Box::new(Failed {
            error,
            trail: Trail::default(),
        })
    }
}

/// Runs one interaction on the right connection. A write and its audit
/// record are committed together; otherwise the records to append are
/// returned (the caller commits them before answering).
async fn run_one(
    app: &Arc<App>,
    ctx: &audit::Context,
    caller: &Caller,
    req: Req,
) -> (Result<Resp, FhirError>, Vec<Event>) {
    let base = app.base_url.clone();
    let options = app.options.clone();
    let c = caller.clone();
    if req.route.writes(&req.method) {
        let ctx2 = ctx.clone();
        let req2 = req.clone();
        let result = app
            .db
            .write(move |conn| -> Result<Resp, Box<Failed>> {
                let mut cx = Cx::new(conn, &base, &c, &options);
                match interaction(&mut cx, &req2, None) {
                    Ok(resp) => {
                        let trail = std::mem::take(&mut cx.trail);
                        let ev = event(&ctx2, Some(&c), &req2, Ok(&resp), trail);
                        audit::append(conn, &[ev]).map_err(FhirError::from)?;
                        Ok(resp)
                    }
                    Err(error) => Err(Box::new(Failed {
                        error,
                        trail: std::mem::take(&mut cx.trail),
                    })),
                }
            })
            .await;
        match result.map_err(|f| *f) {
            Ok(resp) => (Ok(resp), Vec::new()),
            Err(Failed { error, trail }) => {
                let ev = event(ctx, Some(caller), &req, Err(&error), trail);
                (Err(error), vec![ev])
            }
        }
    } else {
        let req2 = req.clone();
        let result = app
            .db
            .read(move |conn| -> Result<(Resp, Trail), Box<Failed>> {
                let mut cx = Cx::new(conn, &base, &c, &options);
                match interaction(&mut cx, &req2, None) {
                    Ok(resp) => Ok((resp, cx.trail)),
                    Err(error) => Err(Box::new(Failed {
                        error,
                        trail: cx.trail,
                    })),
                }
            })
            .await;
        match result.map_err(|f| *f) {
            Ok((resp, trail)) => {
                let ev = event(ctx, Some(caller), &req, Ok(&resp), trail);
                (Ok(resp), vec![ev])
            }
            Err(Failed { error, trail }) => {
                let ev = event(ctx, Some(caller), &req, Err(&error), trail);
                (Err(error), vec![ev])
            }
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A conditional header, which must be plain ASCII: one that is not is
/// refused rather than ignored (ignoring it would make a conditional
/// request unconditional).
fn condition_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, FhirError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) => Ok(Some(s.to_string())),
            Err(_) => Err(FhirError::bad_request(format!(
                "the {name} header must be ASCII text"
            ))),
        },
    }
}

fn fhir_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

fn error_response(err: &FhirError) -> Response {
    let mut r = fhir_response(err.status, &err.outcome());
    if err.status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if err.status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn to_response(resp: Resp) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    let mut r = match &resp.body {
        Some(b) => fhir_response(status, b),
        None => status.into_response(),
    };
    let h = r.headers_mut();
    for (name, value) in [
        (header::ETAG, resp.etag),
        (header::LOCATION, resp.location),
        (header::LAST_MODIFIED, resp.last_modified),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    r
}

/// Every request under `/fhir` arrives here.
pub async fn dispatch(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    // Only the method, the resource type and the outcome are logged: paths
    // and queries can carry ids and names.
    let ty = uri
        .path()
        .trim_start_matches("/fhir/")
        .split('/')
        .next()
        .filter(|t| params::is_type_name(t))
        .unwrap_or("-")
        .to_string();
    let m = method.clone();
    let client = super::auth::address::client(
        peer.map(|Extension(ConnectInfo(a))| a),
        &headers,
        &app.options.trusted_proxies,
    );
    let ctx = audit::Context::new(client.source);
    let mut response = handle(&app, &ctx, method, uri, headers, body).await;
    // Names the audit records of this request (for support and tests).
    if let Ok(v) = HeaderValue::from_str(&ctx.request) {
        response.headers_mut().insert("x-request-id", v);
    }
    tracing::debug!(
        method = %m,
        resource_type = %ty,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

/// Who the bearer token signs in. A refusal carries, for the audit only,
/// whose token it was.
async fn authenticate(
    app: &Arc<App>,
    headers: &HeaderMap,
) -> Result<Caller, (FhirError, Option<String>)> {
    if app.open {
        return Ok(Caller::Open);
    }
    let token = header_str(headers, "authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        })
        .ok_or_else(|| (FhirError::unauthorized("a bearer token is required"), None))?;
    let found = app
        .db
        .read(move |conn| -> Result<_, FhirError> {
            Ok(match users::authenticate(conn, &token, store::now_ms())? {
                Ok(user) => Ok(user),
                Err(refused) => Err((refused, users::owner(conn, &token)?)),
            })
        })
        .await
        .map_err(|e| (e, None))?;
    match found {
        Ok(user) => Ok(Caller::User(user)),
        Err((refused, owner)) => Err((FhirError::unauthorized(refused.says()), owner)),
    }
}

/// Answers a request that failed before it became an interaction, after
/// recording it (with what the request names: type, id, query, patients).
async fn refused(
    app: &Arc<App>,
    ctx: &audit::Context,
    caller: Option<&Caller>,
    req: Option<&Req>,
    err: FhirError,
) -> Response {
    refused_noting(app, ctx, caller, req, err, None).await
}

/// [`refused`], with a note for the record only.
async fn refused_noting(
    app: &Arc<App>,
    ctx: &audit::Context,
    caller: Option<&Caller>,
    req: Option<&Req>,
    err: FhirError,
    note: Option<String>,
) -> Response {
    let mut e = Event::of(caller, ctx, req.map_or("unknown", Req::action));
    if let Some(req) = req {
        e.ty = req.route.ty().map(str::to_string);
        e.id = req.route.id().map(str::to_string);
        e.query = req.query_string();
        e.patients = req.named_patients();
    }
    e.status = err.status.as_u16();
    e.detail = Some(match note {
        Some(n) => format!("{} ({n})", err.message),
        None => err.message.clone(),
    });
    if let Err(audit_err) = app.db.append(vec![e]).await {
        return error_response(&audit_err);
    }
    error_response(&err)
}

async fn handle(
    app: &Arc<App>,
    ctx: &audit::Context,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some(rest) = path
        .strip_prefix("/fhir")
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        let err = FhirError::not_found("no such endpoint; the FHIR base is /fhir");
        return refused(app, ctx, None, None, err).await;
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let route = match Route::parse(&segments) {
        Ok(r) => r,
        Err(e) => return refused(app, ctx, None, None, e).await,
    };
    // What the request names, for the record of one that goes no further.
    let bare = Req {
        method: method.clone(),
        route: route.clone(),
        query: engine::parse_query(uri.query().unwrap_or("")),
        if_match: None,
        if_none_exist: None,
        body: None,
        strict: false,
    };
    if !route.allows(&method) {
        let err = FhirError::method_not_allowed(format!("{method} is not supported here"));
        return refused(app, ctx, None, Some(&bare), err).await;
    }
    if route == Route::Metadata {
        return fhir_response(StatusCode::OK, &capability::statement(&app.base_url));
    }
    let caller = match authenticate(app, &headers).await {
        Ok(c) => c,
        Err((e, owner)) if e.status == StatusCode::UNAUTHORIZED => {
            let note = owner.map(|login| format!("a token of {login}"));
            return refused_noting(app, ctx, None, Some(&bare), e, note).await;
        }
        Err((e, _)) => return error_response(&e),
    };
    if route == Route::WhoAmI {
        let answer = capability::whoami(&caller);
        let mut e = Event::of(Some(&caller), ctx, "whoami");
        e.status = answer.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200);
        if let Err(err) = app.db.append(vec![e]).await {
            return error_response(&err);
        }
        return match answer {
            Ok(body) => fhir_response(StatusCode::OK, &body),
            Err(e) => error_response(&e),
        };
    }
    if caller.role() == Some(crate::roles::Role::Intake)
        && method == Method::POST
        && route == Route::Type("Communication".into())
        && let Some(reason) = unfit_for_intake(&body, app.options.max_resource_bytes)
    {
        return intake::keep_for_review(app, ctx, &caller, &body, &reason).await;
    }
    let req = match parse_request(route, &method, &uri, &headers, &body) {
        Ok(r) => r,
        Err(e) => return refused(app, ctx, Some(&caller), Some(&bare), e).await,
    };
    let minimal = header_str(&headers, "prefer").is_some_and(|p| p.contains("return=minimal"));
    let (result, events) = if req.route == Route::Base {
        bundle::run(app, ctx, &caller, req).await
    } else {
        run_one(app, ctx, &caller, req).await
    };
    if let Err(e) = app.db.append(events).await {
        return error_response(&e);
    }
    match result {
        Ok(mut resp) => {
            if minimal && resp.status < 300 {
                resp.body = None;
            }
            to_response(resp)
        }
        Err(e) => error_response(&e),
    }
}

/// Why a message the patient app posts cannot be stored as sent, if it
/// cannot: it is then kept whole for a human instead of refused, so a
/// patient's words are never lost to a bug in the app.
fn unfit_for_intake(body: &Bytes, max_bytes: usize) -> Option<String> {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("not JSON ({e})")),
    };
    if let Err(e) = super::validate::resource("Communication", &v, max_bytes) {
        return Some(e.message);
    }
    let sender = v.pointer("/sender/reference").and_then(Value::as_str);
    let subject = v.pointer("/subject/reference").and_then(Value::as_str);
    match (sender, subject) {
        (Some(s), Some(p)) if s == p && s.starts_with("Patient/") => None,
        _ => Some("the sender must be the Patient the message is about".into()),
    }
}

fn parse_request(
    route: Route,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Req, FhirError> {
    let if_match = condition_header(headers, "if-match")?;
    let if_none_exist = condition_header(headers, "if-none-exist")?;
    condition_header(headers, "if-none-match")?;
    condition_header(headers, "if-modified-since")?;
    let mut query = engine::parse_query(uri.query().unwrap_or(""));
    let content_type = header_str(headers, "content-type").unwrap_or("");
    let mut json_body = None;
    if matches!(route, Route::Search(_)) {
        if !body.is_empty() {
            if !content_type.starts_with("application/x-www-form-urlencoded") {
                return Err(FhirError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not-supported",
                    "_search takes an application/x-www-form-urlencoded body",
                ));
            }
            query.extend(engine::parse_query(&String::from_utf8_lossy(body)));
        }
    } else if *method == Method::POST || *method == Method::PUT {
        if !content_type.is_empty() && !content_type.contains("json") {
            return Err(FhirError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "send application/fhir+json",
            ));
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| FhirError::bad_request(format!("malformed JSON: {e}")))?;
        json_body = Some(v);
    }
    let prefer = header_str(headers, "prefer").unwrap_or("");
    Ok(Req {
        method: method.clone(),
        route,
        query,
        if_match,
        if_none_exist,
        body: json_body,
        strict: prefer.contains("handling=strict"),
    })
}
