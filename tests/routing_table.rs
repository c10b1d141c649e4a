//! Every routing case in `rules/cases.toml`, against the embedded rules:
//! read the message, route it, build its task and reply, and compare with
//! what the case expects. All failures are listed at once.

use chartty::fhir::codes::{ROLE_SYSTEM, TASK_CATEGORY_SYSTEM};
use chartty::triage::{
    self, AUTO_REPLY_SYSTEM, Facts, Intake, RED_FLAGS, REFILL_QUESTIONNAIRE, ROUTED_FROM_SYSTEM,
    RuleSet, SYMPTOM_QUESTIONNAIRE,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

const CASES: &str = include_str!("../rules/cases.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    now: String,
    /// The whole message as JSON, instead of the fields below.
    json: Option<String>,
    /// A category code, or several (a list).
    category: Option<toml::Value>,
    /// `Patient/<id>` (default `Patient/p1`); "none" leaves it out.
    subject: Option<String>,
    text: Option<String>,
    symptom: Option<Symptom>,
    refill: Option<Refill>,
    #[serde(default)]
    facts: CaseFacts,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Symptom {
    what: Option<String>,
    since: Option<String>,
    /// Any value: a bad one makes a malformed case.
    severity: Option<toml::Value>,
    /// Red flags answered yes; every other one is answered no...
    #[serde(default)]
    yes: Vec<String>,
    /// ...except these, left unanswered.
    #[serde(default)]
    unanswered: Vec<String>,
    /// Answers given as something other than a boolean.
    #[serde(default)]
    odd: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refill {
    medication: Option<String>,
    /// Give the medication as a coding's display rather than a string.
    #[serde(default)]
    coded: bool,
    pharmacy: Option<String>,
    remaining: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CaseFacts {
    birth_date: Option<String>,
    #[serde(default)]
    problems: Vec<String>,
    #[serde(default)]
    medications: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    queue: String,
    priority: String,
    due: String,
    category: String,
    rule: String,
    reply_contains: Option<String>,
    #[serde(default)]
    no_reply: bool,
    #[serde(default)]
    reasons_contain: Vec<String>,
    summary: Option<String>,
    #[serde(default)]
    summary_contains: Vec<String>,
    #[serde(default)]
    summary_lacks: Vec<String>,
}

fn instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?}: {e}"))
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn message(case: &Case) -> Result<Value, String> {
    if let Some(raw) = &case.json {
        return serde_json::from_str(raw).map_err(|e| format!("json: {e}"));
    }
    let codes: Vec<Value> = match &case.category {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a.iter().map(to_json).collect(),
        Some(v) => vec![to_json(v)],
    };
    let mut m = json!({
        "resourceType": "Communication",
        "id": "m1",
        "status": "in-progress",
        "sender": {"reference": "Patient/p1", "display": "Pat Example"},
        "recipient": [{"reference": "Organization/clinic", "display": "Riverside Family Practice"}],
        "sent": case.now,
    });
    if !codes.is_empty() {
        m["category"] = json!([{"coding": codes.iter().map(|c| json!({"system": TASK_CATEGORY_SYSTEM, "code": c})).collect::<Vec<_>>()}]);
    }
    match case.subject.as_deref() {
        Some("none") => {}
        Some(s) => m["subject"] = json!({"reference": s}),
        None => m["subject"] = json!({"reference": "Patient/p1", "display": "Pat Example"}),
    }
    let mut payload = Vec::new();
    let mut contained = Vec::new();
    if let Some(s) = &case.symptom {
        let mut items = Vec::new();
        if let Some(w) = &s.what {
            items.push(json!({"linkId": "what", "answer": [{"valueString": w}]}));
        }
        if let Some(w) = &s.since {
            items.push(json!({"linkId": "since", "answer": [{"valueString": w}]}));
        }
        if let Some(v) = &s.severity {
            items.push(json!({"linkId": "severity", "answer": [{"valueInteger": to_json(v)}]}));
        }
        let flags: Vec<Value> = RED_FLAGS
            .iter()
            .filter(|(id, _)| !s.unanswered.iter().any(|u| u == id))
            .map(|(id, _)| {
                let answer = match s.odd.get(*id) {
                    Some(v) => json!({"valueString": to_json(v)}),
                    None => json!({"valueBoolean": s.yes.iter().any(|y| y == id)}),
                };
                json!({"linkId": id, "answer": [answer]})
            })
            .collect();
        items.push(json!({"linkId": "red-flags", "item": flags}));
        contained.push(json!({
            "resourceType": "QuestionnaireResponse", "id": "symptoms", "status": "completed",
            "questionnaire": SYMPTOM_QUESTIONNAIRE, "item": items,
        }));
        payload.push(json!({"contentReference": {"reference": "#symptoms"}}));
    }
    if let Some(r) = &case.refill {
        let mut items = Vec::new();
        if let Some(med) = &r.medication {
            let answer = if r.coded {
                json!({"valueCoding": {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "861007", "display": med}})
            } else {
                json!({"valueString": med})
            };
            items.push(json!({"linkId": "medication", "answer": [answer]}));
        }
        if let Some(p) = &r.pharmacy {
            items.push(json!({"linkId": "pharmacy", "answer": [{"valueString": p}]}));
        }
        if let Some(n) = r.remaining {
            items.push(json!({"linkId": "remaining", "answer": [{"valueInteger": n}]}));
        }
        contained.push(json!({
            "resourceType": "QuestionnaireResponse", "id": "refill", "status": "completed",
            "questionnaire": REFILL_QUESTIONNAIRE, "item": items,
        }));
        payload.push(json!({"contentReference": {"reference": "#refill"}}));
    }
    if let Some(t) = &case.text {
        payload.push(json!({"contentString": t}));
    }
    if !contained.is_empty() {
        m["contained"] = Value::Array(contained);
    }
    if !payload.is_empty() {
        m["payload"] = Value::Array(payload);
    }
    Ok(m)
}

fn facts(f: &CaseFacts) -> Result<Facts, String> {
    let birth_date = match &f.birth_date {
        Some(d) => {
            Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|e| format!("birth_date: {e}"))?)
        }
        None => None,
    };
    Ok(Facts {
        birth_date,
        problems: f.problems.clone(),
        medications: f.medications.clone(),
    })
}

fn run(rules: &RuleSet, case: &Case) -> Vec<String> {
    let mut bad = Vec::new();
    let setup = (|| {
        Ok::<_, String>((
            message(case)?,
            facts(&case.facts)?,
            instant(&case.now)?,
            instant(&case.expect.due)?,
        ))
    })();
    let (msg, facts, now, due) = match setup {
        Ok(x) => x,
        Err(e) => return vec![format!("case does not read: {e}")],
    };
    let intake = triage::read_message(&msg);
    let d = triage::route(rules, &intake, &facts, now);
    let e = &case.expect;
    let check = |bad: &mut Vec<String>, what: &str, got: &str, want: &str| {
        if got != want {
            bad.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    };
    check(&mut bad, "queue", &d.queue, &e.queue);
    check(&mut bad, "priority", &d.priority, &e.priority);
    check(&mut bad, "category", &d.category, &e.category);
    check(&mut bad, "rule", &d.rule, &e.rule);
    if d.due != due {
        bad.push(format!("due: got {}, want {}", d.due, due));
    }
    if let Some(s) = &e.summary {
        check(&mut bad, "summary", &d.summary, s);
    }
    for s in &e.summary_contains {
        if !d.summary.contains(s.as_str()) {
            bad.push(format!("summary {:?} lacks {s:?}", d.summary));
        }
    }
    for s in &e.summary_lacks {
        if d.summary.contains(s.as_str()) {
            bad.push(format!("summary {:?} has {s:?}", d.summary));
        }
    }
    for r in &e.reasons_contain {
        if !d.reasons.iter().any(|x| x.contains(r.as_str())) {
            bad.push(format!("reasons {:?} lack {r:?}", d.reasons));
        }
    }
    match (&d.reply, &e.reply_contains, e.no_reply) {
        (Some(r), _, true) => bad.push(format!("a reply where none was expected: {r:?}")),
        (None, Some(want), _) => bad.push(format!("no reply; want one containing {want:?}")),
        (Some(r), Some(want), _) if !r.contains(want.as_str()) => {
            bad.push(format!("reply {r:?} lacks {want:?}"));
        }
        _ => {}
    }
    if let Some(r) = &d.reply
        && !r.contains(" by ")
    {
        bad.push(format!("reply {r:?} does not say when to expect an answer"));
    }
    if d.due < now {
        bad.push("due before now".to_string());
    }
    bad.extend(resources(&msg, &d, &intake, now));
    bad
}

/// What the decision becomes: checked for every case, not per case.
fn resources(
    msg: &Value,
    d: &triage::Decision,
    intake: &Intake,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut bad = Vec::new();
    let task = triage::task_for(msg, d, now);
    let expect = |bad: &mut Vec<String>, what: &str, got: &Value, want: Value| {
        if *got != want {
            bad.push(format!("task {what}: got {got}, want {want}"));
        }
    };
    expect(&mut bad, "status", &task["status"], json!("requested"));
    expect(&mut bad, "intent", &task["intent"], json!("order"));
    expect(&mut bad, "priority", &task["priority"], json!(d.priority));
    expect(
        &mut bad,
        "queue",
        &task["performerType"][0]["coding"][0],
        json!({"system": ROLE_SYSTEM, "code": d.queue}),
    );
    expect(
        &mut bad,
        "code",
        &task["code"]["coding"][0]["code"],
        json!(d.category),
    );
    expect(
        &mut bad,
        "description",
        &task["description"],
        json!(d.summary),
    );
    if msg.get("id").is_some() {
        expect(
            &mut bad,
            "focus",
            &task["focus"]["reference"],
            json!("Communication/m1"),
        );
        expect(
            &mut bad,
            "identifier",
            &task["identifier"][0],
            json!({"system": ROUTED_FROM_SYSTEM, "value": "Communication/m1"}),
        );
    }
    let due = task["restriction"]["period"]["end"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    if due.map(|t| t.with_timezone(&Utc)) != Some(d.due) {
        bad.push(format!("task due {due:?} is not {}", d.due));
    }
    let note = task["note"][0]["text"].as_str().unwrap_or("");
    if !note.starts_with(&format!("Routed by rule {}", d.rule)) {
        bad.push(format!("task note {note:?}"));
    }
    let text = serde_json::to_string(&task).unwrap_or_default();
    if text.contains('\u{1b}') || text.contains('\u{202e}') {
        bad.push("task carries raw control or bidi characters".to_string());
    }
    let reply = triage::reply_for(msg, d, now);
    match (&reply, &d.reply, intake) {
        (Some(r), Some(body), _) => {
            expect(
                &mut bad,
                "reply payload",
                &r["payload"][0]["contentString"],
                json!(body),
            );
            expect(
                &mut bad,
                "reply identifier",
                &r["identifier"][0],
                json!({"system": AUTO_REPLY_SYSTEM, "value": "reply-to/Communication/m1"}),
            );
            expect(
                &mut bad,
                "reply inResponseTo",
                &r["inResponseTo"][0]["reference"],
                json!("Communication/m1"),
            );
            expect(&mut bad, "reply status", &r["status"], json!("completed"));
            if msg.get("recipient").is_some() {
                expect(
                    &mut bad,
                    "reply sender",
                    &r["sender"]["reference"],
                    json!("Organization/clinic"),
                );
            }
        }
        (None, Some(_), Intake::Message(_)) => {
            bad.push("a decision with a reply but no reply resource".to_string())
        }
        (Some(_), None, _) => bad.push("a reply resource without a reply".to_string()),
        _ => {}
    }
    bad
}

#[test]
fn every_routing_case_holds() {
    let file: File = match toml::from_str(CASES) {
        Ok(f) => f,
        Err(e) => panic!("rules/cases.toml: {e}"),
    };
    assert!(file.case.len() >= 45, "only {} cases", file.case.len());
    let rules = RuleSet::embedded();
    let mut failures = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for case in &file.case {
        if !names.insert(case.name.as_str()) {
            failures.push(format!("{}: two cases have this name", case.name));
        }
        for f in run(&rules, case) {
            failures.push(format!("{}: {f}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} routing cases failed:\n  {}",
        failures.len(),
        file.case.len(),
        failures.join("\n  ")
    );
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    /// JSON built from the words intake looks for, so that random values
    /// get past the first checks and reach the deeper ones.
    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..14).prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            prop_oneof![
                Just("Patient/p1"),
                Just("#symptoms"),
                Just("#refill"),
                Just("clinical"),
                Just("urgent"),
                Just("refill"),
                Just("billing"),
                Just("chest pain"),
                Just("\u{1b}[2J"),
                Just("\u{202e}x"),
                Just(""),
                Just(TASK_CATEGORY_SYSTEM),
                Just(SYMPTOM_QUESTIONNAIRE),
                Just(REFILL_QUESTIONNAIRE),
                Just("2026-12-01T10:00:00Z"),
                Just("QuestionnaireResponse"),
                Just("Communication"),
                Just("chest-pain"),
            ]
            .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
        ];
        let keys = prop_oneof![
            Just("resourceType"),
            Just("id"),
            Just("subject"),
            Just("reference"),
            Just("category"),
            Just("coding"),
            Just("system"),
            Just("code"),
            Just("payload"),
            Just("contentString"),
            Just("contentReference"),
            Just("contained"),
            Just("questionnaire"),
            Just("item"),
            Just("linkId"),
            Just("answer"),
            Just("valueInteger"),
            Just("valueBoolean"),
            Just("valueString"),
            Just("valueCoding"),
            Just("display"),
            Just("sent"),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn route_always_gives_a_known_queue_and_a_due_not_before_now(
            msg in value(),
            secs in 1_700_000_000i64..1_900_000_000,
            age in proptest::option::of(0i64..40_000),
        ) {
            let rules = RuleSet::embedded();
            let now = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let facts = Facts {
                birth_date: age.map(|d| now.date_naive() - chrono::Duration::days(d)),
                problems: vec!["anticoagulation".into()],
                medications: vec![],
            };
            let intake = triage::read_message(&msg);
            let d = triage::route(&rules, &intake, &facts, now);
            prop_assert!(d.due >= now);
            prop_assert!(chartty::triage::rules::is_known_queue(&d.queue), "{}", d.queue);
            let _ = triage::task_for(&msg, &d, now);
            let _ = triage::reply_for(&msg, &d, now);
        }
    }
}
