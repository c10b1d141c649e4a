//! Errors as FHIR `OperationOutcome`s with the HTTP status they travel with.

use axum::http::StatusCode;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct FhirError {
    pub status: StatusCode,
    /// `OperationOutcome.issue.code` (IssueType value set).
    pub code: &'static str,
    pub message: String,
    /// The element at fault (`OperationOutcome.issue.expression`).
    pub expression: Option<String>,
}

impl FhirError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        FhirError {
            status,
            code,
            message: message.into(),
            expression: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "required", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "deleted", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "login", message)
    }
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "conflict", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "not-supported", message)
    }
    /// The server cannot take the request now (answered with `Retry-After`).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "transient", message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "internal server error",
        )
    }

    pub fn outcome(&self) -> Value {
        let severity = if self.status.is_server_error() {
            "fatal"
        } else {
            "error"
        };
        let mut o = outcome(severity, self.code, &self.message);
        if let Some(e) = &self.expression {
            o["issue"][0]["expression"] = json!([e]);
        }
        o
    }
}

pub fn outcome(severity: &str, code: &str, message: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}]
    })
}

impl From<rusqlite::Error> for FhirError {
    fn from(err: rusqlite::Error) -> Self {
        // The SQLite message names tables and constraints, never resource content.
        tracing::error!(error = %err, "database error");
        FhirError::internal()
    }
}

impl From<anyhow::Error> for FhirError {
    fn from(err: anyhow::Error) -> Self {
        tracing::error!(error = %err, "server error");
        FhirError::internal()
    }
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for FhirError {}
