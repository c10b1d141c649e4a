//! The FHIR REST surface: one dispatcher turns an HTTP request into an
//! interaction, checks access, runs it against the store and answers with
//! FHIR JSON (or an OperationOutcome). Batch and transaction entries go
//! through the same interaction code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rusqlite::Connection;
use serde_json::{Value, json};

use super::DemoUser;
use super::access::{self, Caller, Op};
use super::audit::AuditSink;
use super::lastn;
use super::outcome::FhirError;
use super::params;
use super::search;
use super::store::{self, Stored};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Connections: one writer behind a mutex, a pool of readers (WAL lets them
/// read while the writer writes).
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl Db {
    pub fn open(path: PathBuf) -> anyhow::Result<Db> {
        let writer = store::connect(&path)?;
        store::migrate(&writer)?;
        Ok(Db {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    fn reader(&self) -> Result<Connection, FhirError> {
        let pooled = self.readers.lock().ok().and_then(|mut r| r.pop());
        match pooled {
            Some(c) => Ok(c),
            None => {
                let c = store::connect(&self.path)?;
                c.pragma_update(None, "query_only", true)?;
                Ok(c)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut r) = self.readers.lock()
            && r.len() < 8
        {
            r.push(conn);
        }
    }
}

pub struct App {
    pub db: Db,
    /// Bearer token → user; empty means open access.
    pub users: HashMap<String, DemoUser>,
    pub base_url: String,
    pub audit: AuditSink,
}

impl App {
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, FhirError> + Send + 'static,
    ) -> Result<T, FhirError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = app.db.reader()?;
            let out = f(&conn);
            app.db.give_back(conn);
            out
        })
        .await
        .map_err(|_| FhirError::internal())?
    }

    /// Runs `f` in one transaction on the writer; nothing is kept if it fails.
    async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, FhirError> + Send + 'static,
    ) -> Result<T, FhirError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = app.db.writer.lock().map_err(|_| FhirError::internal())?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|_| FhirError::internal())?
    }
}

/// One interaction, from HTTP or from a Bundle entry.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub route: Route,
    pub query: Vec<(String, String)>,
    pub if_match: Option<String>,
    pub if_none_exist: Option<String>,
    pub body: Option<Value>,
    pub strict: bool,
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
    fn stored(status: u16, s: &Stored, base: &str, with_body: bool) -> Resp {
        Resp {
            status,
            body: with_body.then(|| s.value()),
            etag: Some(s.etag()),
            location: Some(format!("{base}/{}/{}/_history/{}", s.ty, s.id, s.version)),
            last_modified: Some(s.last_modified()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Metadata,
    WhoAmI,
    Base,
    Type(String),
    Search(String),
    Instance(String, String),
    History(String, String),
    Version(String, String, String),
    /// A type-level operation such as `Observation/$lastn` (name without `$`).
    Operation(String, String),
}

/// Type-level operations: (type, name); all are searches, invoked with GET.
pub const OPERATIONS: &[(&str, &str, &str)] = &[(
    "Observation",
    "lastn",
    "http://hl7.org/fhir/OperationDefinition/Observation-lastn",
)];

impl Route {
    fn parse(segments: &[&str]) -> Result<Route, FhirError> {
        // Any well-formed type name routes, so that imported resources of
        // types without search support can still be read back; searching or
        // writing an unsupported type is refused in `interaction`.
        let known = |t: &str| -> Result<String, FhirError> {
            if params::is_type_name(t) {
                Ok(t.to_string())
            } else {
                Err(FhirError::not_found(format!("unknown resource type {t:?}")))
            }
        };
        Ok(match segments {
            [] => Route::Base,
            ["metadata"] => Route::Metadata,
            ["$whoami"] => Route::WhoAmI,
            [t] => Route::Type(known(t)?),
            [t, "_search"] => Route::Search(known(t)?),
            [t, op] if op.starts_with('$') => {
                let t = known(t)?;
                let name = &op[1..];
                if !OPERATIONS.iter().any(|(ty, n, _)| *ty == t && *n == name) {
                    return Err(FhirError::not_found(format!("{t} has no operation {op:?}")));
                }
                Route::Operation(t, name.to_string())
            }
            [t, id] => Route::Instance(known(t)?, id.to_string()),
            [t, id, "_history"] => Route::History(known(t)?, id.to_string()),
            [t, id, "_history", v] => Route::Version(known(t)?, id.to_string(), v.to_string()),
            _ => return Err(FhirError::not_found("no such endpoint")),
        })
    }

    fn allows(&self, m: &Method) -> bool {
        match self {
            Route::Metadata
            | Route::WhoAmI
            | Route::History(..)
            | Route::Version(..)
            | Route::Operation(..) => m == Method::GET,
            Route::Base | Route::Search(_) => m == Method::POST,
            Route::Type(_) => m == Method::GET || m == Method::POST,
            Route::Instance(..) => m == Method::GET || m == Method::PUT || m == Method::DELETE,
        }
    }

    fn writes(&self, m: &Method) -> bool {
        !matches!(self, Route::Search(_))
            && (m == Method::POST || m == Method::PUT || m == Method::DELETE)
    }

    fn ty(&self) -> Option<&str> {
        match self {
            Route::Type(t) | Route::Search(t) | Route::Operation(t, _) => Some(t),
            Route::Instance(t, _) | Route::History(t, _) | Route::Version(t, _, _) => Some(t),
            _ => None,
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Route::Instance(_, id) | Route::History(_, id) | Route::Version(_, id, _) => Some(id),
            _ => None,
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
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
    let response = match handle(&app, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(
        method = %m,
        resource_type = %ty,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    response
}

fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, FhirError> {
    if app.users.is_empty() {
        return Ok(Caller::Open);
    }
    let token = header_str(headers, "authorization")
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or_else(|| FhirError::unauthorized("a bearer token is required"))?;
    app.users
        .get(token)
        .cloned()
        .map(Caller::User)
        .ok_or_else(|| FhirError::unauthorized("unknown or expired token"))
}

async fn handle(
    app: &Arc<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, FhirError> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/fhir")
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .ok_or_else(|| FhirError::not_found("no such endpoint; the FHIR base is /fhir"))?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let route = Route::parse(&segments)?;
    if !route.allows(&method) {
        return Err(FhirError::method_not_allowed(format!(
            "{method} is not supported here"
        )));
    }
    if route == Route::Metadata {
        return Ok(fhir_response(StatusCode::OK, &capability(&app.base_url)));
    }
    let caller = authenticate(app, &headers)?;
    if route == Route::WhoAmI {
        return whoami(&caller);
    }

    let mut query = search::parse_query(uri.query().unwrap_or(""));
    let content_type = header_str(&headers, "content-type").unwrap_or("");
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
            query.extend(search::parse_query(&String::from_utf8_lossy(&body)));
        }
    } else if method == Method::POST || method == Method::PUT {
        if !content_type.is_empty() && !content_type.contains("json") {
            return Err(FhirError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not-supported",
                "send application/fhir+json",
            ));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| FhirError::bad_request(format!("malformed JSON: {e}")))?;
        json_body = Some(v);
    }
    let prefer = header_str(&headers, "prefer").unwrap_or("");
    let req = Req {
        method,
        route,
        query,
        if_match: header_str(&headers, "if-match").map(str::to_string),
        if_none_exist: header_str(&headers, "if-none-exist").map(str::to_string),
        body: json_body,
        strict: prefer.contains("handling=strict"),
    };
    let minimal = prefer.contains("return=minimal");
    let resp = if req.route == Route::Base {
        bundle_interaction(app, &caller, req).await?
    } else {
        run_one(app, &caller, req).await?
    };
    let mut resp = resp;
    if minimal && resp.status < 300 {
        resp.body = None;
    }
    Ok(to_response(resp))
}

/// Runs a single (non-Bundle) interaction on the right connection, and audits it.
async fn run_one(app: &Arc<App>, caller: &Caller, req: Req) -> Result<Resp, FhirError> {
    let action = action_name(&req);
    let ty = req.route.ty().map(str::to_string);
    let id = req.route.id().map(str::to_string);
    let patient = patient_of(&req);
    let writes = req.route.writes(&req.method);
    let base = app.base_url.clone();
    let c = caller.clone();
    let result = if writes {
        app.write(move |conn| interaction(conn, &base, &c, &req, None))
            .await
    } else {
        app.read(move |conn| interaction(conn, &base, &c, &req, None))
            .await
    };
    let status = match &result {
        Ok(r) => r.status,
        Err(e) => e.status.as_u16(),
    };
    app.audit.record(
        caller,
        action,
        ty.as_deref(),
        id.as_deref(),
        patient,
        status,
    );
    result
}

/// The patient an interaction concerns, for the audit trail: the resource
/// itself, a patient search parameter, or the subject of a written resource.
fn patient_of(req: &Req) -> Option<String> {
    if let Route::Instance(ty, id) | Route::Version(ty, id, _) | Route::History(ty, id) = &req.route
        && ty == "Patient"
    {
        return Some(format!("Patient/{id}"));
    }
    for (k, v) in &req.query {
        if matches!(k.as_str(), "patient" | "subject" | "for") {
            let v = v.split(',').next().unwrap_or(v);
            let r = if v.contains('/') {
                params::normalize_reference(v)
            } else {
                Some(format!("Patient/{v}"))
            };
            if let Some(r) = r.filter(|r| r.starts_with("Patient/")) {
                return Some(r);
            }
        }
    }
    let body = req.body.as_ref()?;
    ["subject", "patient", "for"].iter().find_map(|k| {
        body.get(*k)?
            .get("reference")?
            .as_str()
            .and_then(params::normalize_reference)
            .filter(|r| r.starts_with("Patient/"))
    })
}

fn action_name(req: &Req) -> &'static str {
    match (&req.route, &req.method) {
        (Route::Type(_), &Method::GET) | (Route::Search(_), _) => "search",
        (Route::Operation(..), _) => "operation",
        (Route::Type(_), _) => "create",
        (Route::Instance(..), &Method::PUT) => "update",
        (Route::Instance(..), &Method::DELETE) => "delete",
        (Route::Version(..), _) => "vread",
        (Route::History(..), _) => "history",
        (Route::Base, _) => "batch",
        _ => "read",
    }
}

fn parse_version(etag: &str) -> Option<i64> {
    let t = etag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').parse().ok()
}

/// Required elements checked on create and update (`x[x]` means any choice).
static REQUIRED: &[(&str, &[&str])] = &[
    ("Observation", &["status", "code"]),
    ("DiagnosticReport", &["status", "code"]),
    ("Condition", &["subject"]),
    ("AllergyIntolerance", &["patient"]),
    (
        "MedicationRequest",
        &["status", "intent", "subject", "medication[x]"],
    ),
    ("Encounter", &["status", "class"]),
    ("DocumentReference", &["status", "content"]),
    ("Task", &["status", "intent"]),
    ("Communication", &["status"]),
    ("AuditEvent", &["type", "recorded", "agent", "source"]),
];

fn validate(ty: &str, body: &Value) -> Result<(), FhirError> {
    let Some(obj) = body.as_object() else {
        return Err(FhirError::bad_request("the body must be a JSON object"));
    };
    let rt = obj.get("resourceType").and_then(Value::as_str);
    if rt != Some(ty) {
        return Err(FhirError::bad_request(format!(
            "resourceType must be {ty}, got {}",
            rt.unwrap_or("nothing")
        )));
    }
    if let Some((_, required)) = REQUIRED.iter().find(|(t, _)| *t == ty) {
        for field in *required {
            let present = match field.strip_suffix("[x]") {
                Some(prefix) => obj.keys().any(|k| k.starts_with(prefix)),
                None => obj.get(*field).is_some_and(|v| !v.is_null()),
            };
            if !present {
                return Err(FhirError::unprocessable(format!(
                    "{ty}.{field} is required"
                )));
            }
        }
    }
    Ok(())
}

/// Checks that a single resource lies within the caller's scope.
/// A read or vread of one stored version: gone when it is a deletion,
/// forbidden outside the caller's queue, else the resource with its headers.
fn read_answer(
    conn: &Connection,
    scope: &access::Scope,
    s: &Stored,
    base: &str,
    deleted: impl FnOnce() -> String,
) -> Result<Resp, FhirError> {
    if s.deleted {
        return Err(FhirError::gone(deleted()));
    }
    if !in_scope(conn, scope, s)? {
        return Err(FhirError::forbidden(format!(
            "{}/{} is outside your queue",
            s.ty, s.id
        )));
    }
    Ok(Resp {
        location: None,
        ..Resp::stored(200, s, base, true)
    })
}

fn in_scope(conn: &Connection, scope: &access::Scope, s: &Stored) -> Result<bool, FhirError> {
    if scope.filter.is_empty() {
        return Ok(true);
    }
    let mut query = scope.filter.clone();
    query.push(("_id".to_string(), s.id.clone()));
    Ok(!search::matching(conn, &s.ty, &query, 1)?.is_empty())
}

/// One interaction against `conn`. `assigned_id` is the id a transaction
/// reserved for a create.
pub fn interaction(
    conn: &Connection,
    base: &str,
    caller: &Caller,
    req: &Req,
    assigned_id: Option<&str>,
) -> Result<Resp, FhirError> {
    let now = store::now_ms();
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
            let scope = access::decide(caller, Op::Search, ty)?;
            let q = search::parse(ty, &req.query, &scope.filter)?;
            if req.strict && !q.unknown.is_empty() {
                return Err(FhirError::bad_request(format!(
                    "unknown search parameters: {}",
                    q.unknown.join(", ")
                )));
            }
            let can_read =
                |t: &str| access::decide(caller, Op::Read, t).is_ok_and(|s| s.filter.is_empty());
            let body = search::bundle(conn, &q, base, &can_read)?;
            Ok(Resp {
                status: 200,
                body: Some(body),
                ..Default::default()
            })
        }
        (Route::Type(ty), _) => {
            access::decide(caller, Op::Write, ty)?;
            let body = req
                .body
                .clone()
                .ok_or_else(|| FhirError::bad_request("a resource is required"))?;
            validate(ty, &body)?;
            if let Some(cond) = &req.if_none_exist {
                let cond = cond.trim_start_matches('?');
                let cond = cond.strip_prefix(&format!("{ty}?")).unwrap_or(cond);
                let found = search::matching(conn, ty, &search::parse_query(cond), 2)?;
                match found.as_slice() {
                    [] => {}
                    [one] => return Ok(Resp::stored(200, one, base, true)),
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
            let s = store::write(conn, ty, &id, Some(body), now)?;
            Ok(Resp::stored(201, &s, base, true))
        }
        (Route::Instance(ty, id), &Method::GET) => {
            let scope = access::decide(caller, Op::Read, ty)?;
            let s = store::current(conn, ty, id)?
                .ok_or_else(|| FhirError::not_found(format!("{ty}/{id} is not known")))?;
            read_answer(conn, &scope, &s, base, || format!("{ty}/{id} was deleted"))
        }
        (Route::Instance(ty, id), &Method::PUT) => {
            access::decide(caller, Op::Write, ty)?;
            if !params::is_valid_id(id) {
                return Err(FhirError::bad_request(format!("{id:?} is not a valid id")));
            }
            let body = req
                .body
                .clone()
                .ok_or_else(|| FhirError::bad_request("a resource is required"))?;
            validate(ty, &body)?;
            match body.get("id").and_then(Value::as_str) {
                Some(bid) if bid == id => {}
                Some(bid) => {
                    return Err(FhirError::bad_request(format!(
                        "the resource id {bid:?} does not match the URL id {id:?}"
                    )));
                }
                None => return Err(FhirError::bad_request("the resource must carry its id")),
            }
            let cur = store::current(conn, ty, id)?;
            if let Some(expected) = &req.if_match {
                let want = parse_version(expected).ok_or_else(|| {
                    FhirError::bad_request("If-Match must be an ETag like W/\"3\"")
                })?;
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
            let created = cur.as_ref().is_none_or(|c| c.deleted);
            let s = store::write(conn, ty, id, Some(body), now)?;
            Ok(Resp::stored(
                if created { 201 } else { 200 },
                &s,
                base,
                true,
            ))
        }
        (Route::Instance(ty, id), &Method::DELETE) => {
            access::decide(caller, Op::Write, ty)?;
            let cur = store::current(conn, ty, id)?;
            if let Some(expected) = &req.if_match {
                let want = parse_version(expected);
                if cur.as_ref().map(|c| c.version) != want {
                    return Err(FhirError::precondition("version conflict"));
                }
            }
            if let Some(c) = cur.filter(|c| !c.deleted) {
                store::write(conn, ty, &c.id, None, now)?;
            }
            Ok(Resp {
                status: 204,
                ..Default::default()
            })
        }
        (Route::Operation(ty, op), &Method::GET) if ty == "Observation" && op == "lastn" => {
            // The same decision as an Observation search: a role that may
            // not read results gets the same 403.
            let scope = access::decide(caller, Op::Search, ty)?;
            let body = lastn::bundle(conn, &req.query, &scope.filter, base, req.strict)?;
            Ok(Resp {
                status: 200,
                body: Some(body),
                ..Default::default()
            })
        }
        (Route::Version(ty, id, vid), _) => {
            let scope = access::decide(caller, Op::Read, ty)?;
            let v: i64 = vid
                .parse()
                .map_err(|_| FhirError::not_found(format!("{ty}/{id} has no version {vid}")))?;
            let s = store::version(conn, ty, id, v)?
                .ok_or_else(|| FhirError::not_found(format!("{ty}/{id} has no version {vid}")))?;
            read_answer(conn, &scope, &s, base, || {
                format!("{ty}/{id} version {vid} is a deletion")
            })
        }
        (Route::History(ty, id), _) => {
            let scope = access::decide(caller, Op::Read, ty)?;
            let versions = store::history(conn, ty, id)?;
            let Some(latest) = versions.first() else {
                return Err(FhirError::not_found(format!("{ty}/{id} is not known")));
            };
            if !in_scope(conn, &scope, latest)? {
                return Err(FhirError::forbidden(format!(
                    "{ty}/{id} is outside your queue"
                )));
            }
            let entries: Vec<Value> = versions
                .iter()
                .map(|s| {
                    let mut e = json!({
                        "fullUrl": format!("{base}/{ty}/{id}"),
                        "request": {"method": if s.deleted { "DELETE" } else if s.version == 1 { "POST" } else { "PUT" },
                                    "url": format!("{ty}/{id}")},
                        "response": {"status": "200", "etag": s.etag(), "lastModified": store::instant(s.lu)}
                    });
                    if !s.deleted {
                        e["resource"] = s.value();
                    }
                    e
                })
                .collect();
            Ok(Resp {
                status: 200,
                body: Some(json!({
                    "resourceType": "Bundle",
                    "type": "history",
                    "total": entries.len(),
                    "entry": entries
                })),
                ..Default::default()
            })
        }
        _ => Err(FhirError::method_not_allowed("not supported here")),
    }
}

fn whoami(caller: &Caller) -> Result<Response, FhirError> {
    let Caller::User(user) = caller else {
        return Err(FhirError::not_found(
            "this server has no users; access is open",
        ));
    };
    let body = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "user", "valueString": user.name},
            {"name": "role", "valueCode": user.role.code()},
            {"name": "practitioner", "valueReference": {"reference": user.practitioner, "display": user.name}}
        ]
    });
    Ok(fhir_response(StatusCode::OK, &body))
}

// ---- batch and transaction ----

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

/// Turns a Bundle entry's `request` into an interaction.
fn entry_request(entry: &Value, base: &str) -> Result<Req, FhirError> {
    let request = entry
        .get("request")
        .ok_or_else(|| FhirError::bad_request("every entry needs a request"))?;
    let method: Method = request
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| FhirError::bad_request("entry request.method is missing or invalid"))?;
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::bad_request("entry request.url is missing"))?;
    let url = url.strip_prefix(base).unwrap_or(url);
    let (path, qs) = url.split_once('?').unwrap_or((url, ""));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = Route::parse(&segments)?;
    if matches!(route, Route::Base | Route::Metadata | Route::WhoAmI) || !route.allows(&method) {
        return Err(FhirError::method_not_allowed(format!(
            "{method} {url} is not supported in a Bundle"
        )));
    }
    let body = entry.get("resource").cloned();
    if (method == Method::POST || method == Method::PUT) && body.is_none() {
        return Err(FhirError::bad_request(
            "a POST or PUT entry needs a resource",
        ));
    }
    Ok(Req {
        method,
        route,
        query: search::parse_query(qs),
        if_match: request
            .get("ifMatch")
            .and_then(Value::as_str)
            .map(str::to_string),
        if_none_exist: request
            .get("ifNoneExist")
            .and_then(Value::as_str)
            .map(str::to_string),
        body,
        strict: false,
    })
}

async fn bundle_interaction(app: &Arc<App>, caller: &Caller, req: Req) -> Result<Resp, FhirError> {
    let bundle = req
        .body
        .ok_or_else(|| FhirError::bad_request("a Bundle is required"))?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::bad_request("POST to the base takes a Bundle"));
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
            for entry in &entries {
                let result = match entry_request(entry, &app.base_url) {
                    Ok(r) => run_one(app, caller, r).await,
                    Err(e) => Err(e),
                };
                out.push(response_entry(result));
            }
            app.audit.record(caller, "batch", None, None, None, 200);
            Ok(Resp {
                status: 200,
                body: Some(
                    json!({"resourceType": "Bundle", "type": "batch-response", "entry": out}),
                ),
                ..Default::default()
            })
        }
        "transaction" => {
            let base = app.base_url.clone();
            let c = caller.clone();
            let result = app
                .write(move |conn| transaction(conn, &base, &c, entries))
                .await;
            app.audit.record(
                caller,
                "transaction",
                None,
                None,
                None,
                result.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
            );
            let out = result?;
            Ok(Resp {
                status: 200,
                body: Some(
                    json!({"resourceType": "Bundle", "type": "transaction-response", "entry": out}),
                ),
                ..Default::default()
            })
        }
        _ => Err(FhirError::bad_request(
            "Bundle.type must be batch or transaction",
        )),
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

/// All entries in one database transaction; the first failure undoes everything.
fn transaction(
    conn: &Connection,
    base: &str,
    caller: &Caller,
    entries: Vec<Value>,
) -> Result<Vec<Value>, FhirError> {
    let fail = |i: usize, e: FhirError| {
        FhirError::new(e.status, e.code, format!("entry {i}: {}", e.message))
    };
    let mut reqs = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        reqs.push(entry_request(entry, base).map_err(|e| fail(i, e))?);
    }
    // Reserve ids for creates so references between entries can be rewritten
    // before anything is written; a conditional create that matches maps to
    // the existing resource.
    let mut map = HashMap::new();
    let mut assigned: Vec<Option<String>> = vec![None; reqs.len()];
    let mut existing: Vec<Option<Stored>> = vec![None; reqs.len()];
    for (i, req) in reqs.iter().enumerate() {
        let Route::Type(ty) = &req.route else {
            continue;
        };
        if req.method != Method::POST {
            continue;
        }
        let mut id = store::new_id();
        if let Some(cond) = &req.if_none_exist {
            let found = search::matching(
                conn,
                ty,
                &search::parse_query(cond.trim_start_matches('?')),
                2,
            )
            .map_err(|e| fail(i, e))?;
            match found.as_slice() {
                [] => {}
                [one] => {
                    id = one.id.clone();
                    existing[i] = Some(one.clone());
                }
                _ => {
                    return Err(fail(
                        i,
                        FhirError::precondition("ifNoneExist matches more than one resource"),
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
    for i in indices {
        let req = &reqs[i];
        let resp = if let Some(s) = &existing[i] {
            access::decide(caller, Op::Write, &s.ty).map_err(|e| fail(i, e))?;
            Resp::stored(200, s, base, true)
        } else {
            let mut r = req.clone();
            r.if_none_exist = None;
            interaction(conn, base, caller, &r, assigned[i].as_deref()).map_err(|e| fail(i, e))?
        };
        out[i] = response_entry(Ok(resp));
    }
    Ok(out)
}

// ---- capability statement ----

fn capability(base: &str) -> Value {
    let resources: Vec<Value> = params::CORE_TYPES
        .iter()
        .chain(params::OTHER_TYPES.iter())
        .map(|(ty, ps)| {
            let mut search_params: Vec<Value> = vec![
                json!({"name": "_id", "type": "token"}),
                json!({"name": "_lastUpdated", "type": "date"}),
            ];
            search_params.extend(ps.iter().map(|p| {
                let t = match p.kind {
                    params::Kind::String => "string",
                    params::Kind::Token => "token",
                    params::Kind::Date => "date",
                    params::Kind::Reference => "reference",
                };
                json!({"name": p.name, "type": t})
            }));
            let includes: Vec<String> = ps
                .iter()
                .filter(|p| p.kind == params::Kind::Reference)
                .map(|p| format!("{ty}:{}", p.name))
                .collect();
            let interactions: Vec<Value> = [
                "read",
                "vread",
                "history-instance",
                "search-type",
                "create",
                "update",
                "delete",
            ]
            .iter()
            .map(|c| json!({"code": c}))
            .collect();
            let operations: Vec<Value> = OPERATIONS
                .iter()
                .filter(|(t, _, _)| t == ty)
                .map(|(_, name, definition)| json!({"name": name, "definition": definition}))
                .collect();
            let mut resource = json!({
                "type": ty,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions,
                "searchInclude": includes,
                "searchParam": search_params,
            });
            if !operations.is_empty() {
                resource["operation"] = Value::Array(operations);
            }
            resource
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": store::instant(store::now_ms()),
        "kind": "instance",
        "software": {"name": "chartty portal", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "chartty portal server", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "documentation": format!(
                "Paging by opaque cursor in Bundle.link next; _count defaults to {} (at most {}); \
                 unknown search parameters are ignored and reported unless Prefer: handling=strict. \
                 Observation/$lastn: the newest max (default {}, at most {}) results of each \
                 test of one patient (patient= required), after the other search parameters \
                 are applied. Extra: GET $whoami returns the signed-in user.",
                search::DEFAULT_COUNT, search::MAX_COUNT, lastn::DEFAULT_MAX, lastn::MAX_MAX
            ),
            "security": {"service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "OAuth"}]}],
                          "description": "Bearer tokens when the server has users; open otherwise."},
            "resource": resources,
            "interaction": [{"code": "batch"}, {"code": "transaction"}],
            "searchParam": [
                {"name": "_count", "type": "number"}, {"name": "_sort", "type": "string"},
                {"name": "_elements", "type": "string"}, {"name": "_summary", "type": "token"},
                {"name": "_include", "type": "string"}, {"name": "_total", "type": "token"}
            ],
            "operation": [{"name": "whoami", "definition": format!("{base}/$whoami")}]
        }]
    })
}
