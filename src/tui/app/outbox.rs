//! Changes that wait for the link. A write made while the server cannot be
//! reached, or whose answer never came, joins an ordered outbox instead of
//! failing; when the link is back the outbox is sent again, oldest first,
//! one at a time, and each answer is applied as if it had come at once.
//!
//! Sending again is safe because of how every write is made: a create is
//! conditional on the identifier the client made for it, and an update
//! carries the version it was made from, with a conflict checked against
//! what the server holds (the first try may have gone through). A change the
//! server refuses, or one someone else overtook, is never dropped: it stays
//! listed, beside the server's version, until the user has seen both.
//!
//! The outbox is kept like drafts are: sealed on this machine by the keeper,
//! so it survives a crash or a restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{App, DraftEffect, LinkState, Origin};
use crate::api::{ApiError, ApiReply, ApiRequest, RequestId, Write};
use crate::tui::command::PaneReply;
use crate::tui::panes::PaneId;
use crate::tui::popups::{Popup, RawView};

/// The longest wait before the outbox tries a server that answered with an
/// error again.
const REPLAY_WAIT_MAX: Duration = Duration::from_secs(60);
const REPLAY_WAIT_FIRST: Duration = Duration::from_secs(2);

/// The batch of a change kept from an earlier session: none.
const NO_BATCH: u64 = u64::MAX;

/// What a waiting change sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) enum Queued {
    Write(Write),
    CoSign { task: Value },
}

impl Queued {
    fn of(request: &ApiRequest) -> Option<Queued> {
        match request {
            ApiRequest::Write(w) => Some(Queued::Write(w.clone())),
            ApiRequest::CoSign { task } => Some(Queued::CoSign { task: task.clone() }),
            _ => None,
        }
    }

    fn request(&self) -> ApiRequest {
        match self {
            Queued::Write(w) => ApiRequest::Write(w.clone()),
            Queued::CoSign { task } => ApiRequest::CoSign { task: task.clone() },
        }
    }

    /// The resource it writes, for showing.
    fn resource(&self) -> &Value {
        match self {
            Queued::Write(Write::Create { resource, .. } | Write::Update { resource, .. }) => {
                resource
            }
            Queued::CoSign { task } => task,
        }
    }

    /// `Type/id` of an update's resource.
    fn updates(&self) -> Option<String> {
        match self {
            Queued::Write(Write::Update { resource, .. }) => address(resource),
            _ => None,
        }
    }
}

fn address(resource: &Value) -> Option<String> {
    let ty = resource.get("resourceType")?.as_str()?;
    let id = resource.get("id")?.as_str()?;
    Some(format!("{ty}/{id}"))
}

/// One change waiting for the link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Waiting {
    /// Order: changes are sent in the order they were made.
    seq: i64,
    queued: Queued,
    origin: Origin,
    /// What it is, for the user ("Claimed: Nguyễn, Thị Lan").
    label: String,
    at: DateTime<Utc>,
}

/// A change the server would not take when it was sent again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Unsent {
    label: String,
    why: String,
    ours: Value,
    /// The server's version, once read (a conflict).
    theirs: Option<Value>,
    at: DateTime<Utc>,
    /// Shown to the user; kept for the session, no longer on disk.
    #[serde(skip)]
    seen: bool,
}

/// What is kept on disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Kept {
    waiting: Vec<Waiting>,
    unsent: Vec<Unsent>,
}

/// The outbox's state; the rules that need no app live here.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    waiting: Vec<Waiting>,
    unsent: Vec<Unsent>,
    next_seq: i64,
    /// The change being sent again, and its request.
    replaying: Option<(RequestId, Waiting)>,
    /// Not before this (the server answered the last try with an error).
    hold_until: Option<(Instant, Duration)>,
    /// Versions our own sent changes replaced, per `Type/id`: a later
    /// change made from one of them (while offline, the screen showed no
    /// newer version) is sent against the newest instead of conflicting
    /// with ourselves.
    replaced: HashMap<String, (Vec<String>, String)>,
    /// Writes in flight, should their answer not come. They are kept on
    /// disk with the outbox (a session may end before they are answered);
    /// `kept_in_flight`: those the last copy on disk holds.
    in_flight: HashMap<RequestId, Waiting>,
    kept_in_flight: std::collections::HashSet<RequestId>,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.waiting.len() + usize::from(self.replaying.is_some())
    }

    pub fn unsent_unseen(&self) -> usize {
        self.unsent.iter().filter(|u| !u.seen).count()
    }

    /// Whether new writes must queue behind earlier ones.
    fn busy(&self) -> bool {
        !self.waiting.is_empty() || self.replaying.is_some()
    }

    fn next_seq(&mut self) -> i64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds a change in its place. A draft's save replaces the same draft's
    /// earlier save (only the newest text matters); a signature replaces
    /// the saves of its draft (it carries the whole text).
    fn push(&mut self, w: Waiting) {
        let client = |o: &Origin| match o {
            Origin::NoteSave { client_id } => Some(client_id.clone()),
            Origin::NoteSign { note } => Some(note.client_id.clone()),
            _ => None,
        };
        if let Some(id) = client(&w.origin) {
            self.waiting.retain(|old| {
                !(matches!(old.origin, Origin::NoteSave { .. })
                    && client(&old.origin).as_deref() == Some(&id))
            });
        }
        let at = self.waiting.partition_point(|o| o.seq < w.seq);
        self.waiting.insert(at, w);
    }

    /// The next change to send, with versions our own earlier changes
    /// replaced brought forward.
    fn take_next(&mut self) -> Option<Waiting> {
        if self.waiting.is_empty() {
            return None;
        }
        let mut w = self.waiting.remove(0);
        self.rebase(&mut w.queued);
        Some(w)
    }

    /// An update made from a version one of our own changes replaced goes
    /// against the newest instead.
    fn rebase(&self, q: &mut Queued) {
        if let Queued::Write(Write::Update { resource, version }) = q
            && let Some(addr) = address(resource)
            && let Some((old, newest)) = self.replaced.get(&addr)
            && old.contains(version)
        {
            *version = newest.clone();
            resource["meta"]["versionId"] = Value::from(newest.clone());
        }
    }

    /// Whether a write to the same record is on its way.
    fn touches_in_flight(&self, q: &Queued) -> bool {
        let Some(addr) = q.updates() else {
            return false;
        };
        self.in_flight
            .values()
            .chain(self.replaying.iter().map(|(_, w)| w))
            .any(|w| w.queued.updates().as_deref() == Some(addr.as_str()))
    }

    /// A sent update of ours replaced `from` with `to`.
    fn record_replaced(&mut self, addr: String, from: String, to: String) {
        let entry = self.replaced.entry(addr).or_default();
        entry.0.push(from);
        let newest = std::mem::replace(&mut entry.1, to);
        if !newest.is_empty() {
            entry.0.push(newest);
        }
    }

    fn kept(&self) -> Kept {
        let mut waiting: Vec<Waiting> = self
            .replaying
            .iter()
            .map(|(_, w)| w.clone())
            .chain(self.in_flight.values().cloned())
            .chain(self.waiting.iter().cloned())
            .collect();
        waiting.sort_by_key(|w| w.seq);
        Kept {
            waiting,
            unsent: self.unsent.iter().filter(|u| !u.seen).cloned().collect(),
        }
    }

    /// Changes kept from an earlier session go before any made in this one.
    fn restore(&mut self, json: &str) -> Result<usize, String> {
        let kept: Kept = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let n = kept.waiting.len() as i64;
        let mut restored = 0;
        for (i, mut w) in kept.waiting.into_iter().enumerate() {
            // The batches of the session that made them are gone; their
            // numbers may name this session's.
            match &mut w.origin {
                Origin::TaskWrite { batch, .. } | Origin::ReplySent { batch, .. } => {
                    *batch = NO_BATCH;
                }
                _ => {}
            }
            // The same change (what it sends, when it was made), whatever
            // its batch.
            let same = |o: &Waiting| o.queued == w.queued && o.at == w.at;
            if self.waiting.iter().any(same)
                || self.in_flight.values().any(same)
                || self.replaying.as_ref().is_some_and(|(_, o)| same(o))
            {
                continue;
            }
            w.seq = i as i64 - n - 1_000_000;
            self.push(w);
            restored += 1;
        }
        for u in kept.unsent {
            if !self.unsent.contains(&u) {
                self.unsent.push(u);
            }
        }
        Ok(restored)
    }
}

/// A label for a change, from what it was for.
fn label_of(origin: &Origin) -> String {
    match origin {
        Origin::TaskWrite { label, .. } => label.clone(),
        Origin::ReplySent { task, .. } => format!("Reply to {}", task.label),
        Origin::NoteSave { .. } => "A note's draft".into(),
        Origin::NoteSign { note } => {
            format!("Signed note: {} · {}", note.title, note.patient_label)
        }
        Origin::CosignTask { .. } => "A co-signature request".into(),
        Origin::CoSign => "A co-signature".into(),
        Origin::WorkWrite { .. } | Origin::WorkReread { .. } => "Time on a message thread".into(),
        Origin::Billing { label, .. } => format!("Billing: {label}"),
        _ => "A change".into(),
    }
}

impl App {
    /// What a change is, for the user: a queue action says which
    /// ("Claimed: van der Berg, Hugo").
    fn label_for(&self, origin: &Origin) -> String {
        match origin {
            Origin::TaskWrite { batch, label, .. } => match self.batches.get(batch) {
                Some(b) => format!("{}: {label}", b.what),
                None => label.clone(),
            },
            other => label_of(other),
        }
    }

    /// Whether a write waits in the outbox instead of going out: the link
    /// is down, earlier changes still wait (order is kept), or a change to
    /// the same record is on its way (this one is made from the version
    /// that one replaces, and goes against the new one once it is back).
    pub(super) fn holds_write(&self, request: &ApiRequest) -> bool {
        self.link == LinkState::Down
            || self.outbox.busy()
            || Queued::of(request).is_some_and(|q| self.outbox.touches_in_flight(&q))
    }

    /// A write about to go out, brought forward past our own changes.
    pub(super) fn rebase_write(&self, request: &mut ApiRequest) {
        if let ApiRequest::Write(w) = request {
            let mut q = Queued::Write(w.clone());
            self.outbox.rebase(&mut q);
            if let Queued::Write(rebased) = q {
                *w = rebased;
            }
        }
    }

    /// A write is on its way: remembered until its answer comes, so that a
    /// lost answer puts it in the outbox.
    pub(super) fn write_sent(&mut self, id: RequestId, request: &ApiRequest, origin: Origin) {
        // A queue change shows on its row while it is on its way, so that
        // the next change to the task is made from it (and, held until this
        // one is answered, goes against the version it makes). One that
        // closes the task leaves the row when the server says so.
        if let (Origin::TaskWrite { .. }, ApiRequest::Write(Write::Update { resource, .. })) =
            (&origin, request)
            && !matches!(
                resource.get("status").and_then(Value::as_str),
                Some("completed" | "cancelled" | "failed" | "rejected" | "entered-in-error")
            )
        {
            self.reply_to(PaneId::Tasks, PaneReply::TaskNow(resource.clone()));
        }
        if let Some(queued) = Queued::of(request) {
            let seq = self.outbox.next_seq();
            let label = self.label_for(&origin);
            self.outbox.in_flight.insert(
                id,
                Waiting {
                    seq,
                    queued,
                    origin,
                    label,
                    at: self.clock.now,
                },
            );
        }
    }

    /// The session ends and writes are still unanswered: they are kept
    /// with the outbox, and sent again at the next start (safely: see the
    /// module comment).
    pub fn keep_writes_in_flight(&mut self) {
        if !self.outbox.in_flight.is_empty() {
            self.keep_outbox();
        }
    }

    /// Put a write in the outbox instead of sending it.
    pub(super) fn queue_write(&mut self, request: &ApiRequest, origin: Origin) {
        let Some(queued) = Queued::of(request) else {
            return;
        };
        let seq = self.outbox.next_seq();
        self.queue(seq, queued, origin);
    }

    fn queue(&mut self, seq: i64, queued: Queued, origin: Origin) {
        let label = self.label_for(&origin);
        self.waiting_shown(&queued, &origin, &label);
        self.outbox.push(Waiting {
            seq,
            queued,
            origin,
            label,
            at: self.clock.now,
        });
        self.keep_outbox();
        self.dirty = true;
    }

    /// What the screen shows of a change that waits: the task row as
    /// changed, the note closed as signed (its draft stays here until the
    /// server has it), a batch counted.
    fn waiting_shown(&mut self, queued: &Queued, origin: &Origin, label: &str) {
        let later = match self.link {
            LinkState::Down => "waiting to send (no link)",
            LinkState::Degraded => "waiting to send (the server cannot take it now)",
            _ => "waiting to send after the change before it",
        };
        match origin {
            // The batch's message names the action itself.
            Origin::TaskWrite { batch, label, .. } => {
                if let Queued::Write(Write::Update { resource, .. }) = queued {
                    self.reply_to(PaneId::Tasks, PaneReply::TaskNow(resource.clone()));
                }
                self.batch_done(*batch, Ok(format!("{label} — {later}")));
            }
            Origin::ReplySent { batch, task } => {
                self.batch_done(*batch, Ok(format!("{} — {later}", task.label)));
            }
            Origin::NoteSign { note } => {
                self.reply_to(
                    PaneId::Editor,
                    PaneReply::NoteSigned {
                        client_id: note.client_id.clone(),
                    },
                );
                self.inform(format!(
                    "Signed — {later}; kept on this machine until the server has it"
                ));
            }
            Origin::NoteSave { client_id } => self.reply_to(
                PaneId::Editor,
                PaneReply::DraftNotSaved {
                    client_id: client_id.clone(),
                    why: later.to_string(),
                    retry: false,
                },
            ),
            _ => self.inform(format!("{label} — {later}")),
        }
    }

    /// A write's answer came: whether the outbox takes it, or the usual
    /// handling goes on.
    pub(super) fn outbox_answer(
        &mut self,
        id: RequestId,
        origin: &Origin,
        result: &Result<ApiReply, ApiError>,
    ) -> Answered {
        if self
            .outbox
            .replaying
            .as_ref()
            .is_some_and(|(r, _)| *r == id)
        {
            let Some((_, w)) = self.outbox.replaying.take() else {
                return Answered::Apply;
            };
            return self.replayed(w, result);
        }
        let Some(w) = self.outbox.in_flight.remove(&id) else {
            return Answered::Apply;
        };
        self.note_replaced(&w, result);
        match result {
            // No answer, or a server briefly unable to take it: it waits.
            Err(e) if e.no_answer || retryable(e.status) => {
                if !e.no_answer {
                    self.hold_replays();
                }
                self.outbox.kept_in_flight.remove(&id);
                self.queue(w.seq, w.queued, origin.clone());
                Answered::Taken
            }
            _ => {
                if self.outbox.kept_in_flight.remove(&id) {
                    // Answered after all: off the copy on disk.
                    self.keep_outbox();
                }
                Answered::Apply
            }
        }
    }

    fn replayed(&mut self, w: Waiting, result: &Result<ApiReply, ApiError>) -> Answered {
        match result {
            Ok(_) => {
                self.outbox.hold_until = None;
                self.note_replaced(&w, result);
                self.keep_outbox();
                let left = self.outbox.len();
                let text = match left {
                    0 => format!("Sent: {} — nothing more waiting", w.label),
                    n => format!("Sent: {} — {n} more waiting", w.label),
                };
                self.inform(text);
                Answered::Apply
            }
            Err(e) if e.no_answer || e.signed_out || retryable(e.status) => {
                // Not taken yet: first in line again, tried later.
                if !e.no_answer {
                    self.hold_replays();
                }
                self.outbox.push(w);
                Answered::Taken
            }
            Err(e) => {
                let conflict = e.status == Some(412);
                let why = if conflict {
                    "changed on the server since".to_string()
                } else {
                    e.to_string()
                };
                let theirs_at = w.queued.updates().filter(|_| conflict);
                self.outbox.unsent.push(Unsent {
                    label: w.label.clone(),
                    why: why.clone(),
                    ours: w.queued.resource().clone(),
                    theirs: None,
                    at: self.clock.now,
                    seen: false,
                });
                if let Some(path) = theirs_at {
                    self.submit(
                        ApiRequest::ReadResource { path: path.clone() },
                        Origin::OutboxTheirs { path },
                    );
                }
                self.keep_outbox();
                let kept = match &w.origin {
                    Origin::NoteSign { .. } | Origin::NoteSave { .. } => {
                        " (the note stays on this machine)"
                    }
                    _ => "",
                };
                self.warn(format!(
                    "Not sent: {} — {why}{kept}; W shows yours and the server's",
                    w.label
                ));
                Answered::Taken
            }
        }
    }

    /// The server answered with an error it may get over: the outbox waits
    /// longer each time before it tries again.
    fn hold_replays(&mut self) {
        let wait = self
            .outbox
            .hold_until
            .map_or(REPLAY_WAIT_FIRST, |(_, w)| (w * 2).min(REPLAY_WAIT_MAX));
        self.outbox.hold_until = Some((self.clock.instant + wait, wait));
    }

    /// A write of ours went through: the version it replaced is ours to
    /// bring forward (see [`Outbox::rebase`]).
    fn note_replaced(&mut self, w: &Waiting, result: &Result<ApiReply, ApiError>) {
        if let (Some(addr), Queued::Write(Write::Update { version, .. })) =
            (w.queued.updates(), &w.queued)
            && let Ok(ApiReply::Written {
                version: Some(new), ..
            }) = result
        {
            self.outbox
                .record_replaced(addr, version.clone(), new.clone());
        }
    }

    /// The server's version of a change it refused: shown beside ours.
    pub(super) fn outbox_theirs(&mut self, path: String, result: Result<ApiReply, ApiError>) {
        let Ok(ApiReply::Resource(theirs)) = result else {
            return;
        };
        if let Some(u) = self
            .outbox
            .unsent
            .iter_mut()
            .rev()
            .find(|u| u.theirs.is_none() && address(&u.ours).as_deref() == Some(path.as_str()))
        {
            u.theirs = Some(theirs);
        }
        self.keep_outbox();
    }

    /// Send the next waiting change when the link is up and nothing of the
    /// outbox is on its way (called every tick).
    pub(super) fn replay_outbox(&mut self) {
        if self.locked.is_some()
            || self.link == LinkState::Down
            || self.outbox.replaying.is_some()
            || self
                .outbox
                .hold_until
                .is_some_and(|(at, _)| self.clock.instant < at)
        {
            return;
        }
        // The change before it to the same record is still on its way:
        // this one is sent against the version that one makes.
        if self
            .outbox
            .waiting
            .first()
            .is_some_and(|w| self.outbox.touches_in_flight(&w.queued))
        {
            return;
        }
        let Some(w) = self.outbox.take_next() else {
            return;
        };
        let id = self.send(w.queued.request(), w.origin.clone());
        self.outbox.replaying = Some((id, w));
    }

    /// Changes from an earlier session, read back from this machine.
    pub(super) fn outbox_recovered(&mut self, kept: Option<String>) {
        let Some(json) = kept else {
            // Changes made before the user was known are kept now.
            if self.outbox.len() > 0 {
                self.keep_outbox();
            }
            return;
        };
        match self.outbox.restore(&json) {
            Ok(0) => self.keep_outbox(),
            Ok(n) => {
                self.inform(format!(
                    "{n} change(s) from the last session wait to be sent"
                ));
                self.keep_outbox();
            }
            Err(e) => {
                // The reason only: the content is patient data.
                tracing::warn!(error = %e, "kept outbox unreadable");
                self.warn("Changes kept from the last session could not be read".into());
            }
        }
    }

    /// Hand the outbox as it now is to the keeper (sealed on disk).
    fn keep_outbox(&mut self) {
        let Some((user, server)) = self.draft_owner() else {
            // Whose it is is not known yet: kept when it is.
            return;
        };
        self.outbox.kept_in_flight = self.outbox.in_flight.keys().copied().collect();
        let kept = self.outbox.kept();
        let json = if kept.waiting.is_empty() && kept.unsent.is_empty() {
            Ok(String::new())
        } else {
            serde_json::to_string(&kept)
        };
        match json {
            Ok(content) => self.draft_effects.push(DraftEffect::SaveOutbox {
                user,
                server,
                content,
                at: self.clock.now,
            }),
            Err(e) => tracing::warn!(error = %e, "outbox not kept"),
        }
    }

    /// The outbox view: what waits, and what the server refused with both
    /// versions. Refused changes shown here are not kept on disk after.
    pub(super) fn show_outbox(&mut self) {
        let tz = self.prefs.tz;
        let at = |t: DateTime<Utc>| t.with_timezone(&tz).format("%d %b %H:%M").to_string();
        let mut items: Vec<(String, Value)> = Vec::new();
        for u in &self.outbox.unsent {
            items.push((
                format!("NOT SENT ({}) — {}: {} — yours:", at(u.at), u.label, u.why),
                u.ours.clone(),
            ));
            items.push((
                "… and the server's version now:".to_string(),
                u.theirs
                    .clone()
                    .unwrap_or_else(|| Value::from("(not read: the server did not say)")),
            ));
        }
        let waiting = self
            .outbox
            .replaying
            .iter()
            .map(|(_, w)| w)
            .chain(self.outbox.waiting.iter());
        for w in waiting {
            items.push((
                format!("Waiting since {} — {}", at(w.at), w.label),
                w.queued.resource().clone(),
            ));
        }
        let title = format!(
            "Outbox · {} waiting · {} not sent",
            self.outbox.len(),
            self.outbox.unsent.len()
        );
        if items.is_empty() {
            self.inform("Nothing waits to be sent".into());
            return;
        }
        self.popup = Some(Popup::Raw(RawView::new(title, &items)));
        for u in &mut self.outbox.unsent {
            u.seen = true;
        }
        self.keep_outbox();
    }

    pub fn outbox_waiting(&self) -> usize {
        self.outbox.len()
    }

    /// Changes the server refused that the user has not looked at yet.
    pub fn outbox_unsent(&self) -> usize {
        self.outbox.unsent_unseen()
    }
}

/// Whether the outbox takes a write's answer.
pub(super) enum Answered {
    /// Applied as usual (its own pane and message).
    Apply,
    /// The outbox took it.
    Taken,
}

fn retryable(status: Option<u16>) -> bool {
    matches!(status, Some(408 | 429 | 500 | 502 | 503 | 504))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(id: &str, version: &str, status: &str) -> Queued {
        Queued::Write(Write::Update {
            resource: json!({"resourceType": "Task", "id": id, "status": status,
                             "meta": {"versionId": version}}),
            version: version.into(),
        })
    }

    fn waiting(seq: i64, queued: Queued, origin: Origin) -> Waiting {
        Waiting {
            seq,
            queued,
            origin,
            label: format!("change {seq}"),
            at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn task_origin() -> Origin {
        Origin::TaskWrite {
            batch: 1,
            label: "x".into(),
            task_id: "t".into(),
        }
    }

    #[test]
    fn changes_leave_in_the_order_they_were_made() {
        let mut o = Outbox::default();
        o.push(waiting(3, update("a", "1", "c"), task_origin()));
        o.push(waiting(1, update("b", "1", "a"), task_origin()));
        o.push(waiting(2, update("c", "1", "b"), task_origin()));
        let order: Vec<i64> = std::iter::from_fn(|| o.take_next())
            .map(|w| w.seq)
            .collect();
        assert_eq!(order, vec![1, 2, 3]);
    }

    #[test]
    fn a_second_change_to_a_task_goes_against_the_version_the_first_made() {
        let mut o = Outbox::default();
        o.push(waiting(1, update("t1", "4", "in-progress"), task_origin()));
        o.push(waiting(2, update("t1", "4", "completed"), task_origin()));
        let first = o.take_next().expect("first");
        assert_eq!(first.queued, update("t1", "4", "in-progress"));
        o.record_replaced("Task/t1".into(), "4".into(), "5".into());
        let second = o.take_next().expect("second");
        let Queued::Write(Write::Update { version, resource }) = &second.queued else {
            panic!("an update")
        };
        assert_eq!(version, "5", "sent against our own newer version");
        assert_eq!(resource["status"], "completed");
        assert_eq!(resource["meta"]["versionId"], "5");
        // Someone else's version is never taken for ours.
        o.push(waiting(3, update("t1", "9", "cancelled"), task_origin()));
        let third = o.take_next().expect("third");
        assert!(
            matches!(&third.queued, Queued::Write(Write::Update { version, .. }) if version == "9")
        );
    }

    #[test]
    fn a_drafts_newest_save_and_its_signature_replace_older_saves() {
        let save = |seq, text: &str| {
            waiting(
                seq,
                Queued::Write(Write::Create {
                    resource: json!({"resourceType": "DocumentReference", "description": text}),
                    client_id: "n1".into(),
                    conditional: true,
                    replace_existing: true,
                }),
                Origin::NoteSave {
                    client_id: "n1".into(),
                },
            )
        };
        let mut o = Outbox::default();
        o.push(save(1, "a"));
        o.push(waiting(2, update("t1", "1", "x"), task_origin()));
        o.push(save(3, "ab"));
        assert_eq!(o.waiting.len(), 2);
        assert_eq!(o.waiting[1].queued.resource()["description"], "ab");
        let other = Waiting {
            origin: Origin::NoteSave {
                client_id: "n2".into(),
            },
            ..save(4, "other note")
        };
        o.push(other);
        assert_eq!(o.waiting.len(), 3, "another note's save stays");
    }

    #[test]
    fn what_is_kept_comes_back_first_and_in_order() {
        let mut before = Outbox::default();
        before.push(waiting(5, update("a", "1", "x"), task_origin()));
        before.push(waiting(6, update("b", "1", "y"), task_origin()));
        before.unsent.push(Unsent {
            label: "refused".into(),
            why: "HTTP 422".into(),
            ours: json!({"resourceType": "Task"}),
            theirs: None,
            at: DateTime::<Utc>::UNIX_EPOCH,
            seen: false,
        });
        let json = serde_json::to_string(&before.kept()).expect("json");
        // Read back into the session that kept it (after unlocking):
        // nothing twice, whatever batch its changes belonged to.
        assert_eq!(before.restore(&json), Ok(0));
        assert_eq!(before.waiting.len(), 2);
        let mut after = Outbox::default();
        let now = after.next_seq();
        after.push(waiting(now, update("c", "1", "z"), task_origin()));
        assert_eq!(after.restore(&json), Ok(2));
        assert_eq!(after.restore(&json), Ok(0), "read twice, kept once");
        let order: Vec<String> = std::iter::from_fn(|| after.take_next())
            .map(|w| w.queued.resource()["id"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(order, vec!["a", "b", "c"]);
        assert_eq!(after.unsent.len(), 1);
        assert!(after.restore("not json").is_err());
    }
}
