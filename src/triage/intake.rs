//! What a patient's message says, read strictly from the intake format
//! (see docs/triage.md): a category, for symptoms a contained
//! `QuestionnaireResponse` (what, since when, severity 0–10, each red flag
//! answered yes or no), for refills the medication. A message that does not
//! fit is not guessed at: it is [`Intake::Malformed`] with the reason.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::{RED_FLAGS, REFILL_QUESTIONNAIRE, SYMPTOM_QUESTIONNAIRE};
use crate::fhir::codes::{TASK_CATEGORIES, TASK_CATEGORY_SYSTEM};
use crate::fhir::sanitize::sanitize;
use crate::fhir::time;

/// A message that fits the intake format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// `Communication/<id>`, when the message has an id.
    pub reference: Option<String>,
    /// `Patient/<id>` the message is about.
    pub patient: String,
    /// One of `fhir::codes::TASK_CATEGORIES`.
    pub category: String,
    /// Free text the patient wrote (payload strings joined), sanitised.
    pub text: String,
    /// Symptom questionnaire: what, since when, severity 0–10.
    pub symptom: Option<String>,
    pub since: Option<String>,
    pub severity: Option<u8>,
    /// `linkId`s of red flags answered yes (subset of [`super::RED_FLAGS`]).
    pub red_flags: Vec<String>,
    /// Refill: the medication asked for.
    pub medication: Option<String>,
    /// When the patient sent it (`Communication.sent`), if given.
    pub sent: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Message(Message),
    /// Why it does not fit, for the review queue; the patient and the
    /// message reference when they could be read.
    Malformed {
        reason: String,
        patient: Option<String>,
        reference: Option<String>,
        /// Whatever text could be read (free text and answers, sanitised):
        /// an unreadable message that says "chest pain" is still urgent.
        text: String,
        /// The category the sender gave, if one could be read.
        claimed: Option<String>,
    },
}

/// What the engine may know about the patient besides the message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub birth_date: Option<NaiveDate>,
    /// Active problems, as displayed (and their codes), any case.
    pub problems: Vec<String>,
    /// Active medications, as displayed, any case.
    pub medications: Vec<String>,
}

/// Read a `Communication` (JSON) as sent by intake.
pub fn read_message(communication: &Value) -> Intake {
    let Some(c) = communication.as_object() else {
        return malformed("not a JSON object", None, None);
    };
    let reference = c
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty())
        .map(|id| format!("Communication/{}", clean(id)));
    let patient = c
        .get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| !id.trim().is_empty() && !id.contains('/'))
        .map(|id| format!("Patient/{}", clean(id)));
    match read(c, reference.clone(), patient.clone()) {
        Ok(m) => Intake::Message(m),
        Err(reason) => {
            let mut text = Vec::new();
            readable_text(communication, &mut text, 0);
            let claimed = c
                .get("category")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|k| k.get("coding").and_then(Value::as_array))
                .flatten()
                .filter_map(|k| k.get("code").and_then(Value::as_str))
                .find(|code| TASK_CATEGORIES.contains(code))
                .map(str::to_string);
            Intake::Malformed {
                reason: clean(&reason),
                patient,
                reference,
                text: clean(&text.join("\n")),
                claimed,
            }
        }
    }
}

fn malformed(reason: &str, patient: Option<String>, reference: Option<String>) -> Intake {
    Intake::Malformed {
        reason: clean(reason),
        patient,
        reference,
        text: String::new(),
        claimed: None,
    }
}

/// Every free-text string of a message that does not fit (payload text,
/// answers given as text), at most 64 KB of it and 16 levels deep.
fn readable_text<'a>(v: &'a Value, out: &mut Vec<&'a str>, depth: usize) {
    if depth > 16 || out.iter().map(|s| s.len()).sum::<usize>() > 64 * 1024 {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("contentString" | "valueString" | "text", Value::String(s)) => out.push(s),
                    _ => readable_text(x, out, depth + 1),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| readable_text(x, out, depth + 1)),
        _ => {}
    }
}

fn clean(s: &str) -> String {
    sanitize(s).into_owned()
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Quoted for a reason, shortened: a reason is one line in a queue.
fn quoted(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    let more = if s.chars().count() > 40 { "…" } else { "" };
    format!("{:?}", format!("{short}{more}"))
}

fn read(
    c: &Map<String, Value>,
    reference: Option<String>,
    patient: Option<String>,
) -> Result<Message, String> {
    match c.get("resourceType") {
        None => {}
        Some(Value::String(t)) if t == "Communication" => {}
        Some(other) => {
            return Err(format!(
                "resourceType {} is not Communication",
                quoted(&other.to_string())
            ));
        }
    }
    let patient = patient.ok_or_else(|| match c.get("subject") {
        None => "no subject: the message names no patient".to_string(),
        Some(_) => "subject is not a Patient reference".to_string(),
    })?;
    let category = category(c.get("category"))?;
    let sent = match c.get("sent") {
        None => None,
        Some(Value::String(s)) => Some(
            time::parse(s)
                .filter(|t| t.has_time())
                .map(|t| t.start)
                .ok_or_else(|| format!("sent {} is not a date and time", quoted(s)))?,
        ),
        Some(_) => return Err("sent is not a string".to_string()),
    };

    let mut m = Message {
        reference,
        patient,
        category: category.clone(),
        sent,
        ..Message::default()
    };
    let payload = match c.get("payload") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(_) => return Err("payload is not a list".to_string()),
    };
    let mut texts = Vec::new();
    let (mut symptom_seen, mut refill_seen) = (false, false);
    for (n, item) in payload.iter().enumerate() {
        let n = n + 1;
        let item = item
            .as_object()
            .ok_or_else(|| format!("payload item {n} is not an object"))?;
        if let Some(s) = item.get("contentString") {
            let s = s
                .as_str()
                .ok_or_else(|| format!("payload item {n}: contentString is not a string"))?;
            if !s.trim().is_empty() {
                texts.push(s.trim().to_string());
            }
        } else if let Some(r) = item.get("contentReference") {
            let target = r
                .get("reference")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("payload item {n}: contentReference has no reference"))?;
            let id = target.strip_prefix('#').ok_or_else(|| {
                format!(
                    "payload item {n}: reference {} does not point inside the message (#id)",
                    quoted(target)
                )
            })?;
            let qr = contained(c, id).ok_or_else(|| {
                format!(
                    "payload item {n}: reference {} names nothing contained in the message",
                    quoted(target)
                )
            })?;
            match qr.get("questionnaire").and_then(Value::as_str) {
                Some(SYMPTOM_QUESTIONNAIRE) if !symptom_seen => {
                    symptom_seen = true;
                    read_symptoms(qr, &mut m)?;
                }
                Some(REFILL_QUESTIONNAIRE) if !refill_seen => {
                    refill_seen = true;
                    read_refill(qr, &mut m)?;
                }
                Some(SYMPTOM_QUESTIONNAIRE | REFILL_QUESTIONNAIRE) => {
                    return Err(format!(
                        "payload item {n}: a second answer to the same questionnaire"
                    ));
                }
                Some(other) => {
                    return Err(format!(
                        "payload item {n}: unknown questionnaire {}",
                        quoted(other)
                    ));
                }
                None => {
                    return Err(format!(
                        "payload item {n}: the response names no questionnaire"
                    ));
                }
            }
        } else {
            return Err(format!(
                "payload item {n} has neither contentString nor contentReference"
            ));
        }
    }
    m.text = clean(&texts.join("\n"));

    if texts.is_empty() && !symptom_seen && !refill_seen {
        return Err("empty message: no text and no answers".to_string());
    }
    match category.as_str() {
        "clinical" | "urgent" if !symptom_seen => {
            return Err(format!(
                "a {category} message needs the symptom questions (severity and every red flag)"
            ));
        }
        "refill" if m.medication.is_none() => {
            return Err("a refill message needs the medication (refill questions)".to_string());
        }
        _ => {}
    }
    Ok(m)
}

fn category(v: Option<&Value>) -> Result<String, String> {
    let list: Vec<&Value> = match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(_) => return Err("category is not a list".to_string()),
    };
    let mut found: Vec<String> = Vec::new();
    for concept in list {
        let codings = concept
            .get("coding")
            .and_then(Value::as_array)
            .map(|a| a.as_slice())
            .unwrap_or_default();
        for coding in codings {
            if coding.get("system").and_then(Value::as_str) != Some(TASK_CATEGORY_SYSTEM) {
                continue;
            }
            let code = coding
                .get("code")
                .and_then(Value::as_str)
                .ok_or_else(|| "a category coding has no code".to_string())?;
            if !TASK_CATEGORIES.contains(&code) {
                return Err(format!(
                    "unknown category {}; expected one of {}",
                    quoted(code),
                    TASK_CATEGORIES.join(", ")
                ));
            }
            if !found.iter().any(|f| f == code) {
                found.push(code.to_string());
            }
        }
    }
    match found.as_slice() {
        [] => Err(format!("no category coded in {TASK_CATEGORY_SYSTEM}")),
        [one] => Ok(one.clone()),
        many => Err(format!("categories disagree: {}", many.join(", "))),
    }
}

fn contained<'a>(c: &'a Map<String, Value>, id: &str) -> Option<&'a Map<String, Value>> {
    c.get("contained")?
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .find(|r| {
            r.get("id").and_then(Value::as_str) == Some(id)
                && r.get("resourceType").and_then(Value::as_str) == Some("QuestionnaireResponse")
        })
}

fn items(v: &Map<String, Value>) -> Result<Vec<&Map<String, Value>>, String> {
    match v.get("item") {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| {
                i.as_object()
                    .ok_or_else(|| "an item is not an object".to_string())
            })
            .collect(),
        Some(_) => Err("item is not a list".to_string()),
    }
}

fn link_id(item: &Map<String, Value>) -> &str {
    item.get("linkId").and_then(Value::as_str).unwrap_or("")
}

/// The single answer of an item; a second answer is not guessed between.
fn answer(item: &Map<String, Value>) -> Result<Option<&Map<String, Value>>, String> {
    match item.get("answer") {
        None => Ok(None),
        Some(Value::Array(a)) => match a.as_slice() {
            [] => Ok(None),
            [one] => one
                .as_object()
                .map(Some)
                .ok_or_else(|| format!("the answer to {} is not an object", quoted(link_id(item)))),
            _ => Err(format!(
                "{} has more than one answer",
                quoted(link_id(item))
            )),
        },
        Some(_) => Err(format!(
            "the answer to {} is not a list",
            quoted(link_id(item))
        )),
    }
}

fn string_answer(item: &Map<String, Value>, kinds: &[&str]) -> Result<Option<String>, String> {
    let Some(a) = answer(item)? else {
        return Ok(None);
    };
    for kind in kinds {
        let Some(v) = a.get(*kind) else { continue };
        let s = match *kind {
            "valueCoding" | "valueReference" => v
                .get("display")
                .and_then(Value::as_str)
                .or_else(|| v.get("code").and_then(Value::as_str)),
            _ => v.as_str(),
        };
        return match s {
            Some(s) if !s.trim().is_empty() => Ok(Some(clean(s.trim()))),
            Some(_) => Ok(None),
            None => Err(format!(
                "the answer to {} is not readable",
                quoted(link_id(item))
            )),
        };
    }
    Err(format!(
        "the answer to {} is not one of {}",
        quoted(link_id(item)),
        kinds.join(", ")
    ))
}

fn read_symptoms(qr: &Map<String, Value>, m: &mut Message) -> Result<(), String> {
    let mut flags: Vec<(&str, bool)> = Vec::new();
    for item in items(qr)? {
        match link_id(item) {
            "what" => m.symptom = string_answer(item, &["valueString"])?,
            "since" => m.since = string_answer(item, &["valueString", "valueDateTime"])?,
            "severity" => {
                let Some(a) = answer(item)? else { continue };
                let v = a
                    .get("valueInteger")
                    .ok_or_else(|| "severity is not answered with valueInteger".to_string())?;
                let n = v.as_u64().filter(|n| *n <= 10).ok_or_else(|| {
                    format!(
                        "severity {} is not an integer from 0 to 10",
                        short(&v.to_string())
                    )
                })?;
                m.severity = u8::try_from(n).ok();
            }
            "red-flags" => {
                for flag in items(item)? {
                    let id = link_id(flag);
                    let Some(known) = RED_FLAGS.iter().find(|(k, _)| *k == id) else {
                        return Err(format!("unknown red flag {}", quoted(id)));
                    };
                    if flags.iter().any(|(k, _)| *k == known.0) {
                        return Err(format!("red flag {} answered twice", known.0));
                    }
                    let yes = answer(flag)?
                        .and_then(|a| a.get("valueBoolean"))
                        .and_then(Value::as_bool)
                        .ok_or_else(|| format!("red flag {} is not answered yes or no", known.0))?;
                    flags.push((known.0, yes));
                }
            }
            _ => {}
        }
    }
    if m.severity.is_none() {
        return Err("the symptom questions have no severity".to_string());
    }
    for (id, _) in RED_FLAGS {
        if !flags.iter().any(|(k, _)| k == id) {
            return Err(format!("red flag {id} is not answered"));
        }
    }
    // In RED_FLAGS order, whatever order they were answered in.
    m.red_flags = RED_FLAGS
        .iter()
        .filter(|(id, _)| flags.iter().any(|(k, yes)| k == id && *yes))
        .map(|(id, _)| id.to_string())
        .collect();
    Ok(())
}

fn read_refill(qr: &Map<String, Value>, m: &mut Message) -> Result<(), String> {
    for item in items(qr)? {
        match link_id(item) {
            "medication" => {
                m.medication =
                    string_answer(item, &["valueString", "valueCoding", "valueReference"])?;
            }
            // Read so that a wrong type is caught; the queue row shows the medication only.
            "pharmacy" => {
                string_answer(item, &["valueString", "valueReference"])?;
            }
            "remaining" => {
                let Some(a) = answer(item)? else { continue };
                if !a.contains_key("valueInteger") && !a.contains_key("valueString") {
                    return Err(
                        "remaining is not answered with valueInteger or valueString".to_string()
                    );
                }
            }
            _ => {}
        }
    }
    if m.medication.is_none() {
        return Err("the refill questions name no medication".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flags(yes: &[&str]) -> Value {
        Value::Array(
            RED_FLAGS
                .iter()
                .map(
                    |(id, _)| json!({"linkId": id, "answer": [{"valueBoolean": yes.contains(id)}]}),
                )
                .collect(),
        )
    }

    fn symptom_message(severity: Value, red: Value) -> Value {
        json!({
            "resourceType": "Communication",
            "id": "m1",
            "subject": {"reference": "Patient/p1"},
            "category": [{"coding": [{"system": TASK_CATEGORY_SYSTEM, "code": "clinical"}]}],
            "sent": "2026-12-01T10:00:00-06:00",
            "contained": [{
                "resourceType": "QuestionnaireResponse", "id": "s",
                "questionnaire": SYMPTOM_QUESTIONNAIRE,
                "item": [
                    {"linkId": "what", "answer": [{"valueString": "Chest pain"}]},
                    {"linkId": "since", "answer": [{"valueString": "this morning"}]},
                    {"linkId": "severity", "answer": [{"valueInteger": severity}]},
                    {"linkId": "red-flags", "item": red}
                ]
            }],
            "payload": [{"contentReference": {"reference": "#s"}}, {"contentString": "It hurts."}]
        })
    }

    #[test]
    fn a_symptom_message_is_read_whole() {
        let Intake::Message(m) = read_message(&symptom_message(json!(9), flags(&["chest-pain"])))
        else {
            panic!("should read");
        };
        assert_eq!(m.reference.as_deref(), Some("Communication/m1"));
        assert_eq!(m.patient, "Patient/p1");
        assert_eq!(m.category, "clinical");
        assert_eq!(m.severity, Some(9));
        assert_eq!(m.red_flags, vec!["chest-pain"]);
        assert_eq!(m.symptom.as_deref(), Some("Chest pain"));
        assert_eq!(m.text, "It hurts.");
        assert!(m.sent.is_some());
    }

    #[test]
    fn strict_reading_refuses_what_it_cannot_trust() {
        for (severity, red) in [
            (json!(11), flags(&[])),
            (json!(7.5), flags(&[])),
            (json!("7"), flags(&[])),
            (json!(-1), flags(&[])),
            (
                json!(5),
                json!([{"linkId": "chest-pain", "answer": [{"valueBoolean": false}]}]),
            ),
            (
                json!(5),
                json!([{"linkId": "chest-pain", "answer": [{"valueString": "no"}]}]),
            ),
        ] {
            let v = symptom_message(severity, red);
            assert!(matches!(read_message(&v), Intake::Malformed { .. }), "{v}");
        }
        for v in [json!(null), json!([]), json!("x"), json!(3), json!({})] {
            assert!(matches!(read_message(&v), Intake::Malformed { .. }), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn read_message_never_panics(text in "\\PC{0,300}") {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let _ = read_message(&v);
            }
        }
    }
}
