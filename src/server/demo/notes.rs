//! Progress notes: a short SOAP note for each of the last few visits,
//! written from what actually happened at the visit, and signed.
//!
//! As in a real chart, not every note is a plain signed text: emergency
//! department notes (and some others) come as HTML; the newest note is
//! sometimes still an unsigned draft; a note is now and then amended, the
//! amended copy replacing the original (which becomes `superseded`); and a
//! note written on the wrong patient's chart is marked entered in error.
//! Those choices draw from a stream of their own, so the note texts are the
//! same with or without them.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::catalog::Problem;
use super::json::{coding, instant, reference};
use super::names;
use super::patient::{Chart, Visit, VisitKind};
use super::rng::Rng;
use super::staff::{self, practitioner_ref};
use crate::fhir::codes;
use crate::roles::Role;

/// How a note ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    Signed,
    /// Saved, not signed: `docStatus` preliminary.
    Draft,
}

pub(crate) fn write(chart: &Chart, rng: &mut Rng, shape: &mut Rng, out: &mut Vec<Value>) {
    let wanted = rng.range(2, 4) as usize;
    let first = chart.visits.len().saturating_sub(wanted);
    let visits = &chart.visits[first..];
    // The newest note is more often a draft when the visit was recent.
    let draft = visits.len().checked_sub(1).filter(|&last| {
        let recent = chart.anchor - visits[last].end < Duration::days(14);
        shape.chance(if recent { 0.5 } else { 0.05 })
    });
    let amended = (visits.len() >= 2 && shape.chance(0.07)).then(|| shape.below(visits.len() - 1));
    let mut notes = Vec::with_capacity(visits.len() + 1);
    for (n, visit) in visits.iter().enumerate() {
        let signature = if draft == Some(n) {
            Signature::Draft
        } else {
            Signature::Signed
        };
        let html = visit.emergency || shape.chance(0.08);
        notes.push(document(chart, visit, n + 1, rng, signature, html));
    }
    let mut addendum = None;
    if let Some(k) = amended {
        let (original, text) = &mut notes[k];
        original["status"] = json!("superseded");
        addendum = Some(amendment(chart, original, text, visits.len() + 1, shape));
    }
    out.extend(notes.into_iter().map(|(doc, _)| doc));
    let mut count = visits.len();
    if let Some(doc) = addendum {
        count += 1;
        out.push(doc);
    }
    if let Some(last) = visits.last()
        && shape.chance(0.04)
    {
        out.push(wrong_chart(chart, last, count + 1, shape));
    }
}

fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The note as the hospital's system exports it: one paragraph per line,
/// the section letters in bold.
fn html(title: &str, text: &str) -> String {
    let mut body = String::new();
    let mut lines = text.lines();
    if let Some(heading) = lines.next() {
        body.push_str(&format!("<h1>{}</h1>\n", escape(heading)));
    }
    for line in lines.filter(|l| !l.trim().is_empty()) {
        match line.split_once(": ") {
            Some((label, rest)) if matches!(label, "S" | "O" | "A" | "P") => {
                body.push_str(&format!("<p><b>{label}:</b> {}</p>\n", escape(rest)));
            }
            _ => body.push_str(&format!("<p>{}</p>\n", escape(line))),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

fn document(
    chart: &Chart,
    visit: &Visit,
    n: usize,
    rng: &mut Rng,
    signature: Signature,
    as_html: bool,
) -> (Value, String) {
    let signed =
        (visit.end + Duration::minutes(rng.range(5, 120))).min(chart.anchor - Duration::minutes(1));
    let text = soap(
        chart,
        visit,
        rng,
        &signed.format("%Y-%m-%d %H:%M UTC").to_string(),
        signature,
    );
    let (type_code, type_display, title) = if visit.emergency {
        (codes::LOINC_NOTE, "Note", "Emergency department note")
    } else {
        (codes::LOINC_PROGRESS_NOTE, "Progress note", "Progress note")
    };
    let (content_type, data) = if as_html {
        ("text/html", encode(&html(title, &text)))
    } else {
        ("text/plain", encode(&text))
    };
    let doc_status = match signature {
        Signature::Signed => "final",
        Signature::Draft => "preliminary",
    };
    let mut resource = json!({
        "resourceType": "DocumentReference",
        "id": format!("{}-doc-{n}", chart.id),
        "status": "current",
        "docStatus": doc_status,
        "type": { "coding": [coding(codes::LOINC, type_code, type_display)], "text": type_display },
        "category": [{
            "coding": [coding(
                "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "clinical-note",
                "Clinical Note",
            )],
        }],
        "subject": reference("Patient", &chart.id),
        "date": instant(signed),
        "author": [practitioner_ref(visit.clinician)],
        "description": format!("{title}: {}", reason(chart, visit)),
        "content": [{
            "attachment": {
                "contentType": content_type,
                "language": "en-US",
                "data": data,
                "title": title,
                "creation": instant(signed),
            },
        }],
        "context": {
            "encounter": [reference("Encounter", &visit.id)],
            "period": { "start": instant(visit.start), "end": instant(visit.end) },
        },
    });
    if visit.clinician == Role::Resident && signature == Signature::Signed {
        // Residents' notes are final only once an attending has co-signed them.
        resource["authenticator"] = practitioner_ref(Role::Attending);
    }
    (resource, text)
}

/// The signed note `original` corrected a few days later: a new note with
/// the whole text and an addendum, `amended`, replacing the original.
fn amendment(chart: &Chart, original: &Value, text: &str, n: usize, shape: &mut Rng) -> Value {
    let signed_at = crate::fhir::time::instant(original["date"].as_str().unwrap_or_default())
        .unwrap_or(chart.anchor - Duration::days(30));
    let when: DateTime<Utc> =
        (signed_at + Duration::days(shape.range(1, 12))).min(chart.anchor - Duration::minutes(30));
    let author = original["author"][0].clone();
    let who = author["display"]
        .as_str()
        .unwrap_or("the author")
        .to_string();
    let reason = shape.pick(&[
        "the medication list was reviewed with the pharmacy; doses above confirmed.",
        "the allergy history was taken again with the patient's daughter; no change.",
        "the follow-up interval is 6 weeks, not 3-4 months as written.",
        "the examination findings were dictated for the wrong side; read left for right.",
    ]);
    let amended = format!(
        "{text}\nADDENDUM {}: Amended by {who}: {reason}\n",
        when.format("%Y-%m-%d %H:%M UTC")
    );
    let mut doc = original.clone();
    doc["id"] = json!(format!("{}-doc-{n}", chart.id));
    doc["status"] = json!("current");
    doc["docStatus"] = json!("amended");
    doc["date"] = json!(instant(when));
    doc["relatesTo"] = json!([{
        "code": "replaces",
        "target": reference("DocumentReference", original["id"].as_str().unwrap_or_default()),
    }]);
    let attachment = &mut doc["content"][0]["attachment"];
    let html_note = attachment["contentType"] == "text/html";
    let title = attachment["title"].as_str().unwrap_or("Note").to_string();
    attachment["data"] = json!(if html_note {
        encode(&html(&title, &amended))
    } else {
        encode(&amended)
    });
    attachment["creation"] = json!(instant(when));
    doc
}

/// A note about someone else, filed on this chart and marked in error.
fn wrong_chart(chart: &Chart, visit: &Visit, n: usize, shape: &mut Rng) -> Value {
    let other = names::person_name(shape);
    let mrn = format!("{:08}", shape.range(0, 99_999_999));
    let when = (visit.end + Duration::minutes(shape.range(30, 300)))
        .min(chart.anchor - Duration::minutes(1));
    let text = format!(
        "PROGRESS NOTE - {}\nPatient: {}, MRN {mrn}\nReason: follow-up of hypertension\n\n\
         S: Home blood pressures in the 140s. No chest pain, no headache.\n\
         O: BP 146/88 mmHg, HR 72 /min. Heart regular, lungs clear.\n\
         A: 1. Hypertension, above goal.\n\
         P: Increase lisinopril to 20 mg PO daily. Return in 4 weeks.\n\n\
         Electronically signed by {}, {}\n",
        when.format("%Y-%m-%d"),
        other.text(),
        staff::member(Role::Attending).full_name(),
        when.format("%Y-%m-%d %H:%M UTC"),
    );
    json!({
        "resourceType": "DocumentReference",
        "id": format!("{}-doc-{n}", chart.id),
        "status": "entered-in-error",
        "docStatus": "final",
        "type": { "coding": [coding(codes::LOINC, codes::LOINC_PROGRESS_NOTE, "Progress note")], "text": "Progress note" },
        "category": [{
            "coding": [coding(
                "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                "clinical-note",
                "Clinical Note",
            )],
        }],
        "subject": reference("Patient", &chart.id),
        "date": instant(when),
        "author": [practitioner_ref(Role::Attending)],
        "description": "Progress note: follow-up of hypertension (filed on the wrong chart)",
        "content": [{
            "attachment": {
                "contentType": "text/plain",
                "language": "en-US",
                "data": encode(&text),
                "title": "Progress note",
                "creation": instant(when),
            },
        }],
    })
}

/// What the visit was for, in a few words.
pub(crate) fn reason(chart: &Chart, visit: &Visit) -> String {
    match visit.kind {
        VisitKind::Acute(c) => chart.conditions[c].problem.short().to_string(),
        VisitKind::Wellness if chart.age_at(visit.start) < 18 => "well-child visit".to_string(),
        VisitKind::Wellness => "annual examination".to_string(),
        VisitKind::FollowUp => {
            let problems = chronic_at(chart, visit);
            if problems.is_empty() {
                "follow-up".to_string()
            } else {
                format!("follow-up of {}", join(problems.iter().map(|p| p.short())))
            }
        }
    }
}

fn chronic_at(chart: &Chart, visit: &Visit) -> Vec<Problem> {
    chart
        .problems_at(visit.start)
        .iter()
        .map(|c| c.problem)
        .filter(|p| p.chronic())
        .collect()
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.collect();
    match items.len() {
        0 => String::new(),
        1 => items[0].to_string(),
        n => format!("{} and {}", items[..n - 1].join(", "), items[n - 1]),
    }
}

fn lab<'a>(visit: &'a Visit, short: &str) -> Option<&'a super::patient::Result> {
    visit.labs.iter().find(|r| r.short == short)
}

fn soap(chart: &Chart, visit: &Visit, rng: &mut Rng, signed: &str, signature: Signature) -> String {
    let age = chart.age_at(visit.start);
    let sex = if chart.female() { "female" } else { "male" };
    let heading = if visit.emergency {
        "EMERGENCY DEPARTMENT NOTE"
    } else {
        "PROGRESS NOTE"
    };
    let mut s = format!(
        "{heading} - {}\nPatient: {}, {age}-year-old {sex}, MRN {}\nReason: {}\n\n",
        visit.start.format("%Y-%m-%d"),
        chart.name.text(),
        chart.mrn,
        reason(chart, visit),
    );

    s.push_str("S: ");
    match visit.kind {
        VisitKind::Acute(c) => {
            let days = rng.range(1, 5);
            s.push_str(&match chart.conditions[c].problem {
                Problem::Uri => format!(
                    "{days} days of sore throat, nasal congestion and cough. {} No shortness of breath.",
                    if rng.chance(0.5) { "Subjective fever at home." } else { "No fever." }
                ),
                Problem::Uti => format!(
                    "{days} days of dysuria and urinary frequency. No flank pain, no vomiting."
                ),
                _ => format!(
                    "Rolled the {} ankle {} {days} days ago; swelling and pain with weight bearing.",
                    if rng.chance(0.5) { "left" } else { "right" },
                    rng.pick(&["playing soccer", "stepping off a curb", "on the stairs", "running"]),
                ),
            });
        }
        VisitKind::Wellness if age < 18 => s.push_str(
            "Here with a parent. Eating and sleeping well, growing and developing normally.",
        ),
        VisitKind::Wellness => s.push_str(&format!(
            "Annual visit. Feels well, no complaints. Exercises {} times a week.",
            rng.range(1, 5)
        )),
        VisitKind::FollowUp => {
            for problem in chronic_at(chart, visit) {
                s.push_str(match problem {
                    Problem::Diabetes => "Checks sugars most mornings; no hypoglycemia. ",
                    Problem::Hypertension => "Home blood pressures mostly in the 130s. ",
                    Problem::Ckd => "No swelling, urinating normally, avoids NSAIDs. ",
                    Problem::AtrialFibrillation => {
                        "No palpitations; no bleeding or unusual bruising on warfarin. "
                    }
                    Problem::Hyperlipidemia => "Tolerating the statin, no muscle aches. ",
                    _ => "",
                });
            }
            s.push_str("Takes medications as prescribed.");
        }
    }

    s.push_str("\nO: ");
    let vitals: Vec<String> = visit
        .vitals
        .iter()
        .map(|r| format!("{} {}", r.short, r.text))
        .collect();
    s.push_str(&format!("{}.", vitals.join(", ")));
    s.push_str(match visit.kind {
        VisitKind::Acute(c) => match chart.conditions[c].problem {
            Problem::Uri => " Pharynx erythematous, no exudate. Lungs clear.",
            Problem::Uti => " Mild suprapubic tenderness, no CVA tenderness.",
            _ => " Lateral ankle swelling, tender over ATFL, no bony tenderness (Ottawa negative).",
        },
        _ => " Heart regular, lungs clear, no edema.",
    });
    if !visit.labs.is_empty() {
        let labs: Vec<String> = visit
            .labs
            .iter()
            .map(|r| {
                if r.flag.is_empty() || r.flag == "N" {
                    format!("{} {}", r.short, r.text)
                } else {
                    format!("{} {} ({})", r.short, r.text, r.flag)
                }
            })
            .collect();
        s.push_str(&format!(" Labs: {}.", labs.join(", ")));
    }

    s.push_str("\nA: ");
    let mut assessments = Vec::new();
    match visit.kind {
        VisitKind::Acute(c) => assessments.push(match chart.conditions[c].problem {
            Problem::Uri => "Viral upper respiratory infection.".to_string(),
            Problem::Uti => "Uncomplicated urinary tract infection.".to_string(),
            _ => "Lateral ankle sprain, no fracture suspected.".to_string(),
        }),
        VisitKind::Wellness => {
            assessments.push("Healthy, routine screening up to date.".to_string())
        }
        VisitKind::FollowUp => {
            for problem in chronic_at(chart, visit) {
                assessments.push(match problem {
                    Problem::Diabetes => match lab(visit, "HbA1c") {
                        Some(r) if r.text.starts_with('5') || r.text.starts_with('6') => {
                            format!("Type 2 diabetes, at goal (HbA1c {}).", r.text)
                        }
                        Some(r) => format!("Type 2 diabetes, not at goal (HbA1c {}).", r.text),
                        None => "Type 2 diabetes.".to_string(),
                    },
                    Problem::Hypertension => {
                        let controlled = visit
                            .vitals
                            .iter()
                            .any(|r| r.short == "BP" && r.flag == "N");
                        format!(
                            "Hypertension, {}.",
                            if controlled {
                                "controlled"
                            } else {
                                "above goal"
                            }
                        )
                    }
                    Problem::Ckd => match lab(visit, "eGFR") {
                        Some(r) => format!("CKD stage 3, eGFR {}.", r.text),
                        None => "CKD stage 3.".to_string(),
                    },
                    Problem::AtrialFibrillation => match lab(visit, "INR") {
                        Some(r) if r.flag == "HH" => {
                            format!(
                                "Atrial fibrillation on warfarin, INR {} supratherapeutic.",
                                r.text
                            )
                        }
                        Some(r) => format!("Atrial fibrillation on warfarin, INR {}.", r.text),
                        None => "Atrial fibrillation on warfarin.".to_string(),
                    },
                    Problem::Hyperlipidemia => "Hyperlipidemia on statin.".to_string(),
                    _ => String::new(),
                });
            }
        }
    }
    for (n, a) in assessments.iter().enumerate() {
        s.push_str(&format!("{}{}. {a}", if n == 0 { "" } else { " " }, n + 1));
    }

    s.push_str("\nP: ");
    for p in &chart.prescriptions {
        let started_here = p.visit.is_some_and(|v| chart.visits[v].id == visit.id)
            || (p.start >= visit.start && p.start <= visit.end + Duration::days(1));
        let running = p.start <= visit.start && p.end.is_none_or(|e| e > visit.end);
        if started_here {
            s.push_str(&format!("Start {}. ", p.drug.sig));
        } else if running {
            s.push_str(&format!("Continue {}. ", p.drug.sig));
        }
    }
    for r in visit
        .labs
        .iter()
        .filter(|r| r.flag == "HH" || r.flag == "LL")
    {
        s.push_str(&format!(
            "Critical {} {} reviewed with the patient today; management adjusted. ",
            r.short, r.text
        ));
    }
    s.push_str(match visit.kind {
        VisitKind::FollowUp => "Labs before next visit. Return in 3-4 months.",
        VisitKind::Wellness => "Return in one year.",
        VisitKind::Acute(_) => "Return if not improving within a week or if worse.",
    });

    if signature == Signature::Draft {
        s.push_str(&format!(
            "\n\nDRAFT, not signed. Last saved by {}, {signed}\n",
            staff::member(visit.clinician).full_name()
        ));
        return s;
    }
    s.push_str(&format!(
        "\n\nElectronically signed by {}, {signed}",
        staff::member(visit.clinician).full_name()
    ));
    if visit.clinician == Role::Resident {
        s.push_str(&format!(
            "\nCo-signed by {}",
            staff::member(Role::Attending).full_name()
        ));
    }
    s.push('\n');
    s
}
