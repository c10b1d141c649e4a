//! The client's only door to the network: a reqwest client for FHIR R4 and the
//! worker that runs the TUI's commands and sends results back as events.
//!
//! Every JSON body is decoded to a `serde_json::Value`, sanitised with
//! [`crate::fhir::sanitize::sanitize_json`], and only then turned into typed
//! structs: the one place where untrusted text enters the client.

pub mod search_query;

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::fhir::codes;
use crate::fhir::model::{Bundle, OperationOutcome, Patient};
use crate::fhir::sanitize::{sanitize, sanitize_json};
use crate::roles::Role;
use crate::tui::command::{
    ApiError, ApiReply, ApiRequest, ChartData, Completed, RequestId, Section, WhoAmI,
};

/// Fields a patient list needs; keeps search pages small over a slow link.
pub const PATIENT_ELEMENTS: &str = "identifier,name,gender,birthDate";
/// Rows of each chart section asked for when a chart opens.
const CHART_LAB_COUNT: u32 = 200;
const CHART_VITAL_COUNT: u32 = 100;
const CHART_NOTE_COUNT: u32 = 50;
const CHART_ENCOUNTER_COUNT: u32 = 10;

/// One request as it went out (method and path with query, no body, no
/// headers): kept in memory so tests can check what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: &'static str,
    pub path_and_query: String,
}

/// A FHIR R4 client bound to one server and one bearer token.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    sent: Arc<Mutex<Vec<SentRequest>>>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of debug output.
        f.debug_struct("ApiClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // reqwest is built without a default provider; a second install
        // (another part of the process did it) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl ApiClient {
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> anyhow::Result<Self> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .gzip(true)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("chartty/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            sent: Arc::default(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Every request sent so far, oldest first.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn url(&self, relative: &str) -> String {
        format!("{}/{}", self.base, relative.trim_start_matches('/'))
    }

    fn record(&self, method: &'static str, url: &str) {
        let path_and_query = match url::Url::parse(url) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{}", u.path(), q),
                None => u.path().to_string(),
            },
            Err(_) => url.to_string(),
        };
        if let Ok(mut s) = self.sent.lock() {
            s.push(SentRequest {
                method,
                path_and_query,
            });
        }
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = req.header(reqwest::header::ACCEPT, "application/fhir+json");
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET an absolute URL and decode the sanitised JSON body.
    async fn get_json(&self, url: &str) -> Result<Value, ApiError> {
        self.record("GET", url);
        let resp = self
            .authorize(self.http.get(url))
            .send()
            .await
            .map_err(transport_error)?;
        read_body(resp).await
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<Value, ApiError> {
        self.record("POST", url);
        let resp = self
            .authorize(self.http.post(url))
            .header(reqwest::header::CONTENT_TYPE, "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .map_err(transport_error)?;
        read_body(resp).await
    }

    async fn get_bundle(&self, url: &str) -> Result<Bundle, ApiError> {
        decode(self.get_json(url).await?)
    }

    /// Run one request to completion.
    pub async fn execute(&self, request: ApiRequest) -> Result<ApiReply, ApiError> {
        match request {
            ApiRequest::WhoAmI => self.whoami().await.map(ApiReply::WhoAmI),
            ApiRequest::PatientPage { count } => {
                let url = self.url(&format!(
                    "Patient?_count={count}&_elements={PATIENT_ELEMENTS}"
                ));
                self.patients(&url).await
            }
            ApiRequest::SearchPatients { query, count } => {
                let params = search_query::server_params(&query);
                if params.is_empty() {
                    return Ok(ApiReply::Patients {
                        patients: Vec::new(),
                        next: None,
                    });
                }
                let mut url = url::Url::parse(&self.url("Patient")).map_err(|e| ApiError {
                    status: None,
                    message: format!("bad server address: {e}"),
                })?;
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
                    .any(|e| resource_type(e.resource.as_ref()) == Some("Task"))
                {
                    Ok(queue_reply(&bundle))
                } else {
                    Ok(ApiReply::Patients {
                        patients: bundle.resources("Patient"),
                        next: bundle.next_url().map(str::to_string),
                    })
                }
            }
            ApiRequest::OpenChart { patient_id } => self
                .open_chart(&patient_id)
                .await
                .map(|c| ApiReply::Chart(Box::new(c))),
            ApiRequest::RoleQueue { role, count } => {
                let bundle = self
                    .get_bundle(&self.url(&queue_query(role, count)))
                    .await?;
                Ok(queue_reply(&bundle))
            }
        }
    }

    async fn patients(&self, url: &str) -> Result<ApiReply, ApiError> {
        let bundle = self.get_bundle(url).await?;
        Ok(ApiReply::Patients {
            patients: bundle.resources("Patient"),
            next: bundle.next_url().map(str::to_string),
        })
    }

    async fn whoami(&self) -> Result<Option<WhoAmI>, ApiError> {
        match self.get_json(&self.url("$whoami")).await {
            Ok(v) => Ok(Some(parse_whoami(&v))),
            // A plain FHIR server: no such operation.
            Err(e) if matches!(e.status, Some(400 | 404 | 405 | 501)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One `POST [base]` batch of every search the chart needs; a server
    /// without batch gets the same searches in parallel instead (still one
    /// round trip of latency, never a chain).
    async fn open_chart(&self, patient_id: &str) -> Result<ChartData, ApiError> {
        let urls = chart_queries(patient_id);
        let body = json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": urls.iter().map(|u| json!({"request": {"method": "GET", "url": u}})).collect::<Vec<_>>(),
        });
        let parts: Vec<Result<Value, ApiError>> = match self.post_json(&self.base, &body).await {
            Ok(v) if v.get("type").and_then(Value::as_str) == Some("batch-response") => {
                let bundle: Bundle = decode(v)?;
                let mut parts: Vec<Result<Value, ApiError>> = bundle
                    .entry
                    .into_iter()
                    .map(|e| {
                        let status = e.response.as_ref().and_then(|r| r.status_code());
                        match (status, e.resource) {
                            (Some(s), Some(r)) if (200..300).contains(&s) => Ok(r),
                            (None, Some(r))
                                if resource_type(Some(&r)) != Some("OperationOutcome") =>
                            {
                                Ok(r)
                            }
                            (s, r) => Err(ApiError {
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
                parts.resize_with(urls.len(), || {
                    Err(ApiError {
                        status: None,
                        message: "missing from the server's reply".into(),
                    })
                });
                parts
            }
            Ok(_)
            | Err(ApiError {
                status: Some(400 | 404 | 405 | 501),
                ..
            }) => self.parallel(&urls).await,
            Err(e) => return Err(e),
        };
        chart_from_parts(parts)
    }

    async fn parallel(&self, urls: &[String]) -> Vec<Result<Value, ApiError>> {
        let mut set = tokio::task::JoinSet::new();
        for (i, u) in urls.iter().enumerate() {
            let this = self.clone();
            let url = self.url(u);
            set.spawn(async move { (i, this.get_json(&url).await) });
        }
        let mut out: Vec<Result<Value, ApiError>> = (0..urls.len())
            .map(|_| {
                Err(ApiError {
                    status: None,
                    message: "request did not finish".into(),
                })
            })
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, r)) = joined {
                out[i] = r;
            }
        }
        out
    }
}

fn resource_type(v: Option<&Value>) -> Option<&str> {
    v?.get("resourceType")?.as_str()
}

/// The searches of a chart, in the order [`chart_from_parts`] reads them.
/// References are typed (`Patient/<id>`).
pub fn chart_queries(patient_id: &str) -> Vec<String> {
    let id: String = url::form_urlencoded::byte_serialize(patient_id.as_bytes()).collect();
    let p = format!("Patient/{id}");
    vec![
        p.clone(),
        format!("AllergyIntolerance?patient={p}"),
        format!("Condition?patient={p}&clinical-status=active"),
        format!("MedicationRequest?patient={p}&status=active"),
        format!(
            "Observation?patient={p}&category={}&_sort=-date&_count={CHART_VITAL_COUNT}",
            codes::CATEGORY_VITAL_SIGNS
        ),
        format!(
            "Observation?patient={p}&category={}&_sort=-date&_count={CHART_LAB_COUNT}",
            codes::CATEGORY_LABORATORY
        ),
        format!("Encounter?patient={p}&_sort=-date&_count={CHART_ENCOUNTER_COUNT}"),
        format!("DocumentReference?patient={p}&_sort=-date&_count={CHART_NOTE_COUNT}"),
        format!("Task?patient={p}&_count=50"),
    ]
}

fn section<T: DeserializeOwned>(part: Result<Value, ApiError>, kind: &str) -> Section<T> {
    match part {
        Ok(v) => {
            let bundle: Bundle = decode(v).map_err(|e| e.to_string())?;
            Ok(bundle.resources(kind))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn chart_from_parts(parts: Vec<Result<Value, ApiError>>) -> Result<ChartData, ApiError> {
    let mut it = parts.into_iter();
    let mut next = || {
        it.next().unwrap_or(Err(ApiError {
            status: None,
            message: "missing".into(),
        }))
    };
    let patient: Patient = decode(next()?)?;
    Ok(ChartData {
        patient,
        allergies: section(next(), "AllergyIntolerance"),
        conditions: section(next(), "Condition"),
        medications: section(next(), "MedicationRequest"),
        vitals: section(next(), "Observation"),
        labs: section(next(), "Observation"),
        encounters: section(next(), "Encounter"),
        notes: section(next(), "DocumentReference"),
        tasks: section(next(), "Task"),
    })
}

fn queue_query(role: Role, count: u32) -> String {
    format!(
        "Task?performer-type={}%7C{}&status=requested,received,accepted,ready,in-progress,on-hold&_count={count}&_include=Task:patient",
        codes::ROLE_SYSTEM,
        role.code()
    )
}

fn queue_reply(bundle: &Bundle) -> ApiReply {
    ApiReply::Queue {
        tasks: bundle.resources("Task"),
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
            ("role", Some(t)) => who.role = t.parse().ok(),
            ("practitioner", Some(t)) => who.practitioner = Some(t),
            _ => {}
        }
    }
    who
}

fn transport_error(e: reqwest::Error) -> ApiError {
    let message = if e.is_timeout() {
        "the server did not answer in time".to_string()
    } else if e.is_connect() {
        "cannot reach the server".to_string()
    } else {
        // reqwest errors may carry the URL (with a patient's name in the
        // query): keep only the kind.
        "request failed".to_string()
    };
    ApiError {
        status: None,
        message,
    }
}

fn outcome_message(v: &Value) -> Option<String> {
    if resource_type(Some(v)) != Some("OperationOutcome") {
        return None;
    }
    serde_json::from_value::<OperationOutcome>(v.clone())
        .ok()?
        .message()
}

/// Status and body of a response; errors become an [`ApiError`] carrying the
/// OperationOutcome's message where there is one.
async fn read_body(resp: reqwest::Response) -> Result<Value, ApiError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(transport_error)?;
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok().map(|mut v| {
        sanitize_json(&mut v);
        v
    });
    if status.is_success() {
        return parsed.ok_or_else(|| ApiError {
            status: Some(status.as_u16()),
            message: "the server's reply is not FHIR JSON".into(),
        });
    }
    let message = parsed
        .as_ref()
        .and_then(outcome_message)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&bytes);
            let line = text.lines().next().unwrap_or("").trim();
            let line: String = line.chars().take(120).collect();
            if line.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("request failed")
                    .to_string()
            } else {
                sanitize(&line).into_owned()
            }
        });
    Err(ApiError {
        status: Some(status.as_u16()),
        message,
    })
}

fn decode<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError {
        status: None,
        message: format!("unexpected reply from the server: {e}"),
    })
}

/// Runs requests concurrently on a tokio runtime and hands back results.
pub struct Worker {
    client: ApiClient,
    handle: tokio::runtime::Handle,
    tx: mpsc::UnboundedSender<Completed>,
}

impl Worker {
    /// A worker and the receiving end of its results.
    pub fn new(
        client: ApiClient,
        handle: tokio::runtime::Handle,
    ) -> (Worker, mpsc::UnboundedReceiver<Completed>) {
        let (tx, rx) = mpsc::unbounded_channel();
        ({ Worker { client, handle, tx } }, rx)
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    pub fn submit(&self, id: RequestId, request: ApiRequest) {
        let client = self.client.clone();
        let tx = self.tx.clone();
        self.handle.spawn(async move {
            let kind = request_kind(&request);
            let started = Instant::now();
            let result = client.execute(request).await;
            let latency = started.elapsed();
            match &result {
                Ok(_) => tracing::debug!(id, kind, ms = latency.as_millis() as u64, "ok"),
                Err(e) => tracing::warn!(id, kind, status = ?e.status, "request failed"),
            }
            let _ = tx.send(Completed {
                id,
                result,
                latency,
            });
        });
    }
}

/// A label for logs that carries no patient data.
fn request_kind(r: &ApiRequest) -> &'static str {
    match r {
        ApiRequest::WhoAmI => "whoami",
        ApiRequest::PatientPage { .. } => "patient-page",
        ApiRequest::SearchPatients { .. } => "patient-search",
        ApiRequest::NextPage { .. } => "next-page",
        ApiRequest::OpenChart { .. } => "open-chart",
        ApiRequest::RoleQueue { .. } => "role-queue",
    }
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
    fn chart_queries_use_typed_references() {
        let q = chart_queries("abc");
        assert_eq!(q[0], "Patient/abc");
        assert!(q[1..].iter().all(|u| u.contains("patient=Patient/abc")));
    }

    #[test]
    fn queue_query_names_the_role_queue() {
        let q = queue_query(Role::Nurse, 20);
        assert!(q.starts_with("Task?performer-type=urn:chartty:role%7Cnurse&"));
    }
}
