//! Working the queue, for the app: each change to a task is a
//! version-checked update through the one write path; a reply to a patient
//! is a conditional create, then recorded on its task. A version conflict
//! reads the task again and says who has it; nothing is overwritten. A
//! marked set is one batch: the message bar says how many went through and
//! which did not.

use serde_json::{Value, json};

use super::{App, Batch, Origin};
use crate::api::{ApiError, ApiReply, ApiRequest, Write};
use crate::tui::command::{PaneReply, TaskChange, TaskReply};
use crate::tui::panes::PaneId;

/// A fresh id for a reply, unique per intended write.
fn client_id() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("reply-{h}")
}

impl App {
    fn new_batch(&mut self, what: String, total: usize) -> u64 {
        let id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(
            id,
            Batch {
                what,
                total,
                ..Batch::default()
            },
        );
        id
    }

    fn submit_task_update(&mut self, batch: u64, change: TaskChange) {
        let Some(version) = change.version.clone() else {
            self.work_ride_failed(&change.task_id);
            self.batch_done(
                batch,
                Err(format!(
                    "{}: the server gave the task no version — not changed",
                    change.label
                )),
            );
            return;
        };
        self.submit(
            ApiRequest::Write(Write::Update {
                resource: change.resource,
                version,
            }),
            Origin::TaskWrite {
                batch,
                label: change.label,
                task_id: change.task_id,
            },
        );
    }

    pub(super) fn update_tasks(&mut self, what: String, mut changes: Vec<TaskChange>) {
        self.work_ride(&mut changes);
        let batch = self.new_batch(what, changes.len());
        for c in changes {
            self.submit_task_update(batch, c);
        }
    }

    pub(super) fn reply_tasks(&mut self, mut replies: Vec<TaskReply>) {
        let batch = self.new_batch("Replied".into(), replies.len());
        for r in replies.iter_mut() {
            self.work_ride(std::slice::from_mut(&mut r.task));
        }
        for r in replies {
            self.submit(
                ApiRequest::Write(Write::Create {
                    resource: r.communication,
                    client_id: client_id(),
                    conditional: self.features.conditional_create,
                    replace_existing: false,
                }),
                Origin::ReplySent {
                    batch,
                    task: Box::new(r.task),
                },
            );
        }
    }

    /// The reply is stored: record it on the task (its `output`).
    pub(super) fn reply_stored(
        &mut self,
        batch: u64,
        mut task: TaskChange,
        result: Result<ApiReply, ApiError>,
    ) {
        match result {
            Ok(ApiReply::Written { resource, .. }) => {
                // From here the patient has the reply, whatever becomes of
                // the task's update: every message about it says so.
                task.label = format!("{} (the reply was sent)", task.label);
                let id = resource.get("id").and_then(Value::as_str).unwrap_or("");
                let output = json!({
                    "type": {"text": "Reply to the patient"},
                    "valueReference": {"reference": format!("Communication/{id}")}
                });
                match task
                    .resource
                    .get_mut("output")
                    .and_then(Value::as_array_mut)
                {
                    Some(list) => list.push(output),
                    None => task.resource["output"] = json!([output]),
                }
                self.submit_task_update(batch, task);
            }
            Ok(_) => {
                self.work_ride_failed(&task.task_id);
                self.batch_done(batch, Err(format!("{}: unexpected reply", task.label)))
            }
            Err(e) => {
                self.work_ride_failed(&task.task_id);
                self.batch_done(
                    batch,
                    Err(format!("{}: the reply was not sent ({e})", task.label)),
                )
            }
        }
    }

    pub(super) fn task_written(
        &mut self,
        batch: u64,
        label: String,
        task_id: String,
        result: Result<ApiReply, ApiError>,
    ) {
        match result {
            Ok(ApiReply::Written { resource, version }) => {
                self.task_stored(resource, version);
                self.batch_done(batch, Ok(label));
            }
            Ok(_) => {
                self.work_ride_failed(&task_id);
                self.batch_done(batch, Err(format!("{label}: unexpected reply")))
            }
            Err(e) if e.status == Some(412) => {
                self.work_ride_failed(&task_id);
                // Someone changed it since it was read: read it again, say
                // who, and change nothing.
                self.submit(
                    ApiRequest::ReadTask { id: task_id },
                    Origin::TaskReread { batch, label },
                );
            }
            Err(e) => {
                self.work_ride_failed(&task_id);
                // The row showed the change while it was on its way: it
                // shows the server's task again.
                self.submit(ApiRequest::ReadTask { id: task_id }, Origin::TaskRow);
                self.batch_done(batch, Err(format!("{label}: {e} — not changed")))
            }
        }
    }

    /// A task as the server now holds it: its row, and the time entries it
    /// confirms.
    pub(super) fn task_stored(&mut self, mut resource: Value, version: Option<String>) {
        if let Some(v) = version {
            resource["meta"]["versionId"] = json!(v);
        }
        self.work_stored(&resource);
        self.reply_to(PaneId::Tasks, PaneReply::TaskNow(resource));
    }

    pub(super) fn task_reread(
        &mut self,
        batch: u64,
        label: String,
        result: Result<ApiReply, ApiError>,
    ) {
        match result {
            Ok(ApiReply::Resource(task)) => {
                let why = self.who_changed(&task);
                self.reply_to(PaneId::Tasks, PaneReply::TaskNow(task));
                self.batch_done(batch, Err(format!("{label}: {why} — not changed")));
            }
            Ok(_) | Err(_) => self.batch_done(
                batch,
                Err(format!("{label}: changed by someone else — not changed")),
            ),
        }
    }

    /// "Taken by Dr X at 10:42", from the task as it is now.
    fn who_changed(&self, task: &Value) -> String {
        let tz = self.prefs.tz;
        let at = task
            .pointer("/meta/lastUpdated")
            .and_then(Value::as_str)
            .and_then(crate::fhir::time::instant)
            .map(|t| format!(" at {}", t.with_timezone(&tz).format("%H:%M")))
            .unwrap_or_default();
        let owner = task.get("owner").and_then(|o| {
            o.get("display")
                .or_else(|| o.get("reference"))
                .and_then(Value::as_str)
        });
        let owner_ref = task.pointer("/owner/reference").and_then(Value::as_str);
        let status = task.get("status").and_then(Value::as_str).unwrap_or("");
        let last_author = task
            .get("note")
            .and_then(Value::as_array)
            .and_then(|n| n.last())
            .and_then(|n| {
                n.pointer("/authorReference/display")
                    .or_else(|| n.get("authorString"))
                    .and_then(Value::as_str)
            });
        match (owner, status) {
            (_, "completed" | "cancelled") => {
                format!(
                    "closed ({status}) by {}{at}",
                    last_author.unwrap_or("someone else")
                )
            }
            (Some(o), _) if owner_ref != self.notes.practitioner.as_deref() => {
                format!("taken by {o}{at}")
            }
            _ => format!("changed by {}{at}", last_author.unwrap_or("someone else")),
        }
    }

    pub(super) fn batch_done(&mut self, batch: u64, outcome: Result<String, String>) {
        let Some(b) = self.batches.get_mut(&batch) else {
            return;
        };
        b.done += 1;
        match outcome {
            Ok(label) => {
                b.ok += 1;
                b.saved = label;
            }
            Err(why) => b.failed.push(why),
        }
        if b.done < b.total {
            return;
        }
        let Some(b) = self.batches.remove(&batch) else {
            return;
        };
        let text = match (b.total, b.failed.is_empty()) {
            (1, true) => format!("{}: {}", b.what, b.saved),
            (1, false) => capitalise(&b.failed.join("; ")),
            (n, true) => format!("{}: {n} of {n} tasks — saved", b.what),
            (n, false) => format!(
                "{}: {} of {n} tasks; not changed: {}",
                b.what,
                b.ok,
                b.failed.join("; ")
            ),
        };
        if b.failed.is_empty() {
            self.inform(text);
        } else {
            self.warn(text);
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
