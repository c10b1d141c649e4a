//! The routing rules as data. The defaults are `rules/routing.toml`,
//! embedded in the binary; a site file replaces them whole (a site that
//! wants the defaults plus a change copies the file, so what runs is
//! always one readable file).
//!
//! The format is described in docs/triage.md. Every table refuses keys it
//! does not know, so a typo in a site file is an error with its line, not
//! a rule that silently never matches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use super::calendar::{Calendar, Hours};
use super::{ONCALL_QUEUE, RED_FLAGS, REVIEW_QUEUE};
use crate::fhir::codes::TASK_CATEGORIES;
use crate::fhir::fold::fold;
use crate::roles::Role;

const EMBEDDED: &str = include_str!("../../rules/routing.toml");

/// FHIR request priorities, lowest first.
pub const PRIORITIES: [&str; 4] = ["routine", "urgent", "asap", "stat"];

/// Rank of a priority on the ladder; unknown ones rank as routine.
pub fn priority_rank(p: &str) -> usize {
    PRIORITIES.iter().position(|x| *x == p).unwrap_or(0)
}

/// Whether `q` is a queue a task may sit in.
pub fn is_known_queue(q: &str) -> bool {
    q == ONCALL_QUEUE || q == REVIEW_QUEUE || Role::ALL.iter().any(|r| r.code() == q)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub clinic: String,
    pub emergency: String,
    pub calendar: Calendar,
    /// Named SLAs (`[sla]`).
    pub sla: BTreeMap<String, Sla>,
    pub rules: Vec<Rule>,
    pub malformed: Malformed,
    /// Reply templates by name, text with `{clinic}`, `{due}`, `{emergency}`.
    pub replies: BTreeMap<String, String>,
    pub escalation: EscalationRules,
}

/// How long a category may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sla {
    /// Wall-clock minutes, nights and weekends included.
    Minutes(i64),
    /// Minutes of open clinic time.
    BusinessMinutes(i64),
    /// To the close of the n-th open day (see [`super::calendar`]).
    BusinessDays(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub when: Condition,
    pub queue: String,
    pub priority: String,
    pub sla: String,
    pub reply: Option<String>,
    /// Where the task goes while the clinic is closed (e.g. `oncall`).
    pub after_hours_queue: Option<String>,
    /// Re-files the message under another category (a billing message that
    /// mentions chest pain is a clinical one).
    pub category: Option<String>,
}

/// All given conditions must hold; within a list, any item may.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub category: Vec<String>,
    pub severity_at_least: Option<u8>,
    /// `Some(true)`: any red flag answered yes; `Some(false)`: none.
    pub red_flag: Option<bool>,
    pub red_flags: Vec<String>,
    /// Folded (lower case, no accents).
    pub keywords: Vec<String>,
    pub age_under: Option<u32>,
    pub age_at_least: Option<u32>,
    /// Folded words looked for in active problems, medications, or either.
    pub problems: Vec<String>,
    pub medications: Vec<String>,
    pub patient_has: Vec<String>,
    /// `Some(true)` only while open, `Some(false)` only while closed.
    pub clinic_open: Option<bool>,
    /// Local time of day window (may wrap past midnight).
    pub time: Option<Hours>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub priority: String,
    pub sla: String,
    pub reply: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EscalationRules {
    /// Lateness per step up the ladder after `urgent`.
    pub step_minutes: i64,
    /// Lateness from which a task moves to its next queue (once).
    pub move_after_minutes: i64,
    pub next: BTreeMap<String, String>,
}

impl RuleSet {
    /// The embedded defaults.
    pub fn embedded() -> RuleSet {
        match RuleSet::from_toml(EMBEDDED) {
            Ok(r) => r,
            // The embedded file is tested; a broken one is a build defect.
            Err(e) => panic!("rules/routing.toml: {e}"),
        }
    }

    /// Parse a rules file; the error names the line and what is wrong.
    pub fn from_toml(text: &str) -> Result<RuleSet, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            format!("line {line}: {}", e.message().trim_end())
        })?;
        build(raw, text)
    }

    /// The site file if given, else the embedded defaults.
    pub fn load(site: Option<&Path>) -> Result<RuleSet, String> {
        let Some(path) = site else {
            return Ok(RuleSet::embedded());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        RuleSet::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The SLA of that name; unknown names (impossible after parsing) are
    /// read as the review SLA's four business hours.
    pub fn sla(&self, name: &str) -> Sla {
        self.sla
            .get(name)
            .copied()
            .unwrap_or(Sla::BusinessMinutes(240))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |s| s.bytes().filter(|b| *b == b'\n').count() + 1)
}

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    clinic: RawClinic,
    sla: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    rule: Vec<RawRule>,
    malformed: RawMalformed,
    #[serde(default)]
    reply: BTreeMap<String, RawReply>,
    escalation: RawEscalation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClinic {
    name: String,
    #[serde(default = "default_zone")]
    timezone: Spanned<String>,
    emergency: String,
    hours: RawHours,
    #[serde(default)]
    holidays: Vec<Spanned<String>>,
}

fn default_zone() -> Spanned<String> {
    Spanned::new(0..0, "America/Chicago".to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    mon: Option<Spanned<String>>,
    tue: Option<Spanned<String>>,
    wed: Option<Spanned<String>>,
    thu: Option<Spanned<String>>,
    fri: Option<Spanned<String>>,
    sat: Option<Spanned<String>>,
    sun: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    when: RawCondition,
    queue: Spanned<String>,
    priority: Spanned<String>,
    sla: Spanned<String>,
    reply: Option<Spanned<String>>,
    after_hours_queue: Option<Spanned<String>>,
    category: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    category: Vec<Spanned<String>>,
    severity_at_least: Option<Spanned<i64>>,
    red_flag: Option<bool>,
    #[serde(default)]
    red_flags: Vec<Spanned<String>>,
    #[serde(default)]
    keywords: Vec<String>,
    age_under: Option<u32>,
    age_at_least: Option<u32>,
    #[serde(default)]
    problems: Vec<String>,
    #[serde(default)]
    medications: Vec<String>,
    #[serde(default)]
    patient_has: Vec<String>,
    clinic: Option<Spanned<String>>,
    time: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMalformed {
    priority: Spanned<String>,
    sla: Spanned<String>,
    reply: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    text: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    step: Spanned<String>,
    move_after: Spanned<String>,
    #[serde(default)]
    next: BTreeMap<String, Spanned<String>>,
}

// ---- checks and conversion ----

struct Ctx<'a> {
    text: &'a str,
}

impl Ctx<'_> {
    fn err<T>(&self, at: &Spanned<T>, what: impl std::fmt::Display) -> String {
        format!("line {}: {what}", line_of(self.text, at.span().start))
    }
}

fn build(raw: RawFile, text: &str) -> Result<RuleSet, String> {
    let cx = Ctx { text };
    let calendar = calendar(&cx, &raw.clinic)?;

    let mut sla = BTreeMap::new();
    for (name, spec) in &raw.sla {
        let parsed =
            parse_sla(spec.get_ref()).map_err(|e| cx.err(spec, format!("sla {name}: {e}")))?;
        sla.insert(name.clone(), parsed);
    }

    let mut replies = BTreeMap::new();
    for (name, r) in &raw.reply {
        let body = r.text.get_ref();
        check_placeholders(body).map_err(|e| cx.err(&r.text, format!("reply {name}: {e}")))?;
        replies.insert(name.clone(), body.clone());
    }

    let sla_ref = |s: &Spanned<String>| -> Result<String, String> {
        if sla.contains_key(s.get_ref()) {
            Ok(s.get_ref().clone())
        } else {
            Err(cx.err(
                s,
                format!(
                    "unknown sla {:?}; [sla] names {}",
                    s.get_ref(),
                    sla.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    };
    let reply_ref = |s: &Option<Spanned<String>>| -> Result<Option<String>, String> {
        match s {
            None => Ok(None),
            Some(s) if replies.contains_key(s.get_ref()) => Ok(Some(s.get_ref().clone())),
            Some(s) => Err(cx.err(
                s,
                format!(
                    "unknown reply {:?}; add [reply.{}]",
                    s.get_ref(),
                    s.get_ref()
                ),
            )),
        }
    };

    let mut rules = Vec::new();
    let mut names = BTreeSet::new();
    for r in raw.rule {
        let name = r.name.trim().to_string();
        let at = |s: &Spanned<String>, what: String| cx.err(s, format!("rule {name:?}: {what}"));
        if name.is_empty() {
            return Err(cx.err(&r.queue, "a rule has an empty name"));
        }
        if !names.insert(name.clone()) {
            return Err(at(&r.queue, "two rules have this name".to_string()));
        }
        let queue = queue(&r.queue).map_err(|e| at(&r.queue, e))?;
        let priority = priority(&r.priority).map_err(|e| at(&r.priority, e))?;
        let after_hours_queue = match &r.after_hours_queue {
            Some(q) => Some(queue_of(q).map_err(|e| at(q, e))?),
            None => None,
        };
        let category = match &r.category {
            Some(c) => Some(category(c).map_err(|e| at(c, e))?),
            None => None,
        };
        rules.push(Rule {
            when: condition(&cx, &name, r.when)?,
            sla: sla_ref(&r.sla)?,
            reply: reply_ref(&r.reply)?,
            name,
            queue,
            priority,
            after_hours_queue,
            category,
        });
    }

    let malformed = Malformed {
        priority: priority(&raw.malformed.priority)
            .map_err(|e| cx.err(&raw.malformed.priority, e))?,
        sla: sla_ref(&raw.malformed.sla)?,
        reply: reply_ref(&raw.malformed.reply)?,
    };

    let escalation = escalation(&cx, &raw.escalation)?;

    Ok(RuleSet {
        clinic: raw.clinic.name,
        emergency: raw.clinic.emergency,
        calendar,
        sla,
        rules,
        malformed,
        replies,
        escalation,
    })
}

fn queue(s: &Spanned<String>) -> Result<String, String> {
    queue_of(s)
}

fn queue_of(s: &Spanned<String>) -> Result<String, String> {
    let q = s.get_ref().trim();
    if is_known_queue(q) {
        Ok(q.to_string())
    } else {
        Err(format!(
            "unknown queue {q:?}; expected attending, resident, nurse, frontdesk, billing, {ONCALL_QUEUE} or {REVIEW_QUEUE}"
        ))
    }
}

fn priority(s: &Spanned<String>) -> Result<String, String> {
    let p = s.get_ref().trim();
    if PRIORITIES.contains(&p) {
        Ok(p.to_string())
    } else {
        Err(format!(
            "unknown priority {p:?}; expected routine, urgent, asap or stat"
        ))
    }
}

fn category(s: &Spanned<String>) -> Result<String, String> {
    let c = s.get_ref().trim();
    if TASK_CATEGORIES.contains(&c) {
        Ok(c.to_string())
    } else {
        Err(format!(
            "unknown category {c:?}; expected one of {}",
            TASK_CATEGORIES.join(", ")
        ))
    }
}

fn condition(cx: &Ctx, rule: &str, raw: RawCondition) -> Result<Condition, String> {
    let at = |s: &dyn SpanOf, what: String| {
        format!(
            "line {}: rule {rule:?}: {what}",
            line_of(cx.text, s.start())
        )
    };
    let mut c = Condition::default();
    for cat in &raw.category {
        c.category.push(category(cat).map_err(|e| at(cat, e))?);
    }
    if let Some(s) = &raw.severity_at_least {
        let v = *s.get_ref();
        if !(0..=10).contains(&v) {
            return Err(at(
                s,
                format!("severity_at_least {v} is not between 0 and 10"),
            ));
        }
        c.severity_at_least = u8::try_from(v).ok();
    }
    c.red_flag = raw.red_flag;
    for f in &raw.red_flags {
        let id = f.get_ref().trim();
        if !RED_FLAGS.iter().any(|(k, _)| *k == id) {
            return Err(at(
                f,
                format!(
                    "unknown red flag {id:?}; expected one of {}",
                    RED_FLAGS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        c.red_flags.push(id.to_string());
    }
    let words = |v: Vec<String>| -> Vec<String> {
        v.iter()
            .map(|w| fold(w.trim()))
            .filter(|w| !w.is_empty())
            .collect()
    };
    c.keywords = words(raw.keywords);
    c.problems = words(raw.problems);
    c.medications = words(raw.medications);
    c.patient_has = words(raw.patient_has);
    c.age_under = raw.age_under;
    c.age_at_least = raw.age_at_least;
    if let Some(s) = &raw.clinic {
        c.clinic_open = Some(match s.get_ref().trim() {
            "open" => true,
            "closed" => false,
            other => {
                return Err(at(
                    s,
                    format!("clinic = {other:?}; expected \"open\" or \"closed\""),
                ));
            }
        });
    }
    if let Some(s) = &raw.time {
        c.time = Some(parse_range(s.get_ref(), true).map_err(|e| at(s, e))?);
    }
    Ok(c)
}

trait SpanOf {
    fn start(&self) -> usize;
}

impl<T> SpanOf for Spanned<T> {
    fn start(&self) -> usize {
        self.span().start
    }
}

fn calendar(cx: &Ctx, raw: &RawClinic) -> Result<Calendar, String> {
    let tz: Tz = raw.timezone.get_ref().trim().parse().map_err(|_| {
        cx.err(
            &raw.timezone,
            format!(
                "unknown time zone {:?}; expected an IANA name like America/Chicago",
                raw.timezone.get_ref()
            ),
        )
    })?;
    let days = [
        &raw.hours.mon,
        &raw.hours.tue,
        &raw.hours.wed,
        &raw.hours.thu,
        &raw.hours.fri,
        &raw.hours.sat,
        &raw.hours.sun,
    ];
    let mut week = [None; 7];
    for (slot, day) in week.iter_mut().zip(days) {
        if let Some(s) = day {
            *slot = match s.get_ref().trim() {
                "closed" => None,
                range => Some(parse_range(range, false).map_err(|e| cx.err(s, e))?),
            };
        }
    }
    let mut holidays = BTreeSet::new();
    for h in &raw.holidays {
        let d = NaiveDate::parse_from_str(h.get_ref().trim(), "%Y-%m-%d").map_err(|_| {
            cx.err(
                h,
                format!("holiday {:?} is not a date like 2026-12-25", h.get_ref()),
            )
        })?;
        holidays.insert(d);
    }
    Ok(Calendar { tz, week, holidays })
}

/// "08:00-17:00"; `wrap` allows "17:00-08:00" (a time-of-day window).
fn parse_range(s: &str, wrap: bool) -> Result<Hours, String> {
    let bad = || format!("{s:?} is not a time range like \"08:00-17:00\" (or \"closed\")");
    let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
    let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
    let (open, close) = (time(a)?, time(b)?);
    if !wrap && close <= open {
        return Err(format!("{s:?}: closing must come after opening"));
    }
    if open == close {
        return Err(format!("{s:?} is an empty window"));
    }
    Ok((open, close))
}

/// "1 hour", "90 minutes", "4 business hours", "2 business days".
fn parse_sla(s: &str) -> Result<Sla, String> {
    let bad = || {
        format!(
            "{s:?} is not a duration like \"1 hour\", \"30 minutes\", \"4 business hours\" or \"2 business days\""
        )
    };
    let words: Vec<&str> = s.split_whitespace().collect();
    let n: i64 = words.first().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    if !(0..=10_000).contains(&n) {
        return Err(format!("{s:?}: {n} is out of range"));
    }
    let unit = |w: &str| w.trim_end_matches('s').to_string();
    match words.get(1..).unwrap_or_default() {
        [u] if unit(u) == "hour" || *u == "h" => Ok(Sla::Minutes(n * 60)),
        [u] if unit(u) == "minute" || *u == "min" => Ok(Sla::Minutes(n)),
        [b, u] if *b == "business" && unit(u) == "hour" => Ok(Sla::BusinessMinutes(n * 60)),
        [b, u] if *b == "business" && unit(u) == "minute" => Ok(Sla::BusinessMinutes(n)),
        [b, u] if *b == "business" && unit(u) == "day" => {
            Ok(Sla::BusinessDays(u32::try_from(n).map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// Escalation steps are wall-clock: lateness is lateness at night too.
fn parse_wall(s: &Spanned<String>, cx: &Ctx, what: &str) -> Result<i64, String> {
    match parse_sla(s.get_ref()) {
        Ok(Sla::Minutes(m)) if m > 0 => Ok(m),
        Ok(_) => Err(cx.err(
            s,
            format!("{what} must be a positive wall-clock time like \"2 hours\""),
        )),
        Err(e) => Err(cx.err(s, format!("{what}: {e}"))),
    }
}

fn escalation(cx: &Ctx, raw: &RawEscalation) -> Result<EscalationRules, String> {
    let step_minutes = parse_wall(&raw.step, cx, "step")?;
    let move_after_minutes = parse_wall(&raw.move_after, cx, "move_after")?;
    let mut next = BTreeMap::new();
    for (from, to) in &raw.next {
        if !is_known_queue(from) {
            return Err(cx.err(to, format!("escalation.next: unknown queue {from:?}")));
        }
        let to_q = queue_of(to).map_err(|e| cx.err(to, format!("escalation.next.{from}: {e}")))?;
        if to_q == *from {
            return Err(cx.err(
                to,
                format!("escalation.next.{from} moves a task to its own queue"),
            ));
        }
        next.insert(from.clone(), to_q);
    }
    Ok(EscalationRules {
        step_minutes,
        move_after_minutes,
        next,
    })
}

fn check_placeholders(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let Some(j) = after.find('}') else {
            return Err("a '{' is never closed".to_string());
        };
        let name = &after[..j];
        if !matches!(name, "clinic" | "due" | "emergency") {
            return Err(format!(
                "unknown placeholder {{{name}}}; expected {{clinic}}, {{due}} or {{emergency}}"
            ));
        }
        rest = &after[j + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl Fn(String) -> String) -> Result<RuleSet, String> {
        RuleSet::from_toml(&change(EMBEDDED.to_string()))
    }

    #[test]
    fn the_embedded_rules_parse() {
        let r = RuleSet::embedded();
        assert!(r.rules.len() >= 8);
        assert_eq!(r.calendar.tz, chrono_tz::America::Chicago);
        assert_eq!(r.sla("urgent"), Sla::Minutes(60));
        assert_eq!(r.sla("review"), Sla::BusinessMinutes(240));
        assert_eq!(r.sla("admin"), Sla::BusinessDays(3));
        assert_eq!(r.emergency, "911");
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let e =
            with(|t| t.replacen("[clinic]\n", "[clinic]\nnmae = \"x\"\n", 1)).expect_err("typo");
        assert!(e.starts_with("line "), "{e}");
        assert!(e.contains("nmae"), "{e}");
        let line: usize = e["line ".len()..]
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("line number");
        let expected = EMBEDDED
            .lines()
            .position(|l| l == "[clinic]")
            .expect("clinic table")
            + 2;
        assert_eq!(line, expected, "{e}");
    }

    #[test]
    fn bad_hours_times_and_durations_are_explained() {
        let e = with(|t| t.replacen("mon = \"08:00-17:00\"", "mon = \"8am-5pm\"", 1))
            .expect_err("hours");
        assert!(e.contains("not a time range"), "{e}");
        let e = with(|t| t.replacen("mon = \"08:00-17:00\"", "mon = \"17:00-08:00\"", 1))
            .expect_err("order");
        assert!(e.contains("closing must come after opening"), "{e}");
        let e = with(|t| t.replacen("urgent = \"1 hour\"", "urgent = \"1 fortnight\"", 1))
            .expect_err("sla");
        assert!(e.contains("is not a duration"), "{e}");
        let e = with(|t| {
            t.replacen(
                "timezone = \"America/Chicago\"",
                "timezone = \"Mars/Olympus\"",
                1,
            )
        })
        .expect_err("zone");
        assert!(e.contains("unknown time zone"), "{e}");
        let e = with(|t| t.replacen("\"2026-12-25\"", "\"2026-13-25\"", 1)).expect_err("holiday");
        assert!(e.contains("is not a date"), "{e}");
    }

    #[test]
    fn unknown_queues_priorities_and_references_are_explained() {
        let e = with(|t| t.replacen("queue = \"frontdesk\"", "queue = \"front-desk\"", 1))
            .expect_err("queue");
        assert!(e.contains("unknown queue \"front-desk\""), "{e}");
        assert!(e.starts_with("line "), "{e}");
        let e = with(|t| t.replacen("priority = \"stat\"", "priority = \"emergent\"", 1))
            .expect_err("priority");
        assert!(e.contains("unknown priority \"emergent\""), "{e}");
        let e = with(|t| t.replacen("sla = \"admin\"", "sla = \"adnim\"", 1)).expect_err("sla ref");
        assert!(e.contains("unknown sla \"adnim\""), "{e}");
        let e = with(|t| t.replacen("reply = \"received\"", "reply = \"recieved\"", 1))
            .expect_err("reply ref");
        assert!(e.contains("unknown reply \"recieved\""), "{e}");
        let e = with(|t| t.replacen("nurse = \"attending\"", "nurse = \"doctor\"", 1))
            .expect_err("next");
        assert!(e.contains("unknown queue \"doctor\""), "{e}");
        let e =
            with(|t| t.replacen("from {clinic}.", "from {clinci}.", 1)).expect_err("placeholder");
        assert!(e.contains("unknown placeholder {clinci}"), "{e}");
    }

    #[test]
    fn not_toml_at_all_is_an_error_not_a_panic() {
        for text in ["", "[[[", "clinic = 3", "\u{0}", "[clinic]\nname = 1"] {
            assert!(RuleSet::from_toml(text).is_err(), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn from_toml_never_panics(text in "\\PC{0,400}") {
            let _ = RuleSet::from_toml(&text);
        }

        #[test]
        fn edits_of_the_real_file_never_panic(at in 0usize..6000, cut in 0usize..40, insert in "[ -~\n]{0,12}") {
            let mut t = EMBEDDED.to_string();
            let mut i = at.min(t.len());
            while !t.is_char_boundary(i) { i -= 1; }
            let mut j = (i + cut).min(t.len());
            while !t.is_char_boundary(j) { j -= 1; }
            t.replace_range(i..j, &insert);
            let _ = RuleSet::from_toml(&t);
        }
    }
}
