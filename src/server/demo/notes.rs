//! Signed progress notes: a short SOAP note for each of the last few visits,
//! written from what actually happened at the visit.

use base64::Engine as _;
use chrono::Duration;
use serde_json::{Value, json};

use super::catalog::Problem;
use super::json::{coding, instant, reference};
use super::patient::{Chart, Visit, VisitKind};
use super::rng::Rng;
use super::staff::{self, practitioner_ref};
use crate::fhir::codes;
use crate::roles::Role;

pub(crate) fn write(chart: &Chart, rng: &mut Rng, out: &mut Vec<Value>) {
    let wanted = rng.range(2, 4) as usize;
    let first = chart.visits.len().saturating_sub(wanted);
    for (n, visit) in chart.visits[first..].iter().enumerate() {
        out.push(document(chart, visit, n + 1, rng));
    }
}

fn document(chart: &Chart, visit: &Visit, n: usize, rng: &mut Rng) -> Value {
    let signed =
        (visit.end + Duration::minutes(rng.range(5, 120))).min(chart.anchor - Duration::minutes(1));
    let text = soap(
        chart,
        visit,
        rng,
        &signed.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let (type_code, type_display, title) = if visit.emergency {
        (codes::LOINC_NOTE, "Note", "Emergency department note")
    } else {
        (codes::LOINC_PROGRESS_NOTE, "Progress note", "Progress note")
    };
    let mut resource = json!({
        "resourceType": "DocumentReference",
        "id": format!("{}-doc-{n}", chart.id),
        "status": "current",
        "docStatus": "final",
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
                "contentType": "text/plain",
                "language": "en-US",
                "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes()),
                "title": title,
                "creation": instant(signed),
            },
        }],
        "context": {
            "encounter": [reference("Encounter", &visit.id)],
            "period": { "start": instant(visit.start), "end": instant(visit.end) },
        },
    });
    if visit.clinician == Role::Resident {
        // Residents' notes are final only once an attending has co-signed them.
        resource["authenticator"] = practitioner_ref(Role::Attending);
    }
    resource
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

fn soap(chart: &Chart, visit: &Visit, rng: &mut Rng, signed: &str) -> String {
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
