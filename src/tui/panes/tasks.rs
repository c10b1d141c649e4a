//! The signed-in role's queue: what is due first, who has it and whose
//! patient it is (name, birth date and full record number), and one key per
//! thing a triage nurse does to an item: claim, route, escalate, reply,
//! complete, defer. `Enter` reads the patient's message (its structured
//! answers and the thread); `o` opens the chart.
//!
//! Every change is a version-checked update of the task as it was read;
//! the pane only builds the changed resource, the app sends it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::chart::PatientRow;
use crate::fhir::codes;
use crate::fhir::model::Task;
use crate::fhir::time;
use crate::triage::time_count;
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply, TaskChange, TaskReply};
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{
    Pane, PaneId, View, fit, navigate, pane_block, placeholder, table_column_widths,
};
use crate::tui::popups::{Pick, PickChoice, PickFor, PickerSpec};

/// Every queue a task can be routed to, in the order they are offered
/// after the likely ones.
pub const ALL_QUEUES: [&str; 7] = [
    "attending",
    "resident",
    "nurse",
    "frontdesk",
    "billing",
    "oncall",
    "review",
];

/// Why the queue is what it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum QueueState {
    #[default]
    NotLoaded,
    Loading,
    Loaded,
    /// No role known for this sign-in.
    NoRole,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub task_id: String,
    pub priority: String,
    pub due: Option<DateTime<Utc>>,
    pub due_text: String,
    pub patient_id: Option<String>,
    /// Name, birth date and record number, as listed.
    pub patient: String,
    /// The name alone, for the banner while the chart opens.
    pub patient_name: String,
    pub birth_date: String,
    /// `MRN 00100001`, `ID ...`, or "no identifier".
    pub record: String,
    pub raw: Value,
    pub category: String,
    pub summary: String,
    pub status: String,
    /// `Practitioner/<id>` (or whatever reference) of who has it.
    pub owner: Option<String>,
    /// Who has it, as the server names them.
    pub owner_name: Option<String>,
    /// The queue it sits in (`performerType`).
    pub queue: String,
    /// `meta.versionId` as read: every change is made from it.
    pub version: Option<String>,
    /// The patient's message (`Communication/<id>`) it came from.
    pub message: Option<String>,
}

impl QueueRow {
    /// Whether the signed-in practitioner has it.
    pub fn is_mine(&self, me: Option<&str>) -> bool {
        me.is_some() && self.owner.as_deref() == me
    }

    /// Who has it: "me", their name, or "—".
    pub fn owner_label(&self, me: Option<&str>) -> String {
        if self.is_mine(me) {
            return "me".into();
        }
        match (&self.owner_name, &self.owner) {
            (Some(n), _) => n.clone(),
            (None, Some(r)) => r.clone(),
            (None, None) => "—".into(),
        }
    }

    fn first_name(&self) -> String {
        self.patient_name
            .split(',')
            .nth(1)
            .and_then(|g| g.split_whitespace().last())
            .unwrap_or("")
            .to_string()
    }
}

/// The patient's message open in the message view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageView {
    pub task_id: String,
    pub patient_id: Option<String>,
    /// `None` while loading.
    pub thread: Option<Result<Vec<Value>, String>>,
    pub more: bool,
    scroll: u16,
}

/// Time on the open message's patient's messages over 7 days, as the app
/// counts it: entries read from the patient's tasks, written and on their
/// way, and what is counted now.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkSummary {
    pub patient_id: String,
    pub total_secs: u64,
    /// The signed-in clinician's part.
    pub mine_secs: u64,
    /// The patient's tasks: `None` while reading, `Ok(more)` read
    /// (`more`: the server had more than one page), or why not.
    pub read: Option<Result<bool, String>>,
}

/// The roles whose time the online digital E/M codes bill.
fn bills_time(role: Option<crate::roles::Role>) -> bool {
    matches!(
        role,
        Some(crate::roles::Role::Attending | crate::roles::Role::Resident)
    )
}

/// The task in the billing queue that records the time (made once per
/// patient, window end and code: the client id).
pub fn billing_task(
    r: &QueueRow,
    w: &WorkSummary,
    view: &View,
) -> Result<(Value, String, String), String> {
    let minutes = time_count::minutes(w.total_secs);
    let Some((code, label)) = time_count::cpt_for(minutes) else {
        return Err(format!(
            "Not recorded: {minutes} min over 7 days is not yet billable (5 min or more)"
        ));
    };
    let end = view.now.with_timezone(&view.prefs.tz).format("%Y-%m-%d");
    let description = format!("Bill CPT {code} ({label}): {minutes} min over 7 days to {end}");
    let mut task = json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": codes::TASK_CATEGORY_SYSTEM, "code": "billing",
            "display": "Billing"}]},
        "description": description,
        "for": {"reference": format!("Patient/{}", w.patient_id)},
        "focus": {"reference": r.message.clone()
            .unwrap_or_else(|| format!("Task/{}", r.task_id))},
        "performerType": [{"coding": [{"system": codes::ROLE_SYSTEM, "code": "billing"}]}],
        "authoredOn": view.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "input": [
            {"type": {"text": "Minutes on the patient's messages over 7 days"},
             "valueInteger": minutes},
            {"type": {"text": "CPT"},
             "valueCodeableConcept": {"coding": [{"system": CPT_SYSTEM, "code": code,
                "display": label}]}}
        ]
    });
    if let Some(me) = Me::of(view).as_reference() {
        task["requester"] = me;
    }
    let client_id = format!("bill-{}-{end}-{code}", w.patient_id);
    Ok((
        task,
        client_id,
        format!("CPT {code}, {minutes} min, {}", r.patient_name),
    ))
}

/// The CPT code system.
const CPT_SYSTEM: &str = "http://www.ama-assn.org/go/cpt";

/// "12 min (you 8 min) → CPT 99422 …" for the message view.
fn work_line(w: &WorkSummary, view: &View) -> Line<'static> {
    let t = view.theme;
    let head = "Time on this patient's messages, last 7 days: ";
    let minutes = time_count::minutes(w.total_secs);
    let mine = time_count::minutes(w.mine_secs);
    let amount = if minutes == 0 {
        "0 min".to_string()
    } else if mine == minutes {
        format!("{minutes} min (all yours)")
    } else {
        format!("{minutes} min (you {mine} min)")
    };
    let read = match &w.read {
        None => {
            return Line::from(vec![
                Span::raw(head),
                Span::styled(
                    format!("{minutes} min counted here; reading the earlier time…"),
                    t.dim,
                ),
            ]);
        }
        Some(Err(e)) => {
            return Line::from(vec![
                Span::raw(head),
                Span::styled(
                    format!("{minutes} min counted here; the earlier time could not be read ({e})"),
                    t.alert_critical,
                ),
            ]);
        }
        Some(Ok(more)) => *more,
    };
    let mut spans = vec![Span::raw(head), Span::raw(amount)];
    match time_count::cpt_for(minutes) {
        None => spans.push(Span::styled(" — not yet billable (5 min or more)", t.dim)),
        Some((code, label)) if bills_time(view.role) => {
            spans.push(Span::raw(" → "));
            spans.push(Span::styled(format!("CPT {code} {label}"), t.header));
            spans.push(Span::styled(" (b records it for billing)", t.dim));
        }
        Some((code, _)) => {
            spans.push(Span::raw(" → "));
            spans.push(Span::styled(format!("CPT {code}"), t.header));
            spans.push(Span::styled(" (billed for physician time only)", t.dim));
        }
    }
    if read {
        spans.push(Span::styled(" · more tasks on the server", t.dim));
    }
    Line::from(spans)
}

#[derive(Default)]
pub struct TasksPane {
    rows: Vec<QueueRow>,
    /// The co-signature task a question is open for.
    confirming: Option<String>,
    /// Tasks someone else has that a claim asked to take over.
    taking_over: Vec<String>,
    pub state: QueueState,
    /// Index into the rows shown (after the filters).
    selected: usize,
    offset: usize,
    page_rows: usize,
    marked: BTreeSet<String>,
    category_filter: Option<String>,
    /// Patient id and how it is listed.
    patient_filter: Option<(String, String)>,
    viewing: Option<MessageView>,
    /// The tasks a picker is open for.
    picking: Vec<String>,
    /// The message view whose time a billing question is open for.
    billing_asked: Option<String>,
}

fn priority_rank(p: &str) -> u8 {
    match p {
        "stat" => 0,
        "asap" => 1,
        "urgent" => 2,
        _ => 3,
    }
}

/// One step more urgent.
pub fn step_up(p: &str) -> &'static str {
    match p {
        "stat" | "asap" => "stat",
        "urgent" => "asap",
        _ => "urgent",
    }
}

/// `due in 14 m`, `late 2 h`, `due in 3 d`; counted in whole minutes of
/// the wall clock, so the text changes at most once a minute.
pub fn countdown(due: DateTime<Utc>, now: DateTime<Utc>) -> (String, bool) {
    let now = now
        .with_second(0)
        .and_then(|n| n.with_nanosecond(0))
        .unwrap_or(now);
    let minutes = (due - now).num_seconds().div_euclid(60);
    let span = |m: i64| {
        if m < 60 {
            format!("{m} m")
        } else if m < 48 * 60 {
            format!("{} h", m / 60)
        } else {
            format!("{} d", m / (24 * 60))
        }
    };
    match minutes {
        0 => ("due now".into(), false),
        m if m > 0 => (format!("due in {}", span(m)), false),
        m => (format!("late {}", span(-m)), true),
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// A row from a task; the patient as listed where the server included it.
fn row_of(t: &Task, names: &HashMap<&str, &PatientRow>) -> QueueRow {
    let patient_id = t.patient_id().map(str::to_string);
    let listed = patient_id.as_deref().and_then(|id| names.get(id).copied());
    let shown_ref = t
        .r#for
        .as_ref()
        .and_then(|r| r.display.clone().or_else(|| r.reference.clone()))
        .unwrap_or_default();
    let (patient_name, birth_date, record) = match listed {
        Some(p) => (p.name.clone(), p.birth_date.clone(), p.record_label()),
        None => (shown_ref, String::new(), "no identifier".to_string()),
    };
    let patient = format!("{patient_name} {birth_date} {record}");
    let raw = serde_json::to_value(t).unwrap_or_default();
    QueueRow {
        task_id: t.id.clone().unwrap_or_default(),
        priority: t.priority.clone().unwrap_or_else(|| "routine".into()),
        due: t.due().and_then(time::instant),
        due_text: t.due().unwrap_or_default().to_string(),
        patient_id,
        patient,
        patient_name,
        birth_date,
        record,
        category: t.category().unwrap_or("").to_string(),
        summary: t
            .description
            .clone()
            .or_else(|| t.code.as_ref().and_then(|c| c.label()).map(str::to_string))
            .unwrap_or_default(),
        status: t.status.clone().unwrap_or_default(),
        owner: t.owner.as_ref().and_then(|o| o.reference.clone()),
        owner_name: t.owner.as_ref().and_then(|o| o.display.clone()),
        queue: t
            .performer_type
            .iter()
            .find_map(|c| c.code_in(codes::ROLE_SYSTEM))
            .unwrap_or("")
            .to_string(),
        version: str_at(&raw, "/meta/versionId").map(str::to_string),
        message: str_at(&raw, "/focus/reference")
            .filter(|r| r.starts_with("Communication/"))
            .map(str::to_string),
        raw,
    }
}

/// What the pane needs to know about who is signed in.
struct Me<'a> {
    reference: Option<&'a str>,
    name: Option<&'a str>,
}

impl<'a> Me<'a> {
    fn of(view: &View<'a>) -> Me<'a> {
        Me {
            reference: view.notes.practitioner.as_deref(),
            name: view.user,
        }
    }

    fn as_reference(&self) -> Option<Value> {
        let r = self.reference?;
        Some(match self.name {
            Some(n) => json!({"reference": r, "display": n}),
            None => json!({"reference": r}),
        })
    }
}

/// `Task.note`: who, when, what and why.
fn add_note(task: &mut Value, me: &Me, now: DateTime<Utc>, text: &str) {
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // Every change to a task is dated on it too (the queue figures read it).
    task["lastModified"] = json!(stamp);
    let mut note = json!({"time": stamp, "text": text});
    match (me.as_reference(), me.name) {
        (Some(r), _) => note["authorReference"] = r,
        (None, Some(n)) => note["authorString"] = json!(n),
        (None, None) => note["authorString"] = json!("unknown user"),
    }
    match task.get_mut("note").and_then(Value::as_array_mut) {
        Some(list) => list.push(note),
        None => task["note"] = json!([note]),
    }
}

fn set_queue(task: &mut Value, queue: &str) {
    task["performerType"] = json!([{"coding": [{"system": codes::ROLE_SYSTEM, "code": queue}]}]);
    // Back in a queue: nobody has it until someone there claims it.
    if let Some(o) = task.as_object_mut() {
        o.remove("owner");
    }
    task["status"] = json!("requested");
}

/// Reply templates: the embedded defaults.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplyTemplate {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub categories: Vec<String>,
    pub text: String,
}

#[derive(Deserialize)]
struct ReplyFile {
    reply: Vec<ReplyTemplate>,
}

pub fn reply_templates() -> Vec<ReplyTemplate> {
    toml::from_str::<ReplyFile>(include_str!("../../../templates/replies.toml"))
        .map(|f| f.reply)
        .unwrap_or_default()
}

/// Dispositions offered when closing a task, the likely ones first.
fn dispositions(category: &str) -> Vec<&'static str> {
    let first: &[&str] = match category {
        "refill" => &[
            "Refill sent to the pharmacy",
            "Refill declined: visit needed",
        ],
        "scheduling" => &["Appointment booked"],
        "results" => &["Result explained to the patient"],
        "billing" => &["Billing question answered"],
        "clinical" | "urgent" => &[
            "Advice given; patient to call if worse",
            "Sent to urgent care / ED",
        ],
        _ => &[],
    };
    let mut out: Vec<&str> = first.to_vec();
    out.extend([
        "Answered the patient",
        "No action needed",
        "Duplicate of another message",
    ]);
    out
}

/// Queues offered for routing, the likely ones first, the task's own left out.
fn route_choices(category: &str, current: &str) -> Vec<&'static str> {
    let first: &[&str] = match category {
        "refill" | "results" => &["attending", "resident"],
        "scheduling" => &["frontdesk"],
        "billing" => &["billing"],
        "clinical" | "urgent" => &["attending", "oncall"],
        "review" => &["nurse"],
        _ => &[],
    };
    let mut out: Vec<&str> = first.to_vec();
    for q in ALL_QUEUES {
        if !out.contains(&q) {
            out.push(q);
        }
    }
    out.retain(|q| *q != current);
    out
}

const ESCALATION_REASONS: [&str; 5] = [
    "Red flag in the message",
    "Symptoms getting worse",
    "Needs a prescriber's decision",
    "Outside nursing scope",
    "Patient asks for a physician",
];

fn queue_label(q: &str) -> &'static str {
    match q {
        "attending" => "Attending physicians",
        "resident" => "Residents",
        "nurse" => "Nurses",
        "frontdesk" => "Front desk",
        "billing" => "Billing",
        "oncall" => "On call (after hours)",
        "review" => "Review (did not fit the intake)",
        _ => "Queue",
    }
}

/// A new due time: `+1h`, `+4h`, `tomorrow`, `monday` (08:00 in the
/// clinician's zone), or typed: `+30m`, `+2h`, `+3d`, `14:00` (today, or
/// tomorrow once past), `2026-11-24 08:00`.
pub fn defer_until(pick: &str, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&tz);
    let at_eight = |d: chrono::NaiveDate| {
        tz.from_local_datetime(&d.and_time(NaiveTime::from_hms_opt(8, 0, 0)?))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    let p = pick.trim().to_lowercase();
    match p.as_str() {
        "tomorrow" => return at_eight(local.date_naive().succ_opt()?),
        "monday" => {
            let mut d = local.date_naive().succ_opt()?;
            while d.weekday() != Weekday::Mon {
                d = d.succ_opt()?;
            }
            return at_eight(d);
        }
        _ => {}
    }
    if let Some(rest) = p.strip_prefix('+') {
        let rest = rest.trim();
        let split = rest.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = rest.split_at(split);
        let n: i64 = n.parse().ok()?;
        let d = match unit.trim() {
            "m" | "min" | "mins" | "minutes" => Duration::minutes(n),
            "h" | "hr" | "hrs" | "hour" | "hours" => Duration::hours(n),
            "d" | "day" | "days" => Duration::days(n),
            _ => return None,
        };
        return Some(now + d);
    }
    if let Ok(t) = NaiveTime::parse_from_str(&p, "%H:%M") {
        let today = tz
            .from_local_datetime(&local.date_naive().and_time(t))
            .earliest()?
            .with_timezone(&Utc);
        return Some(if today > now {
            today
        } else {
            today + Duration::days(1)
        });
    }
    let dt = chrono::NaiveDateTime::parse_from_str(&p, "%Y-%m-%d %H:%M").ok()?;
    tz.from_local_datetime(&dt)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl TasksPane {
    pub fn rows(&self) -> &[QueueRow] {
        &self.rows
    }

    /// Indexes of the rows the filters leave.
    fn visible(&self) -> Vec<usize> {
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                self.category_filter
                    .as_ref()
                    .is_none_or(|c| &r.category == c)
                    && self
                        .patient_filter
                        .as_ref()
                        .is_none_or(|(id, _)| r.patient_id.as_ref() == Some(id))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The rows shown, in order.
    pub fn shown(&self) -> Vec<&QueueRow> {
        self.visible().into_iter().map(|i| &self.rows[i]).collect()
    }

    pub fn selected_row(&self) -> Option<&QueueRow> {
        let v = self.visible();
        v.get(self.selected).map(|&i| &self.rows[i])
    }

    pub fn marked(&self) -> &BTreeSet<String> {
        &self.marked
    }

    pub fn viewing(&self) -> Option<&MessageView> {
        self.viewing.as_ref()
    }

    fn row(&self, id: &str) -> Option<&QueueRow> {
        self.rows.iter().find(|r| r.task_id == id)
    }

    fn select_id(&mut self, id: Option<&str>) {
        let v = self.visible();
        if let Some(pos) = id.and_then(|id| v.iter().position(|&i| self.rows[i].task_id == id)) {
            self.selected = pos;
        }
        self.selected = self.selected.min(v.len().saturating_sub(1));
    }

    fn sort(&mut self) {
        // STAT and urgent first, then by due time (the standard `period`
        // search is not the due time: sorted here).
        self.rows.sort_by(|a, b| {
            (
                priority_rank(&a.priority),
                a.due.is_none(),
                a.due,
                &a.task_id,
            )
                .cmp(&(
                    priority_rank(&b.priority),
                    b.due.is_none(),
                    b.due,
                    &b.task_id,
                ))
        });
    }

    /// Replace (first page) or extend (next pages) the queue; the selected
    /// task stays selected (by id) and marks stay on the tasks still listed.
    pub fn load(&mut self, tasks: &[Task], patients: &[PatientRow], append: bool) {
        let names: HashMap<&str, &PatientRow> =
            patients.iter().map(|p| (p.id.as_str(), p)).collect();
        let keep = self.selected_row().map(|r| r.task_id.clone());
        if !append {
            self.rows.clear();
        }
        for t in tasks.iter().filter(|t| t.is_open()) {
            let row = row_of(t, &names);
            // A later page may repeat a task a refresh moved.
            self.rows.retain(|r| r.task_id != row.task_id);
            self.rows.push(row);
        }
        self.sort();
        let ids: BTreeSet<&str> = self.rows.iter().map(|r| r.task_id.as_str()).collect();
        self.marked.retain(|m| ids.contains(m.as_str()));
        if !append && keep.is_none() {
            self.selected = 0;
        }
        self.select_id(keep.as_deref());
        self.state = QueueState::Loaded;
    }

    /// A task as the server now holds it: its row is updated, or leaves
    /// the list when it is closed or in a queue this role does not work.
    fn task_now(&mut self, task: Value, view: &View) {
        let Ok(t) = serde_json::from_value::<Task>(task) else {
            return;
        };
        let Some(id) = t.id.clone() else { return };
        let keep = self.selected_row().map(|r| r.task_id.clone());
        let mine = view.role.map(|r| r.queues()).unwrap_or(&[]);
        let old = self.rows.iter().position(|r| r.task_id == id);
        let queue = t
            .performer_type
            .iter()
            .find_map(|c| c.code_in(codes::ROLE_SYSTEM))
            .unwrap_or("");
        let stays = t.is_open() && mine.contains(&queue);
        match (old, stays) {
            (Some(i), true) => {
                let before = self.rows[i].clone();
                let listed = PatientRow {
                    id: before.patient_id.clone().unwrap_or_default(),
                    name: before.patient_name.clone(),
                    gender: "",
                    birth_date: before.birth_date.clone(),
                    mrn: String::new(),
                    mrn_is_other_id: false,
                    deceased: None,
                };
                let names: HashMap<&str, &PatientRow> = [(listed.id.as_str(), &listed)].into();
                let mut row = row_of(&t, &names);
                row.record = before.record.clone();
                row.patient = before.patient.clone();
                self.rows[i] = row;
            }
            (Some(i), false) => {
                self.rows.remove(i);
                self.marked.remove(&id);
                if self.viewing.as_ref().is_some_and(|v| v.task_id == id) {
                    self.viewing = None;
                }
            }
            (None, _) => {}
        }
        self.sort();
        self.select_id(keep.as_deref());
    }

    /// The tasks an action is for: the one in the message view, else the
    /// marked ones, else the selected one.
    fn targets(&self) -> Vec<QueueRow> {
        if let Some(v) = &self.viewing {
            return self.row(&v.task_id).cloned().into_iter().collect();
        }
        if !self.marked.is_empty() {
            // Only what is on screen: a task marked before a filter hid it
            // is not acted on unseen.
            return self
                .shown()
                .into_iter()
                .filter(|r| self.marked.contains(&r.task_id))
                .cloned()
                .collect();
        }
        self.selected_row().cloned().into_iter().collect()
    }

    /// Select the first row after the selection that the action leaves
    /// alone (the next task to work).
    fn move_past(&mut self, ids: &[String]) {
        if self.viewing.is_some() {
            return;
        }
        let v = self.visible();
        let next = v
            .iter()
            .skip(self.selected + 1)
            .chain(v.iter().take(self.selected).rev())
            .map(|&i| &self.rows[i].task_id)
            .find(|id| !ids.contains(id))
            .cloned();
        if let Some(id) = next {
            self.select_id(Some(&id));
        }
    }

    fn change(row: &QueueRow, resource: Value) -> TaskChange {
        TaskChange {
            task_id: row.task_id.clone(),
            label: row.patient_name.clone(),
            resource,
            version: row.version.clone(),
        }
    }

    /// Build the changes an action makes, and move on to the next task.
    fn act(
        &mut self,
        what: &str,
        targets: Vec<QueueRow>,
        view: &View,
        edit: impl Fn(&QueueRow, &mut Value, &Me),
    ) -> Vec<Command> {
        let me = Me::of(view);
        let changes: Vec<TaskChange> = targets
            .iter()
            .map(|r| {
                let mut t = r.raw.clone();
                edit(r, &mut t, &me);
                Self::change(r, t)
            })
            .collect();
        let ids: Vec<String> = targets.iter().map(|r| r.task_id.clone()).collect();
        self.marked.clear();
        self.move_past(&ids);
        if changes.is_empty() {
            return Vec::new();
        }
        vec![Command::UpdateTasks {
            what: what.to_string(),
            changes,
        }]
    }

    fn claim(&mut self, view: &View) -> Vec<Command> {
        let me = Me::of(view);
        if me.reference.is_none() {
            return vec![Command::Notify(
                "Not claimed: the server has not said which practitioner you are".into(),
            )];
        }
        let (mine, targets): (Vec<QueueRow>, Vec<QueueRow>) = self
            .targets()
            .into_iter()
            .partition(|r| r.is_mine(me.reference));
        if targets.is_empty() {
            return match mine.len() {
                0 => Vec::new(),
                _ => vec![Command::Notify("You already have that task".into())],
            };
        }
        let held: Vec<&QueueRow> = targets.iter().filter(|r| r.owner.is_some()).collect();
        if let Some(first) = held.first() {
            // Someone is working it: taking it over is asked, never done
            // on one key.
            self.taking_over = targets.iter().map(|r| r.task_id.clone()).collect();
            let who = if held.len() == 1 {
                format!("{} has {}", first.owner_label(None), first.patient_name)
            } else {
                format!("{} of these tasks are with someone else", held.len())
            };
            return vec![Command::Confirm {
                question: format!("{who}. Take over? y / n"),
                yes: Action::TakeOver,
            }];
        }
        self.claim_rows(targets, view)
    }

    /// Claim these rows (asked first where someone else had them).
    fn claim_rows(&mut self, targets: Vec<QueueRow>, view: &View) -> Vec<Command> {
        let now = view.now;
        self.act("Claimed", targets, view, |r, t, me| {
            if let Some(o) = me.as_reference() {
                t["owner"] = o;
            }
            t["status"] = json!("in-progress");
            let text = match &r.owner {
                Some(_) => format!("Claimed (was with {})", r.owner_label(None)),
                None => "Claimed".to_string(),
            };
            add_note(t, me, now, &text);
        })
    }

    fn ask(&mut self, spec: PickerSpec) -> Vec<Command> {
        let targets = self.targets();
        if targets.is_empty() {
            return Vec::new();
        }
        self.picking = targets.iter().map(|r| r.task_id.clone()).collect();
        vec![Command::Pick(spec)]
    }

    fn picked_rows(&mut self) -> Vec<QueueRow> {
        let ids = std::mem::take(&mut self.picking);
        ids.iter().filter_map(|id| self.row(id).cloned()).collect()
    }

    fn count_suffix(n: usize) -> String {
        if n > 1 {
            format!(" ({n} tasks)")
        } else {
            String::new()
        }
    }

    fn on_picked(&mut self, purpose: PickFor, pick: Pick, view: &View) -> Vec<Command> {
        let now = view.now;
        match purpose {
            PickFor::FilterCategory => {
                self.category_filter = (!pick.value.is_empty()).then_some(pick.value);
                self.selected = 0;
                Vec::new()
            }
            PickFor::FilterPatient => {
                self.patient_filter = (!pick.value.is_empty()).then(|| {
                    let label = self
                        .rows
                        .iter()
                        .find(|r| r.patient_id.as_deref() == Some(pick.value.as_str()))
                        .map(|r| r.patient_name.clone())
                        .unwrap_or_default();
                    (pick.value, label)
                });
                self.selected = 0;
                Vec::new()
            }
            PickFor::Route => {
                let targets = self.picked_rows();
                let queue = pick.value;
                self.viewing = None;
                // Into a queue of my own (a review item into the nurse
                // queue): I keep working it, so it stays mine; into
                // another role's queue it waits there for whoever takes it.
                let keep = view
                    .role
                    .is_some_and(|role| role.queues().contains(&queue.as_str()));
                self.act(&format!("Routed to {queue}"), targets, view, |r, t, me| {
                    set_queue(t, &queue);
                    let mut text =
                        format!("Routed from the {} queue to the {queue} queue", r.queue);
                    if keep && let Some(o) = me.as_reference() {
                        t["owner"] = o;
                        t["status"] = json!("in-progress");
                        text.push_str(", kept by the one who routed it");
                    }
                    add_note(t, me, now, &text);
                })
            }
            PickFor::Escalate => {
                let targets = self.picked_rows();
                let reason = pick.value;
                self.viewing = None;
                self.act("Escalated to a physician", targets, view, |r, t, me| {
                    set_queue(t, "attending");
                    let up = step_up(&r.priority);
                    t["priority"] = json!(up);
                    add_note(
                        t,
                        me,
                        now,
                        &format!(
                            "Escalated to a physician (priority {} → {up}): {reason}",
                            r.priority
                        ),
                    );
                })
            }
            PickFor::Complete => {
                let targets = self.picked_rows();
                let disposition = pick.value;
                self.viewing = None;
                self.act("Completed", targets, view, |_, t, me| {
                    t["status"] = json!("completed");
                    t["businessStatus"] = json!({"text": disposition});
                    if t.get("owner").is_none()
                        && let Some(o) = me.as_reference()
                    {
                        t["owner"] = o;
                    }
                    add_note(t, me, now, &format!("Completed: {disposition}"));
                })
            }
            PickFor::Defer => {
                let Some(until) = defer_until(&pick.value, now, view.prefs.tz) else {
                    self.picking.clear();
                    return vec![Command::Notify(format!(
                        "Not deferred: \"{}\" is not a time (try +2h, 14:00 or 2026-11-24 08:00)",
                        pick.value
                    ))];
                };
                if until <= now {
                    self.picking.clear();
                    return vec![Command::Notify("Not deferred: that time has passed".into())];
                }
                let targets = self.picked_rows();
                let shown = until
                    .with_timezone(&view.prefs.tz)
                    .format("%a %b %d %H:%M")
                    .to_string();
                let why = if pick.typed {
                    format!("Deferred to {shown} (typed: {})", pick.value)
                } else {
                    format!("Deferred to {shown}")
                };
                let stamp = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                self.act(
                    &format!("Deferred to {shown}"),
                    targets,
                    view,
                    |_, t, me| {
                        t["restriction"]["period"]["end"] = json!(stamp);
                        add_note(t, me, now, &why);
                    },
                )
            }
            PickFor::Reply => {
                let targets = self.picked_rows();
                let templates = reply_templates();
                let (title, text) = match templates.iter().find(|t| t.name == pick.value) {
                    Some(t) if !pick.typed => (t.title.clone(), t.text.clone()),
                    _ => ("typed reply".to_string(), pick.value.clone()),
                };
                let me = Me::of(view);
                let replies: Vec<TaskReply> = targets
                    .iter()
                    .filter_map(|r| {
                        let pid = r.patient_id.as_ref()?;
                        let body = text.replace("{first}", &r.first_name());
                        let mut comm = json!({
                            "resourceType": "Communication",
                            "status": "completed",
                            "category": [{"coding": [{"system": codes::TASK_CATEGORY_SYSTEM,
                                "code": if r.category.is_empty() { "clinical" } else { r.category.as_str() }}]}],
                            "subject": {"reference": format!("Patient/{pid}"), "display": r.patient_name},
                            "recipient": [{"reference": format!("Patient/{pid}"), "display": r.patient_name}],
                            "sent": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            "payload": [{"contentString": body}],
                        });
                        if let Some(m) = &r.message {
                            comm["inResponseTo"] = json!([{"reference": m}]);
                        }
                        let mut t = r.raw.clone();
                        if t.get("owner").is_none()
                            && let Some(o) = me.as_reference()
                        {
                            t["owner"] = o;
                            t["status"] = json!("in-progress");
                        }
                        add_note(&mut t, &me, now, &format!("Replied to the patient: {title}"));
                        Some(TaskReply {
                            communication: comm,
                            task: Self::change(r, t),
                        })
                    })
                    .collect();
                let ids: Vec<String> = targets.iter().map(|r| r.task_id.clone()).collect();
                self.marked.clear();
                self.move_past(&ids);
                if replies.is_empty() {
                    return vec![Command::Notify(
                        "No reply sent: the task names no patient".into(),
                    )];
                }
                vec![Command::ReplyTasks { replies }]
            }
        }
    }

    fn picker(&mut self, action: Action, view: &View) -> Vec<Command> {
        let Some(first) = self.targets().into_iter().next() else {
            return Vec::new();
        };
        let n = self.targets().len();
        let suffix = Self::count_suffix(n);
        let spec = match action {
            Action::Route => PickerSpec {
                purpose: PickFor::Route,
                title: format!("Route to which queue?{suffix}"),
                choices: route_choices(&first.category, &first.queue)
                    .into_iter()
                    .map(|q| PickChoice::new(format!("{q} · {}", queue_label(q)), q))
                    .collect(),
                typed: None,
            },
            Action::Escalate => PickerSpec {
                purpose: PickFor::Escalate,
                title: format!("Escalate to a physician: why?{suffix}"),
                choices: ESCALATION_REASONS
                    .iter()
                    .map(|r| PickChoice::new(*r, *r))
                    .collect(),
                typed: Some("the reason".into()),
            },
            Action::Complete => PickerSpec {
                purpose: PickFor::Complete,
                title: format!("Complete: disposition{suffix}"),
                choices: dispositions(&first.category)
                    .into_iter()
                    .map(|d| PickChoice::new(d, d))
                    .collect(),
                typed: Some("a disposition".into()),
            },
            Action::Defer => {
                let tz = view.prefs.tz;
                let label = |key: &str, text: &str| {
                    let when = defer_until(key, view.now, tz)
                        .map(|t| t.with_timezone(&tz).format(" (%a %H:%M)").to_string())
                        .unwrap_or_default();
                    PickChoice::new(format!("{text}{when}"), key)
                };
                PickerSpec {
                    purpose: PickFor::Defer,
                    title: format!("Defer until?{suffix}"),
                    choices: vec![
                        label("+1h", "In 1 hour"),
                        label("+4h", "In 4 hours"),
                        label("tomorrow", "Tomorrow 08:00"),
                        label("monday", "Next Monday 08:00"),
                    ],
                    typed: Some("+2h, 14:00 or 2026-11-24 08:00".into()),
                }
            }
            Action::Reply => {
                let mut templates = reply_templates();
                // The ones written for this kind of message first.
                templates.sort_by_key(|t| {
                    (
                        !t.categories.iter().any(|c| c == &first.category),
                        t.categories.is_empty(),
                    )
                });
                PickerSpec {
                    purpose: PickFor::Reply,
                    title: format!("Reply to {}{suffix}", first.patient_name),
                    choices: templates
                        .iter()
                        .map(|t| PickChoice::new(t.title.clone(), t.name.clone()))
                        .collect(),
                    typed: Some("your own reply".into()),
                }
            }
            _ => return Vec::new(),
        };
        self.ask(spec)
    }

    fn filter_picker(&mut self, action: Action) -> Vec<Command> {
        let spec = if action == Action::FilterCategory {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &self.rows {
                *counts.entry(r.category.as_str()).or_default() += 1;
            }
            let mut choices = vec![PickChoice::new(
                format!("All categories ({})", self.rows.len()),
                "",
            )];
            choices.extend(
                counts
                    .iter()
                    .filter(|(c, _)| !c.is_empty())
                    .map(|(c, n)| PickChoice::new(format!("{c} ({n})"), *c)),
            );
            PickerSpec {
                purpose: PickFor::FilterCategory,
                title: "Show which category?".into(),
                choices,
                typed: None,
            }
        } else {
            // The selected task's patient first.
            let mut seen = BTreeSet::new();
            let mut choices = Vec::new();
            let first = self.selected_row().cloned();
            for r in first.iter().chain(self.rows.iter()) {
                if let Some(id) = &r.patient_id
                    && seen.insert(id.clone())
                {
                    choices.push(PickChoice::new(r.patient.clone(), id.clone()));
                }
            }
            choices.push(PickChoice::new("All patients", ""));
            PickerSpec {
                purpose: PickFor::FilterPatient,
                title: "Show the tasks of which patient?".into(),
                choices,
                typed: None,
            }
        };
        vec![Command::Pick(spec)]
    }

    /// The open message's time, ready to bill (a physician's, the
    /// earlier time read, the patient's).
    fn billable(&self, view: &View) -> Result<(Value, String, String), String> {
        let Some(v) = &self.viewing else {
            return Err("Open a patient's message (Enter) to record its time for billing".into());
        };
        if !bills_time(view.role) {
            return Err(
                "Not recorded: CPT 99421–99423 are billed for a physician's time \
                 (attending or resident)"
                    .into(),
            );
        }
        let Some(r) = self.row(&v.task_id) else {
            return Err("Not recorded: that task has left the queue".into());
        };
        let Some(w) = view
            .work
            .filter(|w| v.patient_id.as_deref() == Some(w.patient_id.as_str()))
        else {
            return Err("Not recorded: no time is counted for this patient".into());
        };
        match &w.read {
            None => return Err("Not recorded yet: the earlier time is still being read".into()),
            Some(Err(e)) => {
                return Err(format!(
                    "Not recorded: the earlier time could not be read ({e})"
                ));
            }
            Some(Ok(_)) => {}
        }
        billing_task(r, w, view)
    }

    fn ask_billing(&mut self, view: &View) -> Vec<Command> {
        match self.billable(view) {
            Ok((task, _, _)) => {
                self.billing_asked = self.viewing.as_ref().map(|v| v.task_id.clone());
                let what = task["description"].as_str().unwrap_or("").to_string();
                let who = self
                    .viewing
                    .as_ref()
                    .and_then(|v| self.row(&v.task_id))
                    .map(|r| r.patient.clone())
                    .unwrap_or_default();
                vec![Command::Confirm {
                    question: format!("Record for billing: {what}, for {who}? y / n"),
                    yes: Action::RecordBillingNow,
                }]
            }
            Err(why) => vec![Command::Notify(why)],
        }
    }

    fn record_billing(&mut self, view: &View) -> Vec<Command> {
        let asked = self.billing_asked.take();
        if asked.is_none() || asked != self.viewing.as_ref().map(|v| v.task_id.clone()) {
            return vec![Command::Notify(
                "Not recorded: the message view changed meanwhile".into(),
            )];
        }
        match self.billable(view) {
            Ok((task, client_id, label)) => vec![Command::RecordBilling {
                task,
                client_id,
                label,
            }],
            Err(why) => vec![Command::Notify(why)],
        }
    }

    fn title(&self, view: &View) -> String {
        let me = Me::of(view).reference;
        let mut t = "5 Tasks".to_string();
        let queues: Vec<&str> = view.role.map(|r| r.queues().to_vec()).unwrap_or_default();
        for q in &queues {
            let n = self.rows.iter().filter(|r| &r.queue == q).count();
            t.push_str(&format!(" · {q} {n}"));
        }
        let mine = self.rows.iter().filter(|r| r.is_mine(me)).count();
        t.push_str(&format!(" · mine {mine}"));
        if let Some(c) = &self.category_filter {
            t.push_str(&format!(" · only {c}"));
        }
        if let Some((_, name)) = &self.patient_filter {
            t.push_str(&format!(" · only {}", fit(name, 24)));
        }
        if !self.marked.is_empty() {
            t.push_str(&format!(" · {} marked", self.marked.len()));
        }
        t
    }
}

impl Pane for TasksPane {
    fn id(&self) -> PaneId {
        PaneId::Tasks
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command> {
        if let Some(v) = &mut self.viewing {
            match action {
                Action::MoveDown => v.scroll = v.scroll.saturating_add(1),
                Action::MoveUp => v.scroll = v.scroll.saturating_sub(1),
                Action::PageDown => v.scroll = v.scroll.saturating_add(10),
                Action::PageUp => v.scroll = v.scroll.saturating_sub(10),
                Action::GoTop => v.scroll = 0,
                Action::Back | Action::Cancel => self.viewing = None,
                _ => {}
            }
            if matches!(
                action,
                Action::MoveDown
                    | Action::MoveUp
                    | Action::PageDown
                    | Action::PageUp
                    | Action::GoTop
                    | Action::Back
                    | Action::Cancel
            ) {
                return Vec::new();
            }
        }
        let len = self.visible().len();
        if let Some(s) = navigate(action, self.selected, len, self.page_rows) {
            self.selected = s;
            return Vec::new();
        }
        match action {
            Action::Open => match self.selected_row().cloned() {
                Some(r) => {
                    self.viewing = Some(MessageView {
                        task_id: r.task_id.clone(),
                        patient_id: r.patient_id.clone(),
                        ..MessageView::default()
                    });
                    match r.patient_id {
                        Some(patient_id) => vec![Command::LoadThread { patient_id }],
                        None => {
                            if let Some(v) = &mut self.viewing {
                                v.thread = Some(Err("the task names no patient".into()));
                            }
                            Vec::new()
                        }
                    }
                }
                None => Vec::new(),
            },
            Action::OpenChart => {
                let row = match &self.viewing {
                    Some(v) => self.row(&v.task_id).cloned(),
                    None => self.selected_row().cloned(),
                };
                match row {
                    Some(QueueRow {
                        patient_id: Some(id),
                        patient_name,
                        ..
                    }) => vec![Command::OpenPatient {
                        id,
                        name: patient_name,
                    }],
                    _ => Vec::new(),
                }
            }
            Action::Mark => {
                if let Some(id) = self.selected_row().map(|r| r.task_id.clone())
                    && !self.marked.remove(&id)
                {
                    self.marked.insert(id);
                }
                self.selected = (self.selected + 1).min(len.saturating_sub(1));
                Vec::new()
            }
            Action::Claim => self.claim(view),
            Action::TakeOver => {
                let ids = std::mem::take(&mut self.taking_over);
                let rows: Vec<QueueRow> =
                    ids.iter().filter_map(|id| self.row(id).cloned()).collect();
                if rows.is_empty() {
                    return vec![Command::Notify(
                        "Not claimed: those tasks have left the queue meanwhile".into(),
                    )];
                }
                self.claim_rows(rows, view)
            }
            Action::Route | Action::Escalate | Action::Complete | Action::Defer | Action::Reply => {
                self.picker(action, view)
            }
            Action::FilterCategory | Action::FilterPatient => self.filter_picker(action),
            Action::ClearFilters => {
                self.category_filter = None;
                self.patient_filter = None;
                self.marked.clear();
                Vec::new()
            }
            Action::Refresh => vec![Command::LoadQueue],
            Action::RecordBilling => self.ask_billing(view),
            Action::RecordBillingNow => self.record_billing(view),
            Action::Sign => match self.selected_row().cloned() {
                Some(r) if r.category == codes::TASK_COSIGN => {
                    // The answer co-signs this task, whatever the queue
                    // does meanwhile (a reload re-sorts the rows).
                    self.confirming = Some(r.task_id.clone());
                    vec![Command::Confirm {
                        question: format!(
                            "Co-sign the {} of {}? y / n",
                            crate::notes::lower_first(r.summary.trim_start_matches("Co-sign: ")),
                            r.patient
                        ),
                        yes: Action::SignNow,
                    }]
                }
                Some(_) => vec![Command::Notify(
                    "Only a co-signature task is signed from the queue".into(),
                )],
                None => Vec::new(),
            },
            Action::SignNow => {
                let asked = self.confirming.take();
                match self
                    .rows
                    .iter()
                    .find(|r| Some(&r.task_id) == asked.as_ref())
                {
                    Some(r) if r.category == codes::TASK_COSIGN => {
                        vec![Command::CoSign {
                            task: r.raw.clone(),
                        }]
                    }
                    Some(_) => Vec::new(),
                    None => vec![Command::Notify(
                        "Not co-signed: that task has left the queue meanwhile".into(),
                    )],
                }
            }
            Action::RawView => match self.selected_row() {
                Some(r) => vec![Command::ShowRaw {
                    title: "Raw FHIR: task".into(),
                    items: vec![(format!("Task {}", r.task_id), r.raw.clone())],
                }],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: PaneReply, view: &View) -> Vec<Command> {
        match reply {
            PaneReply::Queue {
                tasks,
                patients,
                append,
            } => self.load(&tasks, &patients, append),
            // A failed background refresh keeps what is on screen.
            PaneReply::QueueFailed(why) if self.state != QueueState::Loaded => {
                self.state = QueueState::Failed(why)
            }
            PaneReply::TaskNow(task) => self.task_now(task, view),
            PaneReply::Thread { patient_id, result } => {
                if let Some(v) = &mut self.viewing
                    && v.patient_id.as_deref() == Some(patient_id.as_str())
                {
                    match result {
                        Ok((messages, more)) => {
                            v.thread = Some(Ok(messages));
                            v.more = more;
                        }
                        Err(e) => v.thread = Some(Err(e)),
                    }
                }
            }
            PaneReply::Picked(purpose, pick) => return self.on_picked(purpose, pick, view),
            _ => {}
        }
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        if self.viewing.is_some() {
            &[
                Action::Back,
                Action::Claim,
                Action::Reply,
                Action::Complete,
                Action::OpenChart,
            ]
        } else {
            &[
                Action::Open,
                Action::Claim,
                Action::Route,
                Action::Reply,
                Action::Complete,
                Action::Mark,
            ]
        }
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let title = self.title(view);
        let block = pane_block(&title, view);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let theme = view.theme;
        if let Some(v) = &self.viewing {
            let lines = match self.row(&v.task_id) {
                Some(r) => message_lines(r, v, view),
                None => vec![Line::from("That task has left the queue.")],
            };
            frame.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .scroll((v.scroll, 0)),
                inner,
            );
            return;
        }
        let msg = match &self.state {
            QueueState::NotLoaded => Some("The queue has not been loaded.".to_string()),
            QueueState::Loading => Some("Loading the queue…".to_string()),
            QueueState::NoRole => Some(
                "No role is known for this sign-in, so there is no queue to show \
                 (this server does not say who you are)."
                    .to_string(),
            ),
            QueueState::Failed(e) => Some(format!("The queue is not available: {e}")),
            QueueState::Loaded if self.rows.is_empty() => Some("Nothing in the queue.".to_string()),
            QueueState::Loaded if self.visible().is_empty() => {
                Some("No task matches the filter (F shows the whole queue).".to_string())
            }
            QueueState::Loaded => None,
        };
        if let Some(m) = msg {
            frame.render_widget(placeholder(theme.dim, &m), inner);
            return;
        }
        let visible_rows = inner.height.saturating_sub(1) as usize;
        self.page_rows = visible_rows.max(1);
        self.offset = window_offset(self.selected, self.offset, visible_rows);
        // Narrow screens drop status and category (the summary names
        // it) and shorten the owner, so the patient's name, birth date and
        // full record number keep their room.
        let narrow = inner.width < 100;
        // The category column only where the summary keeps room for a
        // sentence: the summary starts with it ("Refill: …") anyway.
        let with_category = inner.width >= 140;
        let shown = self.visible();
        // The patient's column takes what its longest entry needs (name,
        // birth date, record number), leaving the summary some room.
        let fixed: u16 = if narrow {
            1 + 4 + 11 + 6 + 5
        } else if with_category {
            1 + 7 + 12 + 11 + 14 + 10 + 7
        } else {
            1 + 7 + 12 + 11 + 14 + 6
        };
        let need = shown
            .iter()
            .map(|&i| patient_width(&self.rows[i]))
            .max()
            .unwrap_or(24) as u16;
        // The summary keeps room for a few words; a long name is cut
        // before the birth date and record number are.
        let summary_min = if narrow { 14 } else { 24 };
        let patient_w = need
            .min(inner.width.saturating_sub(fixed + summary_min))
            .max(20);
        let widths: Vec<Constraint> = if narrow {
            vec![
                Constraint::Length(1),
                Constraint::Length(4),
                Constraint::Length(11),
                Constraint::Length(6),
                Constraint::Length(patient_w),
                Constraint::Fill(1),
            ]
        } else {
            vec![
                Constraint::Length(1),
                Constraint::Length(7),
                Constraint::Length(12),
                Constraint::Length(11),
                Constraint::Length(14),
                Constraint::Length(patient_w),
            ]
            .into_iter()
            .chain(with_category.then_some(Constraint::Length(10)))
            .chain([Constraint::Fill(1)])
            .collect()
        };
        let cols = table_column_widths(inner.width, 0, &widths);
        let col = |i: usize| cols.get(i).copied().unwrap_or(0);
        let me = Me::of(view).reference;
        let rows: Vec<Row> = shown[self.offset.min(shown.len())..]
            .iter()
            .take(visible_rows)
            .map(|&i| {
                let r = &self.rows[i];
                let (due_text, late) = match r.due {
                    Some(d) => countdown(d, view.now),
                    None => (r.due_text.chars().take(11).collect(), false),
                };
                let due = if late {
                    Span::styled(due_text, theme.overdue)
                } else {
                    Span::raw(due_text)
                };
                let pri_text = match (narrow, r.priority.as_str()) {
                    (true, "urgent") => "URG".to_string(),
                    (true, "routine") => "rtn".to_string(),
                    (_, p) if priority_rank(p) < 3 => p.to_uppercase(),
                    (_, p) => p.to_string(),
                };
                let pri = if priority_rank(&r.priority) < 3 {
                    Span::styled(pri_text, theme.alert_critical)
                } else {
                    Span::raw(pri_text)
                };
                let mark = if self.marked.contains(&r.task_id) {
                    Span::styled("●", theme.key_hint)
                } else {
                    Span::raw(" ")
                };
                let owner_col = if narrow { 3 } else { 4 };
                let owner_text = fit(&r.owner_label(me), col(owner_col));
                let owner = if r.is_mine(me) {
                    Span::styled(owner_text, theme.key_hint)
                } else {
                    Span::raw(owner_text)
                };
                let patient_col = if narrow { 4 } else { 5 };
                let mut cells = vec![Line::from(mark), Line::from(pri), Line::from(due)];
                if !narrow {
                    cells.push(Line::from(fit(&r.status, col(3))));
                }
                cells.push(Line::from(owner));
                cells.push(patient_cell(r, col(patient_col), theme.dim));
                if !narrow && with_category {
                    cells.push(Line::from(fit(&r.category, col(6))));
                }
                cells.push(Line::from(fit(&r.summary, col(cols.len() - 1))));
                Row::new(cells)
            })
            .collect();
        let header: Vec<&str> = if narrow {
            vec![
                "",
                "Pri",
                "Due",
                "Who",
                "Patient · born · record",
                "Summary",
            ]
        } else {
            [
                "",
                "Pri",
                "Due",
                "Status",
                "Who has it",
                "Patient · born · record",
            ]
            .into_iter()
            .chain(with_category.then_some("Category"))
            .chain(["Summary"])
            .collect()
        };
        let table =
            theme.selectable(Table::new(rows, widths).header(Row::new(header).style(theme.header)));
        let mut state =
            TableState::default().with_selected(Some(self.selected.saturating_sub(self.offset)));
        frame.render_stateful_widget(table, inner, &mut state);
    }
}

fn patient_ids(r: &QueueRow) -> String {
    if r.birth_date.is_empty() {
        format!(" {}", r.record)
    } else {
        format!(" {} {}", r.birth_date, r.record)
    }
}

fn patient_width(r: &QueueRow) -> usize {
    Span::raw(r.patient_name.as_str()).width() + Span::raw(patient_ids(r)).width()
}

/// Name (cut if it must be), birth date and record number (never cut).
fn patient_cell(r: &QueueRow, width: usize, dim: Style) -> Line<'static> {
    let ids = patient_ids(r);
    let ids_w = Span::raw(ids.as_str()).width();
    let room = width.saturating_sub(ids_w).max(4);
    Line::from(vec![
        Span::raw(fit(&r.patient_name, room)),
        Span::styled(ids, dim),
    ])
}

/// Structured answers of a message: `(label, value, alarming)`.
pub fn answers(message: &Value) -> Vec<(String, String, bool)> {
    let contained = message
        .get("contained")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| str_at(r, "/resourceType") == Some("QuestionnaireResponse"));
    let wanted = message
        .get("payload")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|p| str_at(p, "/contentReference/reference"))
        .map(|r| r.trim_start_matches('#').to_string());
    let qrs: Vec<&Value> = contained.collect();
    let qr = qrs
        .iter()
        .find(|q| wanted.is_some() && str_at(q, "/id") == wanted.as_deref())
        .or_else(|| qrs.first());
    let Some(qr) = qr else { return Vec::new() };
    let mut out = Vec::new();
    let mut flags = Vec::new();
    walk(qr.get("item"), &mut out, &mut flags);
    if !flags.is_empty() {
        let any = flags.iter().any(|(_, yes)| *yes);
        let text = flags
            .iter()
            .map(|(name, yes)| format!("{name} {}", if *yes { "YES" } else { "no" }))
            .collect::<Vec<_>>()
            .join(" · ");
        out.push(("Red flags".into(), text, any));
    }
    out
}

fn walk(
    items: Option<&Value>,
    out: &mut Vec<(String, String, bool)>,
    flags: &mut Vec<(String, bool)>,
) {
    for item in items.and_then(Value::as_array).into_iter().flatten() {
        let link = str_at(item, "/linkId").unwrap_or("");
        if link == "red-flags" {
            for f in item
                .get("item")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let id = str_at(f, "/linkId").unwrap_or("");
                let name = crate::triage::RED_FLAGS
                    .iter()
                    .find(|(l, _)| *l == id)
                    .map(|(_, n)| n.to_string())
                    .or_else(|| str_at(f, "/text").map(str::to_string))
                    .unwrap_or_else(|| id.to_string());
                let yes = f.pointer("/answer/0/valueBoolean").and_then(Value::as_bool);
                match yes {
                    Some(y) => flags.push((name, y)),
                    None => flags.push((format!("{name} (not answered)"), false)),
                }
            }
            continue;
        }
        let values: Vec<String> = item
            .get("answer")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(answer_text)
            .collect();
        if !values.is_empty() {
            let label = match link {
                "what" => "What".to_string(),
                "since" => "Since".to_string(),
                "severity" => "Severity".to_string(),
                "medication" => "Medication".to_string(),
                "pharmacy" => "Pharmacy".to_string(),
                "remaining" => "Remaining".to_string(),
                _ => str_at(item, "/text").unwrap_or(link).to_string(),
            };
            let mut value = values.join(", ");
            let mut alarming = false;
            if link == "severity" {
                alarming = value.parse::<f64>().is_ok_and(|v| v >= 7.0);
                value.push_str(" / 10");
            }
            out.push((label, value, alarming));
        }
        walk(item.get("item"), out, flags);
    }
}

fn answer_text(a: &Value) -> Option<String> {
    let o = a.as_object()?;
    for (k, v) in o {
        if !k.starts_with("value") {
            continue;
        }
        return Some(match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Object(_) => str_at(v, "/display")
                .or_else(|| str_at(v, "/code"))
                .or_else(|| str_at(v, "/value").or_else(|| str_at(v, "/reference")))
                .unwrap_or("")
                .to_string(),
            _ => continue,
        });
    }
    None
}

fn message_text(m: &Value) -> String {
    let parts: Vec<&str> = m
        .get("payload")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| str_at(p, "/contentString"))
        .collect();
    parts.join("\n")
}

fn from_patient(m: &Value) -> bool {
    str_at(m, "/sender/reference").is_some_and(|r| r.starts_with("Patient/"))
        || m.get("sender").is_none()
}

/// The message view: the task, the patient's message with its answers, then
/// the rest of the thread oldest first.
fn message_lines(r: &QueueRow, v: &MessageView, view: &View) -> Vec<Line<'static>> {
    let t = view.theme;
    let me = Me::of(view).reference;
    let mut lines = vec![Line::from(vec![
        Span::styled(r.patient_name.clone(), t.title),
        Span::raw("  "),
        Span::styled(
            format!(
                "DOB {}  {}",
                if r.birth_date.is_empty() {
                    "unknown"
                } else {
                    &r.birth_date
                },
                r.record
            ),
            t.header,
        ),
    ])];
    let (due, late) = match r.due {
        Some(d) => countdown(d, view.now),
        None => ("no due time".into(), false),
    };
    let pri_style = if priority_rank(&r.priority) < 3 {
        t.alert_critical
    } else {
        t.base
    };
    lines.push(Line::from(vec![
        Span::styled(r.priority.to_uppercase(), pri_style),
        Span::raw(" · "),
        Span::styled(due, if late { t.overdue } else { t.base }),
        Span::raw(format!(
            " · {} · {} · {} queue · has it: {}",
            r.category,
            r.status,
            r.queue,
            match r.owner_label(me).as_str() {
                "—" => "nobody".to_string(),
                o => o.to_string(),
            }
        )),
    ]));
    lines.push(Line::from(Span::styled(r.summary.clone(), t.dim)));
    if let Some(w) = view
        .work
        .filter(|w| v.patient_id.as_deref() == Some(w.patient_id.as_str()))
    {
        lines.push(work_line(w, view));
    }
    lines.push(Line::from(""));
    let messages = match &v.thread {
        None => {
            lines.push(Line::from(Span::styled("Loading the messages…", t.dim)));
            return lines;
        }
        Some(Err(e)) => {
            lines.push(Line::from(Span::styled(
                format!("The messages could not be read: {e}"),
                t.alert_critical,
            )));
            return lines;
        }
        Some(Ok(m)) => m,
    };
    let own_id = r
        .message
        .as_deref()
        .and_then(|m| m.strip_prefix("Communication/"));
    let own = messages
        .iter()
        .find(|m| own_id.is_some() && str_at(m, "/id") == own_id);
    match own {
        Some(m) => {
            let sent = str_at(m, "/sent").map(|s| view.when(s)).unwrap_or_default();
            lines.push(Line::from(Span::styled(
                format!("The patient's message · sent {sent}"),
                t.header,
            )));
            let text = message_text(m);
            let found = answers(m);
            if text.is_empty() && found.is_empty() {
                lines.push(Line::from(Span::styled("(no text)", t.dim)));
            }
            for l in text.lines() {
                lines.push(Line::from(format!("  {l}")));
            }
            if !found.is_empty() {
                lines.push(Line::from(Span::styled("Answers", t.header)));
                for (label, value, alarming) in found {
                    lines.push(Line::from(vec![
                        Span::raw(format!("  {label}: ")),
                        Span::styled(value, if alarming { t.alert_critical } else { t.base }),
                    ]));
                }
            }
        }
        None => lines.push(Line::from(Span::styled(
            "The message this task came from is not among the patient's messages.",
            t.dim,
        ))),
    }
    let rest: Vec<&Value> = messages
        .iter()
        .filter(|m| own_id.is_none() || str_at(m, "/id") != own_id)
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!(
            "Thread · {} other message{} of this patient, oldest first{}",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" },
            if v.more { " (more on the server)" } else { "" }
        ),
        t.header,
    )));
    for m in rest {
        let sent = str_at(m, "/sent").map(|s| view.when(s)).unwrap_or_default();
        let who = if from_patient(m) {
            "Patient".to_string()
        } else {
            str_at(m, "/sender/display")
                .or_else(|| str_at(m, "/sender/reference"))
                .unwrap_or("Clinic")
                .to_string()
        };
        let reply = if m.get("inResponseTo").is_some() {
            "↳ "
        } else {
            ""
        };
        lines.push(Line::from(vec![
            Span::styled(format!("  {sent}  "), t.dim),
            Span::styled(format!("{reply}{who}: "), t.header),
        ]));
        let text = message_text(m);
        for l in text.lines() {
            lines.push(Line::from(format!("    {l}")));
        }
        for (label, value, alarming) in answers(m) {
            lines.push(Line::from(vec![
                Span::raw(format!("    {label}: ")),
                Span::styled(value, if alarming { t.alert_critical } else { t.base }),
            ]));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
    }

    #[test]
    fn the_countdown_reads_in_minutes_hours_and_days() {
        let now = at(12, 0);
        assert_eq!(countdown(at(12, 14), now), ("due in 14 m".into(), false));
        assert_eq!(countdown(at(10, 0), now), ("late 2 h".into(), true));
        assert_eq!(countdown(at(12, 0), now), ("due now".into(), false));
        assert_eq!(countdown(at(11, 59), now), ("late 1 m".into(), true));
        assert_eq!(
            countdown(at(12, 0) + Duration::days(3), now),
            ("due in 3 d".into(), false)
        );
        // Seconds never change the text: only the minute does.
        let later = now + Duration::seconds(59);
        assert_eq!(countdown(at(12, 14), later), countdown(at(12, 14), now));
    }

    #[test]
    fn deferring_reads_the_usual_choices_and_typed_times() {
        let now = at(12, 0); // a Monday
        let tz = chrono_tz::Tz::UTC;
        assert_eq!(defer_until("+1h", now, tz), Some(at(13, 0)));
        assert_eq!(defer_until("+30m", now, tz), Some(at(12, 30)));
        assert_eq!(
            defer_until("tomorrow", now, tz),
            Some(at(8, 0) + Duration::days(1))
        );
        assert_eq!(
            defer_until("monday", now, tz),
            Some(at(8, 0) + Duration::days(7))
        );
        assert_eq!(defer_until("14:00", now, tz), Some(at(14, 0)));
        assert_eq!(
            defer_until("09:00", now, tz),
            Some(at(9, 0) + Duration::days(1))
        );
        assert_eq!(
            defer_until("2026-11-24 08:00", now, tz),
            Some(at(8, 0) + Duration::days(1))
        );
        assert_eq!(defer_until("soon", now, tz), None);
    }

    #[test]
    fn structured_answers_are_read_with_red_flags() {
        let m = json!({"resourceType": "Communication",
        "payload": [{"contentReference": {"reference": "#answers"}}],
        "contained": [{"resourceType": "QuestionnaireResponse", "id": "answers", "item": [
            {"linkId": "what", "answer": [{"valueString": "Chest tightness"}]},
            {"linkId": "since", "answer": [{"valueString": "this morning"}]},
            {"linkId": "severity", "answer": [{"valueInteger": 8}]},
            {"linkId": "red-flags", "item": [
                {"linkId": "chest-pain", "answer": [{"valueBoolean": true}]},
                {"linkId": "short-of-breath", "answer": [{"valueBoolean": false}]}
            ]}
        ]}]});
        let a = answers(&m);
        assert_eq!(a[0], ("What".into(), "Chest tightness".into(), false));
        assert_eq!(a[2], ("Severity".into(), "8 / 10".into(), true));
        assert_eq!(
            a[3],
            (
                "Red flags".into(),
                "chest pain YES · shortness of breath no".into(),
                true
            )
        );
        assert!(answers(&json!({"payload": [{"contentString": "hi"}]})).is_empty());
    }

    #[test]
    fn reply_templates_load() {
        let t = reply_templates();
        assert!(t.len() >= 5);
        assert!(
            t.iter()
                .any(|t| t.categories.contains(&"refill".to_string()))
        );
    }
}
