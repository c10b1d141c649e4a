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
use crate::fhir::model::{Bundle, Condition, OperationOutcome, Patient};
use crate::fhir::sanitize::{sanitize, sanitize_json};
use crate::roles::Role;
use crate::tui::command::{
    ApiError, ApiReply, ApiRequest, ChartData, Completed, RequestId, Section, WhoAmI,
};

/// Fields a patient list needs; keeps search pages small over a slow link.
pub const PATIENT_ELEMENTS: &str = "identifier,name,gender,birthDate,deceased";
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
            ApiRequest::Probe => match self.get_json(&self.url("metadata")).await {
                // Any HTTP answer means the server is reachable again.
                Ok(_)
                | Err(ApiError {
                    status: Some(_), ..
                }) => Ok(ApiReply::Reachable),
                Err(e) => Err(e),
            },
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
        chart_from_parts(patient_id, parts)
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

/// Whether a reference string points at `Patient/<id>`, relative or absolute.
pub fn refers_to_patient(reference: &str, patient_id: &str) -> bool {
    let Some(id) = reference.strip_prefix("Patient/").or_else(|| {
        reference
            .rfind("/Patient/")
            .map(|i| &reference[i + "/Patient/".len()..])
    }) else {
        return false;
    };
    // An absolute URL must really end in `/Patient/<id>`, and a relative one
    // must be exactly `Patient/<id>`.
    id == patient_id && (reference.starts_with("Patient/") || reference.contains("://"))
}

/// Whether a resource's `patient`, `subject` or `for` reference is the patient.
pub fn belongs_to_patient(resource: &Value, patient_id: &str) -> bool {
    ["patient", "subject", "for"].iter().any(|field| {
        resource
            .get(*field)
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .is_some_and(|r| refers_to_patient(r, patient_id))
    })
}

/// One section of a chart: resources of `kind` in the reply that belong to
/// the patient; the second value counts those that belonged to someone else
/// (a server that ignored `patient=`).
fn section<T: DeserializeOwned>(
    part: Result<Value, ApiError>,
    kind: &str,
    patient_id: &str,
) -> (Section<T>, usize) {
    let mut bundle: Bundle = match part.and_then(decode) {
        Ok(b) => b,
        Err(e) => return (Err(e.to_string()), 0),
    };
    let before = bundle.entry.len();
    bundle.entry.retain(|e| match e.resource.as_ref() {
        Some(r) if resource_type(Some(r)) == Some(kind) => belongs_to_patient(r, patient_id),
        // `_include`d resources and outcomes are not the patient's data.
        _ => true,
    });
    (Ok(bundle.resources(kind)), before - bundle.entry.len())
}

fn when_key(s: Option<&str>) -> Option<chrono::DateTime<chrono::Utc>> {
    s.and_then(crate::tui::panes::parse_fhir_date)
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

fn condition_is_active(c: &Condition) -> bool {
    c.clinical_status
        .as_ref()
        .is_some_and(|s| s.has_code("active") || s.has_code("recurrence") || s.has_code("relapse"))
}

/// Apply on the client what the chart's searches asked the server for
/// (status and category filters, newest first), since a server may ignore
/// any search parameter or `_sort`.
pub fn enforce_chart_filters(chart: &mut ChartData) {
    if let Ok(c) = &mut chart.conditions {
        c.retain(condition_is_active);
    }
    if let Ok(m) = &mut chart.medications {
        m.retain(|m| m.status.as_deref() == Some("active"));
    }
    if let Ok(v) = &mut chart.vitals {
        v.retain(|o| o.is_category(codes::CATEGORY_VITAL_SIGNS));
        v.sort_by_key(|o| std::cmp::Reverse(when_key(o.when())));
    }
    if let Ok(l) = &mut chart.labs {
        l.retain(|o| o.is_category(codes::CATEGORY_LABORATORY));
        l.sort_by_key(|o| std::cmp::Reverse(when_key(o.when())));
    }
    if let Ok(e) = &mut chart.encounters {
        e.sort_by_key(|e| {
            std::cmp::Reverse(when_key(e.period.as_ref().and_then(|p| p.start.as_deref())))
        });
    }
    if let Ok(n) = &mut chart.notes {
        n.sort_by_key(|n| std::cmp::Reverse(when_key(n.date.as_deref())));
    }
    if let Ok(t) = &mut chart.tasks {
        t.sort_by_key(|t| std::cmp::Reverse(when_key(t.authored_on.as_deref())));
    }
}

/// The chart from the replies to [`chart_queries`], in that order: only the
/// open patient's resources, filtered and sorted on the client.
pub fn chart_from_parts(
    patient_id: &str,
    parts: Vec<Result<Value, ApiError>>,
) -> Result<ChartData, ApiError> {
    let mut it = parts.into_iter();
    let mut next = || {
        it.next().unwrap_or(Err(ApiError {
            status: None,
            message: "missing".into(),
        }))
    };
    let patient: Patient = decode(next()?)?;
    if patient.id.as_deref() != Some(patient_id) {
        return Err(ApiError {
            status: None,
            message: "the server returned a different patient".into(),
        });
    }
    let mut dropped = 0;
    macro_rules! take {
        ($kind:literal) => {{
            let (s, n) = section(next(), $kind, patient_id);
            dropped += n;
            s
        }};
    }
    let allergies = take!("AllergyIntolerance");
    let conditions = take!("Condition");
    let medications = take!("MedicationRequest");
    let vitals = take!("Observation");
    let labs = take!("Observation");
    let encounters = take!("Encounter");
    let notes = take!("DocumentReference");
    let tasks = take!("Task");
    let mut chart = ChartData {
        patient,
        allergies,
        conditions,
        medications,
        vitals,
        labs,
        encounters,
        notes,
        tasks,
        other_patients_ignored: dropped,
    };
    enforce_chart_filters(&mut chart);
    Ok(chart)
}

fn queue_query(role: Role, count: u32) -> String {
    format!(
        "Task?performer-type={}%7C{}&status={}&_count={count}&_include=Task:patient",
        codes::ROLE_SYSTEM,
        role.code(),
        OPEN_TASK_STATUSES.join(",")
    )
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
        ApiRequest::Probe => "probe",
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

    fn searchset(resources: Vec<Value>) -> Result<Value, ApiError> {
        Ok(json!({
            "resourceType": "Bundle", "type": "searchset",
            "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
        }))
    }

    fn vital(id: &str, patient: &str, category: &str, when: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "subject": {"reference": patient},
            "category": [{"coding": [{"system": codes::OBSERVATION_CATEGORY, "code": category}]}],
            "code": {"text": id}, "effectiveDateTime": when,
            "valueQuantity": {"value": 1.0}})
    }

    /// What a server that ignores every search parameter answers to each of
    /// the chart's searches: everything of that type, both patients mixed.
    fn unfiltered_replies() -> Vec<Result<Value, ApiError>> {
        let allergies = vec![
            json!({"resourceType": "AllergyIntolerance", "id": "a1",
                "patient": {"reference": "Patient/p1"}, "code": {"text": "Penicillin"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a2",
                "patient": {"reference": "Patient/p2"}, "code": {"text": "Peanut"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a3",
                "patient": {"reference": "http://other.example/fhir/Patient/p1"},
                "code": {"text": "Latex"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a4",
                "patient": {"reference": "http://other.example/fhir/Patient/p11"},
                "code": {"text": "Shellfish"}}),
        ];
        let conditions = vec![
            json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "Asthma"}}),
            json!({"resourceType": "Condition", "id": "c2", "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "resolved"}]}, "code": {"text": "Otitis"}}),
            json!({"resourceType": "Condition", "id": "c3", "subject": {"reference": "Patient/p2"},
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "Diabetes"}}),
        ];
        let meds = vec![
            json!({"resourceType": "MedicationRequest", "id": "m1", "status": "active",
                "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "MedicationRequest", "id": "m2", "status": "stopped",
                "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "MedicationRequest", "id": "m3", "status": "active",
                "subject": {"reference": "Patient/p2"}}),
        ];
        let observations = vec![
            vital("v-old", "Patient/p1", "vital-signs", "2026-01-01T08:00:00Z"),
            vital("lab", "Patient/p1", "laboratory", "2026-06-01T08:00:00Z"),
            vital("v-new", "Patient/p1", "vital-signs", "2026-11-01T08:00:00Z"),
            vital(
                "v-other",
                "Patient/p2",
                "vital-signs",
                "2026-11-20T08:00:00Z",
            ),
        ];
        let encounters = vec![
            json!({"resourceType": "Encounter", "id": "e-old", "subject": {"reference": "Patient/p1"},
                "period": {"start": "2020-01-01"}}),
            json!({"resourceType": "Encounter", "id": "e-new", "subject": {"reference": "Patient/p1"},
                "period": {"start": "2026-02-01T10:00:00+01:00"}}),
            json!({"resourceType": "Encounter", "id": "e-other", "subject": {"reference": "Patient/p2"}}),
        ];
        let notes = vec![
            json!({"resourceType": "DocumentReference", "id": "n-old",
                "subject": {"reference": "Patient/p1"}, "date": "2025-01-01T00:00:00Z"}),
            json!({"resourceType": "DocumentReference", "id": "n-new",
                "subject": {"reference": "Patient/p1"}, "date": "2026-01-01T00:00:00Z"}),
            json!({"resourceType": "DocumentReference", "id": "n-none"}),
        ];
        let tasks = vec![
            json!({"resourceType": "Task", "id": "t1", "status": "requested",
                "for": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Task", "id": "t2", "status": "requested",
                "for": {"reference": "Patient/p2"}}),
        ];
        vec![
            Ok(json!({"resourceType": "Patient", "id": "p1"})),
            searchset(allergies),
            searchset(conditions),
            searchset(meds),
            searchset(observations.clone()),
            searchset(observations),
            searchset(encounters),
            searchset(notes),
            searchset(tasks),
        ]
    }

    fn ids<T>(section: &Section<T>, id: impl Fn(&T) -> Option<&str>) -> Vec<String> {
        section
            .as_ref()
            .map(|v| v.iter().filter_map(|x| id(x).map(str::to_string)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn chart_keeps_only_the_open_patients_resources() {
        let chart = chart_from_parts("p1", unfiltered_replies()).unwrap();
        assert_eq!(
            ids(&chart.allergies, |a| a.id.as_deref()),
            ["a1", "a3"],
            "relative and absolute references to the patient are kept, others dropped"
        );
        assert_eq!(ids(&chart.tasks, |t| t.id.as_deref()), ["t1"]);
        assert_eq!(ids(&chart.notes, |n| n.id.as_deref()), ["n-new", "n-old"]);
        // a2, a4, c3, m3, v-other twice, e-other, n-none, t2.
        assert_eq!(chart.other_patients_ignored, 9);
    }

    #[test]
    fn a_reply_for_another_patient_is_refused() {
        let mut parts = unfiltered_replies();
        parts[0] = Ok(json!({"resourceType": "Patient", "id": "p2"}));
        assert!(chart_from_parts("p1", parts).is_err());
    }

    #[test]
    fn patient_references_match_exactly() {
        assert!(refers_to_patient("Patient/p1", "p1"));
        assert!(refers_to_patient("https://x.example/fhir/Patient/p1", "p1"));
        assert!(!refers_to_patient("Patient/p11", "p1"));
        assert!(!refers_to_patient("Group/p1", "p1"));
        assert!(!refers_to_patient("Other/Patient/p1", "p1"));
        assert!(!refers_to_patient("p1", "p1"));
    }

    #[test]
    fn filters_and_sort_are_applied_on_the_client() {
        let chart = chart_from_parts("p1", unfiltered_replies()).unwrap();
        assert_eq!(ids(&chart.conditions, |c| c.id.as_deref()), ["c1"]);
        assert_eq!(ids(&chart.medications, |m| m.id.as_deref()), ["m1"]);
        assert_eq!(
            ids(&chart.vitals, |o| o.id.as_deref()),
            ["v-new", "v-old"],
            "a lab is never listed under vitals; newest first"
        );
        assert_eq!(ids(&chart.labs, |o| o.id.as_deref()), ["lab"]);
        assert_eq!(
            ids(&chart.encounters, |e| e.id.as_deref()),
            ["e-new", "e-old"]
        );
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
}
