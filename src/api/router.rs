//! What `chartty route` and `chartty stats` ask of a FHIR server, with
//! standard interactions only (search, read, conditional create), so the
//! triage layer runs beside any R4 server.

use reqwest::Method;
use serde_json::Value;

use crate::api::contract::ApiError;
use crate::api::{ApiClient, answer_error, answer_json};
use crate::triage::Facts;
use crate::triage::stats::QueueStats;

/// Pages followed for one poll; a backlog larger than this is read on the
/// next poll (the newest time seen only moves past what was read).
const MAX_PAGES: usize = 50;

/// The resources of a search Bundle (JSON) and its `next` link.
fn entries(bundle: &Value) -> (Vec<Value>, Option<String>) {
    let resources = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| {
            // `_include`d resources are not matches.
            e.pointer("/search/mode").and_then(Value::as_str) != Some("include")
        })
        .filter_map(|e| e.get("resource").cloned())
        .collect();
    let next = bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))
        .and_then(|l| l.get("url").and_then(Value::as_str))
        .map(str::to_string);
    (resources, next)
}

/// An id as R4 defines it (`[A-Za-z0-9\-\.]{1,64}`): anything else from a
/// message is not put into a URL.
fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// What a conditional create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Made now (201).
    Now,
    /// Already there (200): another router, or an earlier try, made it.
    Already,
}

impl ApiClient {
    /// Every resource of a search, following `next` links (at most
    /// [`MAX_PAGES`] pages).
    async fn search_all(&self, relative: &str) -> Result<Vec<Value>, ApiError> {
        let mut url = self.url(relative);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let (found, next) = entries(&self.get_json(&url).await?);
            out.extend(found);
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(out)
    }

    /// Open messages last updated at or after `since` (an instant), oldest
    /// first. `ge`, not `gt`: two messages may share a timestamp, and the
    /// conditional create makes seeing one twice harmless.
    pub async fn open_messages_since(&self, since: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let mut q = String::from("Communication?status=in-progress&_sort=_lastUpdated&_count=100");
        if let Some(t) = since {
            q.push_str("&_lastUpdated=ge");
            q.push_str(&url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
        }
        self.search_all(&q).await
    }

    /// The patient's birth date, active problems and medications.
    pub async fn patient_facts(&self, patient: &str) -> Result<Facts, ApiError> {
        let Some(id) = patient.strip_prefix("Patient/").filter(|id| is_fhir_id(id)) else {
            return Ok(Facts::default());
        };
        let found = match self.get_json(&self.url(&format!("Patient/{id}"))).await {
            Ok(p) => Some(p),
            Err(e) if e.status == Some(404) || e.status == Some(410) => None,
            Err(e) => return Err(e),
        };
        let conditions = self
            .search_all(&format!(
                "Condition?patient=Patient/{id}&clinical-status=active&_count=100"
            ))
            .await?;
        let medications = self
            .search_all(&format!(
                "MedicationRequest?patient=Patient/{id}&status=active&_count=100"
            ))
            .await?;
        Ok(crate::triage::facts_from(
            found.as_ref(),
            &conditions,
            &medications,
        ))
    }

    /// Create `resource` unless one matching `condition` (a search, e.g.
    /// `identifier=system|value`) exists: `If-None-Exist`, safe to repeat.
    pub async fn create_unless_exists(
        &self,
        resource: &Value,
        condition: &str,
    ) -> Result<Created, ApiError> {
        let ty = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .filter(|t| crate::api::chart::is_type_name(t))
            .ok_or_else(|| ApiError::local("a resource to create needs its resourceType"))?;
        let headers = [
            ("If-None-Exist", condition.to_string()),
            ("Prefer", "return=minimal".to_string()),
        ];
        let answer = self
            .exchange_idempotent(Method::POST, &self.url(ty), Some(resource), &headers)
            .await?;
        match answer.status {
            201 => Ok(Created::Now),
            200 => Ok(Created::Already),
            _ => Err(answer_error(&answer)),
        }
    }

    /// `GET Task/$queue-stats?period=…` (chartty's portal; see docs/triage.md).
    pub async fn queue_stats(&self, period: Option<&str>) -> Result<QueueStats, ApiError> {
        let mut q = String::from("Task/$queue-stats");
        if let Some(p) = period {
            q.push_str("?period=");
            q.push_str(&url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>());
        }
        let answer = self
            .exchange_idempotent(Method::GET, &self.url(&q), None, &[])
            .await?;
        let v = answer_json(answer)?;
        QueueStats::from_parameters(&v).map_err(ApiError::local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bundle_gives_its_matches_and_next_link() {
        let b = json!({"entry": [
            {"resource": {"id": "1"}, "search": {"mode": "match"}},
            {"resource": {"id": "p"}, "search": {"mode": "include"}},
            {"resource": {"id": "2"}}
        ], "link": [{"relation": "self", "url": "a"}, {"relation": "next", "url": "b"}]});
        let (found, next) = entries(&b);
        assert_eq!(found.len(), 2);
        assert_eq!(next.as_deref(), Some("b"));
        assert_eq!(
            entries(&json!({"resourceType": "Bundle"})),
            (Vec::new(), None)
        );
    }
}
