//! What a request asks for: the route of its path, and one interaction
//! (from the HTTP request itself, or from a Bundle entry).

use axum::http::Method;
use serde_json::Value;

use super::super::outcome::FhirError;
use super::super::params;
use super::super::search;

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
    /// A search in a patient's compartment: `Patient/<id>/<Type>`.
    Compartment(String, String),
}

/// Type-level operations: (type, name); all are searches, invoked with GET.
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    (
        "Observation",
        "lastn",
        "http://hl7.org/fhir/OperationDefinition/Observation-lastn",
    ),
    // chartty's own: queue figures over a period (docs/triage.md).
    ("Task", "queue-stats", "urn:chartty:operation:queue-stats"),
];

impl Route {
    pub fn parse(segments: &[&str]) -> Result<Route, FhirError> {
        // Any well-formed type name routes, so that imported resources of
        // types without search support can still be read back; searching or
        // writing an unsupported type is refused in the interaction.
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
            ["Patient", id, t] => Route::Compartment(id.to_string(), known(t)?),
            [t, id, "_history", v] => Route::Version(known(t)?, id.to_string(), v.to_string()),
            _ => return Err(FhirError::not_found("no such endpoint")),
        })
    }

    pub fn allows(&self, m: &Method) -> bool {
        match self {
            Route::Metadata
            | Route::WhoAmI
            | Route::History(..)
            | Route::Version(..)
            | Route::Operation(..)
            | Route::Compartment(..) => m == Method::GET,
            Route::Base | Route::Search(_) => m == Method::POST,
            Route::Type(_) => m == Method::GET || m == Method::POST,
            Route::Instance(..) => m == Method::GET || m == Method::PUT || m == Method::DELETE,
        }
    }

    pub fn writes(&self, m: &Method) -> bool {
        !matches!(self, Route::Search(_))
            && (m == Method::POST || m == Method::PUT || m == Method::DELETE)
    }

    pub fn ty(&self) -> Option<&str> {
        match self {
            Route::Type(t)
            | Route::Search(t)
            | Route::Operation(t, _)
            | Route::Compartment(_, t) => Some(t),
            Route::Instance(t, _) | Route::History(t, _) | Route::Version(t, _, _) => Some(t),
            _ => None,
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Route::Instance(_, id) | Route::History(_, id) | Route::Version(_, id, _) => Some(id),
            _ => None,
        }
    }
}

impl Req {
    /// The audit's name for what this asks.
    pub fn action(&self) -> &'static str {
        match (&self.route, &self.method) {
            (Route::Type(_), &Method::GET) | (Route::Search(_) | Route::Compartment(..), _) => {
                "search"
            }
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

    /// The search parameters as the audit keeps them.
    pub fn query_string(&self) -> Option<String> {
        if self.query.is_empty() {
            return None;
        }
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            ser.append_pair(k, v);
        }
        Some(ser.finish())
    }

    /// The patients the request names (a search parameter, the resource
    /// itself, or the subject of the resource sent): recorded even when
    /// the request is refused.
    pub fn named_patients(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Route::Instance(ty, id) | Route::Version(ty, id, _) | Route::History(ty, id) =
            &self.route
            && ty == "Patient"
            && params::is_valid_id(id)
        {
            out.push(format!("Patient/{id}"));
        }
        if let Route::Compartment(id, _) = &self.route
            && params::is_valid_id(id)
        {
            out.push(format!("Patient/{id}"));
        }
        for (k, v) in &self.query {
            let base = k.split(':').next().unwrap_or(k);
            let patient_param = matches!(base, "patient" | "subject" | "for" | "beneficiary")
                || (base == "_id" && self.route.ty() == Some("Patient"));
            if !patient_param {
                continue;
            }
            for v in v.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                let r = if v.contains('/') {
                    params::normalize_reference(v)
                } else if base == "patient" || base == "_id" || k.ends_with(":Patient") {
                    params::is_valid_id(v).then(|| format!("Patient/{v}"))
                } else {
                    None
                };
                if let Some(r) = r.filter(|r| r.starts_with("Patient/"))
                    && !out.contains(&r)
                {
                    out.push(r);
                }
            }
        }
        if let (Some(body), Some(ty)) = (&self.body, self.route.ty()) {
            let id = body.get("id").and_then(Value::as_str).unwrap_or("");
            for p in super::super::access::patients_of(ty, id, body) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }
}

pub fn parse_version(etag: &str) -> Option<i64> {
    let t = etag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').parse().ok()
}

/// Turns a Bundle entry's `request` into an interaction.
pub fn entry_request(entry: &Value, base: &str) -> Result<Req, FhirError> {
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
    let text = |k: &str| -> Result<Option<String>, FhirError> {
        match request.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_ascii() => Ok(Some(s.clone())),
            Some(_) => Err(FhirError::bad_request(format!(
                "entry request.{k} must be ASCII text"
            ))),
        }
    };
    Ok(Req {
        method,
        route,
        query: search::parse_query(qs),
        if_match: text("ifMatch")?,
        if_none_exist: text("ifNoneExist")?,
        body,
        strict: false,
    })
}
