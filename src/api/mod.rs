//! The client's only door to the network: a reqwest client for FHIR R4 and the
//! worker that runs the app's requests and sends results back as events.
//!
//! Every JSON body is decoded to a `serde_json::Value`, sanitised with
//! [`crate::fhir::sanitize::sanitize_json`], and only then turned into typed
//! structs: the one place where untrusted text enters the client.
//!
//! Reads that fail in passing (no answer, 429, 502–504) are tried again with
//! backoff; every write goes through [`ApiClient::write`], the one write path.

pub mod chart;
pub mod contract;
pub mod http;
pub mod retry;
pub mod router;
pub mod signin;
mod worker;
mod write;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::chart::{PatientRow, RecordNumber};
use crate::fhir::codes;
use crate::fhir::model::{Bundle, Observation, OperationOutcome, Patient};
use crate::fhir::sanitize::{sanitize, sanitize_json};
use crate::roles::Role;

pub use contract::{
    ApiError, ApiReply, ApiRequest, Completed, Features, RequestId, Secret, Slot, WhoAmI, Write,
};
pub use retry::Backoff;
pub use worker::Worker;

/// Fields a patient list needs; keeps search pages small over a slow link.
pub const PATIENT_ELEMENTS: &str = "identifier,name,gender,birthDate,deceased";

/// Requests a test log keeps (oldest dropped first).
const LOG_CAPACITY: usize = 4096;

/// One request as it went out (method and path with query, no body, no
/// headers), kept only when a test asks for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: &'static str,
    pub path_and_query: String,
}

/// An HTTP answer the api layer reads: status, the headers it uses, body.
struct Answer {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    retry_after: Option<Duration>,
    body: Option<Value>,
    /// First line of a body that is not JSON, for the error message.
    text: String,
}

/// A FHIR R4 client bound to one server and one bearer token.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    bearer: signin::Bearer,
    records: RecordNumber,
    backoff: Backoff,
    /// How the client was built, for the sign-in that unlocks a locked
    /// session (the same CA file and proxies).
    options: http::HttpOptions,
    /// Only tests keep one: it holds queries, and queries hold names typed.
    log: Option<Arc<Mutex<VecDeque<SentRequest>>>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// Proxies from the environment, no site CA.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> anyhow::Result<Self> {
        Self::with_options(base, token, &http::HttpOptions::new(timeout))
    }

    /// A client built with `opts` (a site CA, proxies), by [`http::http_client`].
    pub fn with_options(
        base: &str,
        token: Option<String>,
        opts: &http::HttpOptions,
    ) -> anyhow::Result<Self> {
        let http = http::http_client(opts)?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            bearer: signin::Bearer::fixed(token),
            records: RecordNumber::default(),
            backoff: Backoff::default(),
            options: opts.clone(),
            log: None,
        })
    }

    /// Sign requests with this bearer (a SMART sign-in, refreshed as it
    /// goes) instead of the fixed token.
    pub fn with_bearer(mut self, bearer: signin::Bearer) -> Self {
        self.bearer = bearer;
        self
    }

    pub fn bearer(&self) -> &signin::Bearer {
        &self.bearer
    }

    /// Keep a log of the requests sent (tests).
    pub fn with_request_log(mut self) -> Self {
        self.log = Some(Arc::default());
        self
    }

    /// Which identifier is the MRN on this server.
    pub fn with_record_number(mut self, rule: RecordNumber) -> Self {
        self.records = rule;
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Requests sent so far, oldest first (empty unless a log was asked for).
    pub fn sent(&self) -> Vec<SentRequest> {
        self.log
            .as_ref()
            .and_then(|l| l.lock().ok().map(|l| l.iter().cloned().collect()))
            .unwrap_or_default()
    }

    fn url(&self, relative: &str) -> String {
        format!("{}/{}", self.base, relative.trim_start_matches('/'))
    }

    fn record(&self, method: &'static str, url: &str) {
        let Some(log) = &self.log else { return };
        let path_and_query = match url::Url::parse(url) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{}", u.path(), q),
                None => u.path().to_string(),
            },
            Err(_) => url.to_string(),
        };
        if let Ok(mut l) = log.lock() {
            if l.len() == LOG_CAPACITY {
                l.pop_front();
            }
            l.push_back(SentRequest {
                method,
                path_and_query,
            });
        }
    }

    /// One HTTP exchange, no retry.
    async fn exchange(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Answer, ApiError> {
        // The token goes to the configured server only. A link a reply
        // names (a `next` page) on another origin is asked of the
        // configured server when it lies under the FHIR base (a server
        // behind a proxy, or one that names itself `127.0.0.1` while it is
        // reached as `localhost`); anything else is not followed.
        let rebased;
        let url = match on_base(url, &self.base) {
            Some(u) => {
                rebased = u;
                rebased.as_str()
            }
            None => {
                return Err(ApiError::local(format!(
                    "not followed: the server linked to another server ({}); \
                     the sign-in is only sent to {}",
                    origin_of(url).unwrap_or_else(|| "an address that is not a URL".into()),
                    origin_of(&self.base).unwrap_or_default()
                )));
            }
        };
        self.record(
            match method {
                reqwest::Method::POST => "POST",
                reqwest::Method::PUT => "PUT",
                reqwest::Method::DELETE => "DELETE",
                _ => "GET",
            },
            url,
        );
        let token = self.bearer.current().await.map_err(ApiError::local)?;
        let answer = self
            .send(method.clone(), url, body, headers, token.as_deref())
            .await?;
        let Some(used) = token.filter(|_| answer.status == 401) else {
            return Ok(answer);
        };
        // Refused: a SMART sign-in is renewed and the request sent once
        // more; one that cannot be renewed has ended.
        match self.bearer.renew_after_refusal(&used).await {
            signin::bearer::Renewal::Retry(fresh) => {
                self.send(method, url, body, headers, Some(&fresh)).await
            }
            signin::bearer::Renewal::Ended => Err(ApiError::signed_out()),
            signin::bearer::Renewal::No => Ok(answer),
        }
    }

    /// One request as it goes on the wire.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
        token: Option<&str>,
    ) -> Result<Answer, ApiError> {
        let mut req = self
            .http
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/fhir+json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/fhir+json")
                .body(b.to_string());
        }
        let started = std::time::Instant::now();
        let lost = |e| transport_error(e, &self.options, started.elapsed());
        let resp = req.send().await.map_err(lost)?;
        let status = resp.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(reqwest::header::ETAG);
        let location = header(reqwest::header::LOCATION);
        let retry_after = header(reqwest::header::RETRY_AFTER)
            .as_deref()
            .and_then(retry::parse_retry_after);
        let bytes = resp.bytes().await.map_err(lost)?;
        let body = serde_json::from_slice::<Value>(&bytes).ok().map(|mut v| {
            sanitize_json(&mut v);
            v
        });
        let text = if body.is_none() {
            let t = String::from_utf8_lossy(&bytes);
            let line: String = t
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(120)
                .collect();
            sanitize(&line).into_owned()
        } else {
            String::new()
        };
        Ok(Answer {
            status,
            etag,
            location,
            retry_after,
            body,
            text,
        })
    }

    /// An exchange tried again with backoff while it fails in passing;
    /// only for requests that are safe to repeat.
    async fn exchange_idempotent(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Answer, ApiError> {
        let mut attempt = 1;
        loop {
            let result = self.exchange(method.clone(), url, body, headers).await;
            let (status, after) = match &result {
                Ok(a) if a.status < 400 => return result,
                Ok(a) => (Some(a.status), a.retry_after),
                // Refused here (a certificate, a link to another server,
                // no sign-in while locked): trying again changes nothing.
                Err(e) if e.status.is_none() && !e.no_answer => return result,
                Err(e) => (e.status, None),
            };
            if attempt >= self.backoff.attempts || !retry::retryable(status) {
                return result;
            }
            let wait = self.backoff.delay(attempt, after, rand::random::<f64>());
            tracing::debug!(attempt, status = ?status, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// GET an absolute URL; the sanitised JSON body, or an error.
    async fn get_json(&self, url: &str) -> Result<Value, ApiError> {
        self.exchange_idempotent(reqwest::Method::GET, url, None, &[])
            .await
            .and_then(answer_json)
    }

    async fn get_bundle(&self, url: &str) -> Result<Bundle, ApiError> {
        decode(self.get_json(url).await?)
    }

    /// Run one request to completion.
    pub async fn execute(&self, request: ApiRequest) -> Result<ApiReply, ApiError> {
        match request {
            ApiRequest::WhoAmI => self.whoami().await.map(ApiReply::WhoAmI),
            ApiRequest::Lock { login } => {
                self.bearer.lock(&self.base, login).await;
                Ok(ApiReply::Locked)
            }
            ApiRequest::UnlockWithToken { token } => self
                .bearer
                .unlock_with_token(&token.0)
                .await
                .map(|()| ApiReply::Unlocked { who: None })
                .map_err(ApiError::local),
            ApiRequest::UnlockOpen => self
                .bearer
                .unlock_open()
                .await
                .map(|()| ApiReply::Unlocked { who: None })
                .map_err(ApiError::local),
            ApiRequest::UnlockStart => self
                .bearer
                .unlock_start(&self.options)
                .await
                .map(ApiReply::UnlockCode)
                .map_err(ApiError::local),
            ApiRequest::UnlockWait { start } => self
                .bearer
                .unlock_wait(&start)
                .await
                .map(|who| ApiReply::Unlocked {
                    who: Some(who.label()),
                })
                .map_err(ApiError::local),
            ApiRequest::Capabilities => self.capabilities().await.map(ApiReply::Capabilities),
            ApiRequest::PatientPage { count } => {
                let url = self.url(&format!(
                    "Patient?_count={count}&_elements={PATIENT_ELEMENTS}&_total=accurate"
                ));
                self.patients(&url).await
            }
            ApiRequest::SearchPatients { params, count } => {
                if params.is_empty() {
                    return Ok(ApiReply::Patients {
                        patients: Vec::new(),
                        next: None,
                        total: Some(0),
                    });
                }
                let mut url = url::Url::parse(&self.url("Patient"))
                    .map_err(|e| ApiError::local(format!("bad server address: {e}")))?;
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in &params {
                        q.append_pair(k, v);
                    }
                    q.append_pair("_count", &count.to_string());
                    q.append_pair("_elements", PATIENT_ELEMENTS);
                }
                self.patients(url.as_str()).await
            }
            ApiRequest::NextPage { url } => {
                let bundle = self.get_bundle(&url).await?;
                if bundle
                    .entry
                    .iter()
                    .any(|e| chart::resource_type(e.resource.as_ref()) == Some("Task"))
                {
                    Ok(queue_reply(&bundle))
                } else {
                    Ok(ApiReply::Patients {
                        patients: self.patient_rows(&bundle),
                        next: bundle.next_url().map(str::to_string),
                        total: bundle.total,
                    })
                }
            }
            ApiRequest::OpenChart {
                patient_id,
                name,
                features,
            } => self
                .open_chart(&patient_id, name.as_deref(), features)
                .await
                .map(|c| ApiReply::Chart(Box::new(c))),
            ApiRequest::TestHistory { patient_id, code } => {
                let url = self.url(&chart::history_query(&patient_id, &code));
                let (section, _) = chart::section::<Observation>(
                    self.get_json(&url).await,
                    "Observation",
                    &patient_id,
                );
                if let Some(e) = section.failed {
                    return Err(ApiError::local(e));
                }
                let mut values = section.items;
                values.sort_by_key(|o| {
                    std::cmp::Reverse(o.when().and_then(crate::fhir::time::instant))
                });
                Ok(ApiReply::History {
                    values,
                    more_on_server: section.more_on_server,
                })
            }
            ApiRequest::Probe => match self
                .exchange(reqwest::Method::GET, &self.url("metadata"), None, &[])
                .await
            {
                // Any HTTP answer means the server is reachable again.
                Ok(_) => Ok(ApiReply::Reachable),
                Err(e) => Err(e),
            },
            ApiRequest::RoleQueue { role, count } => {
                let bundle = self
                    .get_bundle(&self.url(&queue_query(role, count)))
                    .await?;
                Ok(queue_reply(&bundle))
            }
            ApiRequest::ReadTask { id } => {
                let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
                self.get_json(&self.url(&format!("Task/{id}")))
                    .await
                    .map(ApiReply::Resource)
            }
            ApiRequest::Thread { patient_id } => {
                let bundle = self
                    .get_json(&self.url(&of_patient(
                        "Communication?subject",
                        &patient_id,
                        THREAD_COUNT,
                    )))
                    .await?;
                Ok(thread_reply(&bundle))
            }
            ApiRequest::QueueStats { period } => self
                .queue_stats(Some(&period))
                .await
                .map(|s| ApiReply::QueueStats(Box::new(s))),
            ApiRequest::PatientTasks { patient_id } => {
                let bundle = self
                    .get_json(&self.url(&of_patient(
                        "Task?patient",
                        &patient_id,
                        PATIENT_TASKS_COUNT,
                    )))
                    .await?;
                Ok(resources_reply(&bundle, "Task"))
            }
            ApiRequest::Write(w) => self.write(w).await,
            ApiRequest::ReadResource { path } => {
                let (ty, id) = path
                    .split_once('/')
                    .filter(|(t, i)| chart::is_type_name(t) && !i.is_empty() && !i.contains('/'))
                    .ok_or_else(|| ApiError::local("not a resource address"))?;
                let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
                self.get_json(&self.url(&format!("{ty}/{id}")))
                    .await
                    .map(ApiReply::Resource)
            }
            ApiRequest::CoSign { task } => self.cosign(task).await,
        }
    }

    async fn patients(&self, url: &str) -> Result<ApiReply, ApiError> {
        let bundle = self.get_bundle(url).await?;
        Ok(ApiReply::Patients {
            patients: self.patient_rows(&bundle),
            next: bundle.next_url().map(str::to_string),
            total: bundle.total,
        })
    }

    /// The list entries of a page of Patients, decoded one at a time so a page
    /// never exists twice (as JSON and as decoded resources) beside the entries.
    pub fn patient_rows(&self, bundle: &Bundle) -> Vec<PatientRow> {
        bundle
            .entry
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .filter(|r| chart::resource_type(Some(r)) == Some("Patient"))
            .filter_map(|r| Patient::deserialize(r).ok())
            .filter_map(|p| self.records.row(&p))
            .collect()
    }

    async fn whoami(&self) -> Result<Option<WhoAmI>, ApiError> {
        match self.get_json(&self.url("$whoami")).await {
            Ok(v) => Ok(Some(parse_whoami(&v))),
            // A plain FHIR server: no such operation.
            Err(e) if matches!(e.status, Some(400 | 404 | 405 | 501)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn capabilities(&self) -> Result<Features, ApiError> {
        Ok(features_of(&self.get_json(&self.url("metadata")).await?))
    }

    /// One `POST [base]` batch of every search the chart needs; a server
    /// without batch gets the same searches in parallel instead (still one
    /// round trip of latency, never a chain).
    async fn open_chart(
        &self,
        patient_id: &str,
        name: Option<&str>,
        features: Features,
    ) -> Result<crate::chart::ChartData, ApiError> {
        let queries = chart::queries(patient_id, name, features);
        let body = json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": queries.iter().map(|(_, u)| json!({"request": {"method": "GET", "url": u}})).collect::<Vec<_>>(),
        });
        // A batch of reads is safe to repeat.
        let answer = self
            .exchange_idempotent(reqwest::Method::POST, &self.base, Some(&body), &[])
            .await
            .and_then(answer_json);
        let parts: Vec<Result<Value, ApiError>> = match answer {
            Ok(v) if v.get("type").and_then(Value::as_str) == Some("batch-response") => {
                batch_parts(decode(v)?, queries.len())
            }
            Ok(_)
            | Err(ApiError {
                status: Some(400 | 404 | 405 | 415 | 501),
                ..
            }) => {
                let urls: Vec<String> = queries.iter().map(|(_, u)| u.clone()).collect();
                self.parallel(&urls).await
            }
            Err(e) => return Err(e),
        };
        chart::from_parts(patient_id, &queries, parts, features, &self.records)
    }

    async fn parallel(&self, urls: &[String]) -> Vec<Result<Value, ApiError>> {
        let mut set = tokio::task::JoinSet::new();
        for (i, u) in urls.iter().enumerate() {
            let this = self.clone();
            let url = self.url(u);
            set.spawn(async move { (i, this.get_json(&url).await) });
        }
        let mut out: Vec<Result<Value, ApiError>> = (0..urls.len())
            .map(|_| Err(ApiError::local("request did not finish")))
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = r;
            }
        }
        out
    }
}

/// Each entry of a batch response as the reply of its own request.
fn batch_parts(bundle: Bundle, expected: usize) -> Vec<Result<Value, ApiError>> {
    let mut parts: Vec<Result<Value, ApiError>> = bundle
        .entry
        .into_iter()
        .map(|e| {
            let status = e.response.as_ref().and_then(|r| r.status_code());
            match (status, e.resource) {
                (Some(s), Some(r)) if (200..300).contains(&s) => Ok(r),
                (None, Some(r)) if chart::resource_type(Some(&r)) != Some("OperationOutcome") => {
                    Ok(r)
                }
                (s, r) => Err(ApiError {
                    signed_out: false,
                    no_answer: false,
                    status: s,
                    message: r
                        .and_then(|r| outcome_message(&r))
                        .or_else(|| {
                            e.response
                                .and_then(|x| x.outcome)
                                .and_then(|o| outcome_message(&o))
                        })
                        .unwrap_or_else(|| "not available".into()),
                }),
            }
        })
        .collect();
    parts.resize_with(expected, || {
        Err(ApiError::local("missing from the server's reply"))
    });
    parts
}

/// What a CapabilityStatement offers that the client can use.
pub fn features_of(capability: &Value) -> Features {
    let resources = capability
        .get("rest")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("resource").and_then(Value::as_array))
        .flatten();
    let mut f = Features::default();
    let resources: Vec<&Value> = resources.collect();
    // Conditional create where the server says so for the types chartty
    // writes (a server that says nothing may ignore `If-None-Exist`).
    f.conditional_create = ["DocumentReference", "Task"].iter().all(|ty| {
        resources.iter().any(|r| {
            r.get("type").and_then(Value::as_str) == Some(ty)
                && r.get("conditionalCreate").and_then(Value::as_bool) == Some(true)
        })
    });
    for r in resources {
        if r.get("type").and_then(Value::as_str) != Some("Observation") {
            continue;
        }
        let ops = r
            .get("operation")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for op in ops {
            let name = op.get("name").and_then(Value::as_str).unwrap_or("");
            let def = op.get("definition").and_then(Value::as_str).unwrap_or("");
            if name.trim_start_matches('$') == "lastn" || def.ends_with("Observation-lastn") {
                f.lastn = true;
            }
        }
    }
    f
}

/// Task statuses of an open piece of work, as the role queue asks for them.
pub const OPEN_TASK_STATUSES: [&str; 6] = [
    "requested",
    "received",
    "accepted",
    "ready",
    "in-progress",
    "on-hold",
];

/// Messages of one patient read for the message view.
const THREAD_COUNT: u32 = 100;
/// Tasks of one patient read for the time on its messages (one page).
const PATIENT_TASKS_COUNT: u32 = 200;

/// The open tasks of every queue the role works (own queue first).
/// `<type>?<param>=Patient/<id>&_count=<count>`, the id encoded.
fn of_patient(type_and_param: &str, patient_id: &str, count: u32) -> String {
    let pid: String = url::form_urlencoded::byte_serialize(patient_id.as_bytes()).collect();
    format!("{type_and_param}=Patient/{pid}&_count={count}")
}

/// `scheme://host:port` of a URL, sanitised for a message.
fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    Some(sanitize(&u.origin().ascii_serialization()).into_owned())
}

/// `url` as a request to the server at `base`: itself when it is on the
/// same origin; its path and query on `base`'s origin when the path lies
/// under `base`'s path; `None` otherwise.
fn on_base(url: &str, base: &str) -> Option<String> {
    let (u, b) = (url::Url::parse(url).ok()?, url::Url::parse(base).ok()?);
    if u.origin() == b.origin() {
        return Some(url.to_string());
    }
    let root = b.path().trim_end_matches('/');
    let path = u.path();
    let under = path == root || path.starts_with(&format!("{root}/"));
    if !under || root.is_empty() && path == "/" {
        return None;
    }
    let mut moved = b.clone();
    moved.set_path(path);
    moved.set_query(u.query());
    Some(moved.to_string())
}

fn queue_query(role: Role, count: u32) -> String {
    let queues: Vec<String> = role
        .queues()
        .iter()
        .map(|q| format!("{}%7C{q}", codes::ROLE_SYSTEM))
        .collect();
    format!(
        "Task?performer-type={}&status={}&_count={count}&_include=Task:patient",
        queues.join(","),
        OPEN_TASK_STATUSES.join(",")
    )
}

/// A patient's messages, oldest first (sorted here: `_sort` on `sent` is
/// not something every server offers).
fn thread_reply(bundle: &Value) -> ApiReply {
    let mut messages: Vec<Value> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .filter(|r| chart::resource_type(Some(r)) == Some("Communication"))
        .cloned()
        .collect();
    let sent = |m: &Value| {
        m.get("sent")
            .and_then(Value::as_str)
            .and_then(crate::fhir::time::instant)
    };
    messages.sort_by_key(|m| (sent(m).is_none(), sent(m)));
    let more = bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|l| l.get("relation").and_then(Value::as_str) == Some("next"));
    ApiReply::Thread { messages, more }
}

/// The resources of one type in a search result, and whether the server
/// had more pages.
fn resources_reply(bundle: &Value, ty: &str) -> ApiReply {
    let resources: Vec<Value> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
        .filter(|r| chart::resource_type(Some(r)) == Some(ty))
        .cloned()
        .collect();
    let more = bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|l| l.get("relation").and_then(Value::as_str) == Some("next"));
    ApiReply::Resources { resources, more }
}

fn queue_reply(bundle: &Bundle) -> ApiReply {
    let mut tasks: Vec<crate::fhir::model::Task> = bundle.resources("Task");
    // The queue asked for open tasks only; a server may have ignored that.
    tasks.retain(|t| {
        t.status
            .as_deref()
            .is_some_and(|s| OPEN_TASK_STATUSES.contains(&s))
    });
    ApiReply::Queue {
        tasks,
        patients: bundle.resources("Patient"),
        next: bundle.next_url().map(str::to_string),
    }
}

fn parse_whoami(v: &Value) -> WhoAmI {
    let mut who = WhoAmI::default();
    let params = v.get("parameter").and_then(Value::as_array);
    for p in params.into_iter().flatten() {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        let text = ["valueString", "valueCode", "valueUri", "valueId"]
            .iter()
            .find_map(|k| p.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .or_else(|| {
                p.get("valueReference").and_then(|r| {
                    r.get("reference")
                        .or_else(|| r.get("display"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
            })
            .or_else(|| {
                p.get("valueCoding")
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        match (name, text) {
            ("user", Some(t)) => who.user = Some(t),
            ("login", Some(t)) => who.login = Some(t),
            ("role", Some(t)) => who.role = t.parse().ok(),
            ("practitioner", Some(t)) => who.practitioner = Some(t),
            _ => {}
        }
    }
    who
}

/// What a request that got no (whole) answer says; `elapsed` since it
/// was sent tells which limit ended it.
fn transport_error(e: reqwest::Error, opts: &http::HttpOptions, elapsed: Duration) -> ApiError {
    // The refusal is chartty's own wording, with no path or query.
    // A refused redirect is an answer, not a lost connection: with its
    // status it is neither retried nor taken for the link being down.
    if let Some(refused) = http::refused_redirect(&e) {
        return ApiError {
            status: refused.status,
            message: refused.message,
            signed_out: false,
            no_answer: false,
        };
    }
    // A certificate refused: the server is out of reach until it is
    // mended, as when it is down (the link shows offline, writes wait).
    if let Some(problem) = http::certificate_problem(&e) {
        return ApiError::no_answer(problem);
    }
    let message = if e.is_timeout() {
        timeout_message(opts, e.is_connect(), elapsed)
    } else if e.is_connect() {
        "cannot reach the server".to_string()
    } else {
        // reqwest errors may carry the URL (with a patient's name in the
        // query): keep only the kind.
        "request failed".to_string()
    };
    ApiError::no_answer(message)
}

/// Which limit ended a request, in whole seconds as the settings give them.
fn timeout_message(opts: &http::HttpOptions, connecting: bool, elapsed: Duration) -> String {
    let secs = |d: Duration| {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0}")
        } else {
            format!("{s:.1}")
        }
    };
    if connecting {
        return format!(
            "cannot reach the server: no connection within {} s",
            secs(opts.effective_connect_timeout())
        );
    }
    // The whole exchange's limit never ends one sooner than it says; the
    // read limit ends one at any time before (a body that stopped coming).
    let limit = if elapsed >= opts.timeout {
        opts.timeout
    } else {
        opts.effective_read_timeout()
    };
    format!("the server did not answer within {} s", secs(limit))
}

fn outcome_message(v: &Value) -> Option<String> {
    if chart::resource_type(Some(v)) != Some("OperationOutcome") {
        return None;
    }
    serde_json::from_value::<OperationOutcome>(v.clone())
        .ok()?
        .message()
}

/// A successful answer's JSON; errors become an [`ApiError`] carrying the
/// OperationOutcome's message where there is one.
fn answer_json(a: Answer) -> Result<Value, ApiError> {
    if (200..300).contains(&a.status) {
        return a.body.ok_or_else(|| ApiError {
            status: Some(a.status),
            message: "the server's reply is not FHIR JSON".into(),
            signed_out: false,
            no_answer: false,
        });
    }
    Err(answer_error(&a))
}

fn answer_error(a: &Answer) -> ApiError {
    let message = a
        .body
        .as_ref()
        .and_then(outcome_message)
        .unwrap_or_else(|| {
            if a.text.is_empty() {
                reqwest::StatusCode::from_u16(a.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("request failed")
                    .to_string()
            } else {
                a.text.clone()
            }
        });
    ApiError {
        status: Some(a.status),
        message,
        signed_out: false,
        no_answer: false,
    }
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v)
        .map_err(|e| ApiError::local(format!("unexpected reply from the server: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whoami_reads_parameters() {
        let v = json!({"resourceType": "Parameters", "parameter": [
            {"name": "user", "valueString": "Dr. Ada Lovelace"},
            {"name": "role", "valueCode": "attending"},
            {"name": "practitioner", "valueReference": {"reference": "Practitioner/7"}}
        ]});
        let w = parse_whoami(&v);
        assert_eq!(w.user.as_deref(), Some("Dr. Ada Lovelace"));
        assert_eq!(w.role, Some(Role::Attending));
        assert_eq!(w.practitioner.as_deref(), Some("Practitioner/7"));
    }

    #[test]
    fn only_the_configured_server_is_asked() {
        let base = "http://127.0.0.1:8080/fhir";
        let same = "http://127.0.0.1:8080/fhir/Task?page=2";
        assert_eq!(on_base(same, base).as_deref(), Some(same));
        // Named by another address, under the FHIR base: asked of ours.
        assert_eq!(
            on_base("http://localhost:8080/fhir/Patient?_count=50&page=x", base).as_deref(),
            Some("http://127.0.0.1:8080/fhir/Patient?_count=50&page=x")
        );
        assert_eq!(
            on_base(
                "https://evil.example/fhir?page=2",
                "https://portal.example/fhir"
            )
            .as_deref(),
            Some("https://portal.example/fhir?page=2")
        );
        for other in [
            "https://evil.example/steal?token=1",
            "https://evil.example/fhirish/x",
            "not a url",
        ] {
            assert_eq!(on_base(other, base), None, "{other}");
        }
    }

    /// A hostile or misconfigured server's link to another server is
    /// refused before anything (the token above all) is sent.
    #[tokio::test]
    async fn a_link_to_another_server_is_refused_without_sending_the_token() {
        let client = ApiClient::new(
            "http://127.0.0.1:9/fhir",
            Some("secret-token".into()),
            Duration::from_secs(1),
        )
        .unwrap()
        .with_request_log();
        let err = client
            .execute(ApiRequest::NextPage {
                url: "https://evil.example/steal?page=2".into(),
            })
            .await
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(
            err.contains("another server (https://evil.example)"),
            "{err}"
        );
        assert!(!err.contains("secret-token"));
        assert!(client.sent().is_empty(), "nothing was sent");
    }

    #[test]
    fn a_timeout_names_the_limit_that_ended_the_request() {
        let opts = http::HttpOptions::new(Duration::from_secs(15));
        let said = |connecting, elapsed| timeout_message(&opts, connecting, elapsed);
        assert_eq!(
            said(false, Duration::from_millis(10_003)),
            "the server did not answer within 10 s"
        );
        assert_eq!(
            said(false, Duration::from_millis(15_001)),
            "the server did not answer within 15 s"
        );
        assert_eq!(
            said(true, Duration::from_secs(5)),
            "cannot reach the server: no connection within 5 s"
        );
        let short = http::HttpOptions::new(Duration::from_millis(2500));
        assert_eq!(
            timeout_message(&short, false, Duration::from_millis(2500)),
            "the server did not answer within 2.5 s",
            "no limit beyond the whole exchange's"
        );
    }

    #[test]
    fn queue_query_names_the_role_queue() {
        let q = queue_query(Role::Nurse, 20);
        assert!(
            q.starts_with(
                "Task?performer-type=urn:chartty:role%7Cnurse,urn:chartty:role%7Creview&"
            ),
            "{q}"
        );
    }

    #[test]
    fn the_capability_statement_says_whether_lastn_is_offered() {
        let with = json!({"resourceType": "CapabilityStatement", "rest": [{"resource": [
            {"type": "Patient"},
            {"type": "Observation", "operation": [{"name": "lastn",
                "definition": "http://hl7.org/fhir/OperationDefinition/Observation-lastn"}]}
        ]}]});
        assert!(features_of(&with).lastn);
        let without = json!({"resourceType": "CapabilityStatement", "rest": [{"resource": [
            {"type": "Observation", "operation": [{"name": "stats"}]}
        ]}]});
        assert!(!features_of(&without).lastn);
        assert!(!features_of(&json!({})).lastn);
    }

    #[test]
    fn the_queue_keeps_open_tasks_only() {
        let bundle: Bundle = serde_json::from_value(json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Task", "id": "open", "status": "ready"}},
            {"resource": {"resourceType": "Task", "id": "done", "status": "completed"}},
            {"resource": {"resourceType": "Task", "id": "draft", "status": "draft"}}
        ]}))
        .unwrap();
        let ApiReply::Queue { tasks, .. } = queue_reply(&bundle) else {
            panic!("a queue reply");
        };
        let ids: Vec<_> = tasks.iter().filter_map(|t| t.id.as_deref()).collect();
        assert_eq!(ids, ["open"]);
    }

    #[test]
    fn a_page_of_patients_becomes_compact_entries() {
        let bundle: Bundle = serde_json::from_value(json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1",
                "name": [{"family": "Abbott", "given": ["Barney"]}],
                "birthDate": "1926-01-01", "deceasedDateTime": "1989-02-15T08:54:18+00:00",
                "identifier": [{"system": codes::MRN_SYSTEM, "value": "00012345"}],
                "address": [{"city": "not kept"}]}},
            {"resource": {"resourceType": "OperationOutcome"}},
            {"resource": {"resourceType": "Patient"}}
        ]}))
        .unwrap();
        let client = ApiClient::new("http://127.0.0.1:1", None, Duration::from_secs(1)).unwrap();
        let rows = client.patient_rows(&bundle);
        assert_eq!(rows.len(), 1, "entries without an id are not listed");
        assert_eq!(rows[0].id, "p1");
        assert_eq!(rows[0].name, "Abbott, Barney");
        assert_eq!(rows[0].mrn, "00012345");
        assert!(rows[0].deceased.is_some());
    }

    #[test]
    fn no_request_log_unless_asked() {
        let client = ApiClient::new("http://127.0.0.1:1", None, Duration::from_secs(1)).unwrap();
        client.record("GET", "http://127.0.0.1:1/fhir/Patient?name=nguyen");
        assert!(
            client.sent().is_empty(),
            "typed names are not kept outside tests"
        );
        let logged = client.with_request_log();
        for _ in 0..LOG_CAPACITY + 10 {
            logged.record("GET", "http://127.0.0.1:1/fhir/metadata");
        }
        assert_eq!(
            logged.sent().len(),
            LOG_CAPACITY,
            "the log does not grow forever"
        );
    }
}
