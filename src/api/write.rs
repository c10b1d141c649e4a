//! The one write path. Every change the client makes goes through
//! [`ApiClient::write`]:
//! - a create carries an identifier the client made and is sent as a
//!   conditional create on it (`If-None-Exist`), so trying it again after a
//!   lost reply finds the first copy instead of making a second;
//! - an update carries the version it was made from (`If-Match`), so a
//!   stale writer gets 412 instead of overwriting someone else's change; when
//!   a retry or a replay after a lost reply is refused (412, or a signed
//!   note's guard) because the first try went through, the server's copy is
//!   compared with ours and the write counts as done;
//! - the reply is the resource as stored and its new version.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::contract::{ApiError, ApiReply, Write};
use crate::api::{Answer, ApiClient, answer_error, retry};
use crate::fhir::codes;

/// `W/"3"` or `"3"` → `3`.
pub fn version_of_etag(etag: &str) -> Option<String> {
    let v = etag.trim().trim_start_matches("W/").trim_matches('"');
    (!v.is_empty()).then(|| v.to_string())
}

fn version_of(resource: &Value) -> Option<String> {
    resource
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The content of a resource without what the server keeps (`meta`).
fn content(resource: &Value) -> Value {
    let mut v = resource.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("meta");
        // Set by a server from who wrote and when (chartty's portal does):
        // not part of what the client sent.
        for server_set in ["author", "authenticator", "date"] {
            if resource.get("resourceType").and_then(Value::as_str) == Some("DocumentReference") {
                o.remove(server_set);
            }
        }
    }
    v
}

/// Whether `resource` holds the identifier the client made.
fn carries_client_id(resource: &Value, client_id: &str) -> bool {
    codes::client_id_in(resource.get("identifier")) == Some(client_id)
}

/// Add `identifier = {system: CLIENT_ID_SYSTEM, value: client_id}` unless present.
fn with_client_id(mut resource: Value, client_id: &str) -> Value {
    let id = json!({"system": codes::CLIENT_ID_SYSTEM, "value": client_id});
    if let Some(o) = resource.as_object_mut() {
        let list = o.entry("identifier").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([list.clone()]);
        }
        if let Some(items) = list.as_array_mut()
            && !items.contains(&id)
        {
            items.push(id);
        }
    }
    resource
}

fn type_and_id(resource: &Value) -> Result<(String, Option<String>), ApiError> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|t| crate::api::chart::is_type_name(t))
        .ok_or_else(|| ApiError::local("a resource to write needs its resourceType"))?;
    let id = resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((ty.to_string(), id))
}

impl ApiClient {
    /// Send one write; see the module comment.
    pub async fn write(&self, write: Write) -> Result<ApiReply, ApiError> {
        match write {
            Write::Create {
                resource,
                client_id,
                conditional,
                replace_existing,
            } => {
                self.create(resource, &client_id, conditional, replace_existing)
                    .await
            }
            Write::Update { resource, version } => self.update(resource, &version).await,
        }
    }

    async fn create(
        &self,
        resource: Value,
        client_id: &str,
        conditional: bool,
        replace_existing: bool,
    ) -> Result<ApiReply, ApiError> {
        let (ty, _) = type_and_id(&resource)?;
        let resource = with_client_id(resource, client_id);
        let condition = format!("identifier={}|{client_id}", codes::CLIENT_ID_SYSTEM);
        let url = self.url(&ty);
        let found = if conditional {
            let headers = [
                ("If-None-Exist", condition),
                ("Prefer", "return=representation".to_string()),
            ];
            // Conditional on the client's id: repeating it is safe.
            let answer = self
                .exchange_idempotent(Method::POST, &url, Some(&resource), &headers)
                .await?;
            // 201: made now. 200: an earlier try made it.
            let made = answer.status == 201;
            let written = self.written(answer).await?;
            if made || !replace_existing {
                return Ok(written);
            }
            match written {
                ApiReply::Written { resource, .. } => resource,
                other => return Ok(other),
            }
        } else {
            // A server without conditional create may ignore the header and
            // make a second copy: look for the first one by its id. A server
            // that ignores the search parameter answers with other
            // resources: only one that carries our id is ours.
            let search = format!(
                "{ty}?identifier={}",
                url::form_urlencoded::byte_serialize(
                    format!("{}|{client_id}", codes::CLIENT_ID_SYSTEM).as_bytes()
                )
                .collect::<String>()
            );
            let listed = self.get_json(&self.url(&search)).await?;
            let ours = listed
                .get("entry")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("resource"))
                .find(|r| carries_client_id(r, client_id))
                .cloned();
            match ours {
                None => {
                    let answer = self
                        .exchange(Method::POST, &url, Some(&resource), &[])
                        .await?;
                    return self.written(answer).await;
                }
                Some(existing) if !replace_existing => {
                    let version = version_of(&existing);
                    return Ok(ApiReply::Written {
                        resource: existing,
                        version,
                    });
                }
                Some(existing) => existing,
            }
        };
        // An earlier try's copy: brought up to what this write says.
        let id = found.get("id").and_then(Value::as_str);
        let version = version_of(&found);
        match (id, version) {
            (Some(id), Some(version)) => {
                let mut resource = resource;
                resource["id"] = Value::from(id);
                // It already says it (the earlier try's answer was lost on
                // the way back): nothing to update, and a signed note could
                // not be rewritten anyway.
                if content(&found) == content(&resource) {
                    return Ok(ApiReply::Written {
                        resource: found,
                        version: Some(version),
                    });
                }
                self.update(resource, &version).await
            }
            // No version to update safely from: what the server holds.
            _ => {
                let version = version_of(&found);
                Ok(ApiReply::Written {
                    resource: found,
                    version,
                })
            }
        }
    }

    async fn update(&self, resource: Value, version: &str) -> Result<ApiReply, ApiError> {
        let (ty, id) = type_and_id(&resource)?;
        let id = id.ok_or_else(|| ApiError::local("a resource to update needs its id"))?;
        let url = self.url(&format!("{ty}/{id}"));
        let headers = [
            ("If-Match", format!("W/\"{version}\"")),
            ("Prefer", "return=representation".to_string()),
        ];
        let mut attempt = 1;
        loop {
            let result = self
                .exchange(Method::PUT, &url, Some(&resource), &headers)
                .await;
            match result {
                Ok(a) if (200..300).contains(&a.status) => return self.written(a).await,
                // Refused, perhaps because of this write's own earlier try
                // whose answer was lost (on a retry here, or a whole write
                // replayed later): a version conflict, or a server that
                // guards what is now stored (a note the first try signed).
                // If the server holds exactly what we sent, it went through.
                Ok(a) if matches!(a.status, 403 | 409 | 412 | 422) => {
                    // Otherwise the refusal stands. A copy that could not
                    // be read (no answer, a server briefly unable) leaves it
                    // open whether this write went through: that failure is
                    // what is said, so the write is tried again (and
                    // compared) later, never taken for someone else's change.
                    return match self.get_json(&url).await {
                        Ok(current) if content(&current) == content(&resource) => {
                            let version = version_of(&current);
                            Ok(ApiReply::Written {
                                resource: current,
                                version,
                            })
                        }
                        Err(e) if e.no_answer || retry::retryable(e.status) => Err(e),
                        _ => Err(answer_error(&a)),
                    };
                }
                Ok(a) if !retry::retryable(Some(a.status)) || attempt >= self.backoff.attempts => {
                    return Err(answer_error(&a));
                }
                Err(e)
                    if (e.status.is_none() && !e.no_answer)
                        || !retry::retryable(e.status)
                        || attempt >= self.backoff.attempts =>
                {
                    return Err(e);
                }
                Ok(a) => {
                    let wait = self
                        .backoff
                        .delay(attempt, a.retry_after, rand::random::<f64>());
                    tokio::time::sleep(wait).await;
                }
                Err(_) => {
                    let wait = self.backoff.delay(attempt, None, rand::random::<f64>());
                    tokio::time::sleep(wait).await;
                }
            }
            attempt += 1;
        }
    }

    /// Co-sign: the note the task points at becomes final (the server names
    /// the signer), then the task is completed; each with the version read.
    pub async fn cosign(&self, task: Value) -> Result<ApiReply, ApiError> {
        // The task as the server holds it now, not as the queue last read it.
        let task_id = task
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::local("the task has no id"))?;
        let task = self.get_json(&self.url(&format!("Task/{task_id}"))).await?;
        if matches!(
            task.get("status").and_then(Value::as_str),
            Some("completed" | "cancelled" | "entered-in-error")
        ) {
            return Err(ApiError::local("this co-signature task is already closed"));
        }
        let note = task
            .pointer("/focus/reference")
            .and_then(Value::as_str)
            .filter(|r| r.starts_with("DocumentReference/"))
            .ok_or_else(|| ApiError::local("this task points at no note"))?;
        let mut doc = self.get_json(&self.url(note)).await?;
        // The note must be of the task's patient and waiting for exactly
        // this: a task someone made up cannot finalise any draft.
        let patient =
            |v: &Value, ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_string);
        if patient(&doc, "/subject/reference") != patient(&task, "/for/reference") {
            return Err(ApiError::local(
                "the note and the task are not of the same patient: not co-signed",
            ));
        }
        let awaiting = codes::awaits_cosignature(doc.get("extension"));
        let already_final = doc.get("docStatus").and_then(Value::as_str) == Some("final");
        let signed = if already_final && !awaiting {
            // A co-signature whose task update failed before: the note is
            // done, only the task is left.
            let version = version_of(&doc);
            ApiReply::Written {
                resource: doc,
                version,
            }
        } else {
            if !awaiting || doc.get("docStatus").and_then(Value::as_str) != Some("preliminary") {
                return Err(ApiError::local(
                    "this note is not waiting for a co-signature: not co-signed",
                ));
            }
            let version = version_of(&doc)
                .ok_or_else(|| ApiError::local("the server gave the note no version"))?;
            doc["docStatus"] = Value::from("final");
            if let Some(ext) = doc.get_mut("extension").and_then(Value::as_array_mut) {
                ext.retain(|e| {
                    e.get("url").and_then(Value::as_str) != Some(codes::AWAITING_COSIGNATURE)
                });
                if ext.is_empty()
                    && let Some(o) = doc.as_object_mut()
                {
                    o.remove("extension");
                }
            }
            self.update(doc, &version).await?
        };
        let mut task = task;
        let task_version =
            version_of(&task).ok_or_else(|| ApiError::local("the task has no version"))?;
        task["status"] = Value::from("completed");
        self.update(task, &task_version).await?;
        Ok(signed)
    }

    /// The stored resource and its version from a successful write's
    /// answer (read back from `Location` when the server sent no body).
    async fn written(&self, a: Answer) -> Result<ApiReply, ApiError> {
        if !(200..300).contains(&a.status) {
            return Err(answer_error(&a));
        }
        let resource = match a.body {
            Some(body) if body.get("resourceType").is_some() => body,
            _ => match &a.location {
                Some(loc) => {
                    let url = if loc.contains("://") {
                        loc.clone()
                    } else {
                        self.url(loc)
                    };
                    self.get_json(&url).await?
                }
                None => return Err(ApiError::local("the server did not return what it stored")),
            },
        };
        let version = a
            .etag
            .as_deref()
            .and_then(version_of_etag)
            .or_else(|| version_of(&resource));
        Ok(ApiReply::Written { resource, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_is_added_once() {
        let r = json!({"resourceType": "Task", "identifier": [{"system": "urn:x", "value": "1"}]});
        let once = with_client_id(r, "abc");
        let twice = with_client_id(once.clone(), "abc");
        assert_eq!(once, twice);
        assert_eq!(once["identifier"].as_array().map(Vec::len), Some(2));
        let bare = with_client_id(json!({"resourceType": "Task"}), "abc");
        assert_eq!(bare["identifier"][0]["system"], codes::CLIENT_ID_SYSTEM);
    }

    #[test]
    fn versions_from_etags() {
        assert_eq!(version_of_etag("W/\"3\"").as_deref(), Some("3"));
        assert_eq!(version_of_etag("\"a1b2\"").as_deref(), Some("a1b2"));
        assert_eq!(version_of_etag("W/\"\""), None);
        assert!(type_and_id(&json!({"resourceType": "../Patient"})).is_err());
    }
}
