//! Data links filled from the open chart: the same rules the cover sheet
//! reads by (status, unreadable records, units as written), as text fit for
//! a note. Each block says when it was pulled; a note is refreshed at
//! signing, block by block, unless the clinician edited the block by hand.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::chart::allergies::{self, Headline};
use crate::chart::results::{self, Kind, flag_for};
use crate::chart::{ChartData, RecordNumber, timefmt};
use crate::fhir::status::{self, Verdict};
use crate::notes::fields::{DataLink, Placeholder, placeholders};

/// What the filling reads.
pub struct NoteContext<'a> {
    pub chart: &'a ChartData,
    pub now: DateTime<Utc>,
    pub tz: Tz,
    /// The signed-in user, as the note names its author.
    pub author: &'a str,
    pub records: &'a RecordNumber,
}

impl NoteContext<'_> {
    fn when(&self, s: &str) -> String {
        timefmt::when(s, self.tz)
    }

    fn pulled(&self) -> String {
        timefmt::instant_short(self.now, self.now, self.tz)
    }
}

/// The text of one data link.
pub fn data(link: &DataLink, ctx: &NoteContext) -> String {
    let chart = ctx.chart;
    match link {
        DataLink::Demographics => {
            let p = &chart.patient;
            let sex = match p.gender.as_deref() {
                Some("female") => "F",
                Some("male") => "M",
                Some("other") => "X",
                _ => "sex unknown",
            };
            let dob = p.birth_date.as_deref().unwrap_or("unknown");
            let age = p
                .birth_date
                .as_deref()
                .and_then(|b| age_years(b, timefmt::wall_clock(ctx.now, ctx.tz)))
                .map(|a| format!("{a}y"))
                .unwrap_or_else(|| "age unknown".into());
            let id = match ctx.records.label(p) {
                Some((v, false)) => format!("MRN {v}"),
                Some((v, true)) => format!("ID {v}"),
                None => "no identifier".into(),
            };
            format!("{} · {sex} · {age} · DOB {dob} · {id}", p.display_name())
        }
        DataLink::Allergies => {
            let v = allergies::view(&chart.allergies);
            let mut s = format!("Allergies (as of {}): ", ctx.pulled());
            s.push_str(&match &v.headline {
                Headline::NotAvailable(e) => format!("NOT AVAILABLE ({e}) — ask the patient"),
                Headline::Unknown => {
                    "UNKNOWN — not every allergy record could be read; ask the patient".into()
                }
                Headline::NoneRecorded => allergies::NO_ALLERGIES_RECORDED.into(),
                Headline::NoKnown(words) => words.join("; "),
                Headline::Listed(list) => list
                    .iter()
                    .map(|l| l.short())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
            if v.unreadable > 0 && matches!(v.headline, Headline::Listed(_)) {
                s.push_str(&format!(
                    " (and {} record(s) that could not be read)",
                    v.unreadable
                ));
            }
            s
        }
        DataLink::Problems => list_block(
            "Active problems",
            ctx,
            chart.conditions.failed.as_deref(),
            chart.conditions.is_complete(),
            chart.conditions.items.iter().filter_map(|c| {
                let v = status::problem(c);
                let name = c.code.as_ref()?.label()?.to_string();
                shown(v, name)
            }),
        ),
        DataLink::Medications => list_block(
            "Medications",
            ctx,
            chart.medications.failed.as_deref(),
            chart.medications.is_complete(),
            chart.medications.items.iter().filter_map(|m| {
                let v = status::medication(m);
                let mut name = m.medication_label().to_string();
                if let Some(d) = m.dose_label() {
                    name.push_str(&format!(" — {d}"));
                }
                shown(v, name)
            }),
        ),
        DataLink::Vitals => {
            let groups = results::group(&chart.vitals.items, Kind::Vital);
            list_block(
                "Vitals",
                ctx,
                chart.vitals.failed.as_deref(),
                chart.vitals.is_complete(),
                groups.iter().filter_map(|g| {
                    let o = g.latest()?;
                    Some(format!("{}: {}", g.name, value_text(o, ctx)))
                }),
            )
        }
        DataLink::Labs => {
            let groups = results::group(&chart.labs.items, Kind::Lab);
            let key: Vec<&str> = results::KEY_LABS.iter().map(|(c, _)| *c).collect();
            list_block(
                "Labs (latest)",
                ctx,
                chart.labs.failed.as_deref(),
                chart.labs.is_complete(),
                groups
                    .iter()
                    .filter(|g| g.loinc.as_deref().is_some_and(|l| key.contains(&l)))
                    .filter_map(|g| Some(format!("{}: {}", g.name, value_text(g.latest()?, ctx)))),
            )
        }
        DataLink::Results { loinc, n } => {
            let groups = results::group(&chart.labs.items, Kind::Lab);
            let found: Vec<_> = groups
                .iter()
                .filter(|g| g.loinc.as_deref() == Some(loinc.as_str()))
                .collect();
            if let Some(e) = &chart.labs.failed {
                return format!("Results {loinc}: not available ({e})");
            }
            if found.is_empty() {
                let name = results::KEY_LABS
                    .iter()
                    .find(|(c, _)| c == loinc)
                    .map_or(loinc.as_str(), |(_, n)| *n);
                return format!("{name}: no result on file (as of {})", ctx.pulled());
            }
            found
                .iter()
                .map(|g| {
                    let values: Vec<String> = g
                        .values
                        .iter()
                        .take(*n)
                        .map(|o| value_text(o, ctx))
                        .collect();
                    format!("{} (last {}): {}", g.name, values.len(), values.join("; "))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        DataLink::Today => timefmt::date(&ctx.now.to_rfc3339(), ctx.tz),
        DataLink::Author => ctx.author.to_string(),
    }
}

/// `6.8 mmol/L HH! (2026-10-11 08:00, 6 wk ago) [prelim]`.
fn value_text(o: &crate::fhir::model::Observation, ctx: &NoteContext) -> String {
    let mut s = format!("{} {}", o.value_label(), o.unit())
        .trim_end()
        .to_string();
    if let Some(f) = flag_for(o) {
        s.push_str(&format!(" {f}"));
    }
    let when = o.when().map(|w| ctx.when(w)).unwrap_or_default();
    let age = results::stale_label(o, ctx.now, Duration::days(30))
        .map(|a| format!(", {a}"))
        .unwrap_or_default();
    if !when.is_empty() {
        s.push_str(&format!(" ({when}{age})"));
    }
    if let Some(m) = status::observation(o).mark() {
        s.push_str(&format!(" [{m}]"));
    }
    s
}

fn shown(v: Verdict, name: String) -> Option<String> {
    match v {
        Verdict::Hide(_) => None,
        Verdict::Show => Some(name),
        Verdict::Mark(m) => Some(format!("{name} [{m}]")),
    }
}

/// `Heading (as of 14:05):` and one line per item, or why there is none.
fn list_block(
    heading: &str,
    ctx: &NoteContext,
    failed: Option<&str>,
    complete: bool,
    items: impl Iterator<Item = String>,
) -> String {
    if let Some(e) = failed {
        return format!("{heading}: not available ({e})");
    }
    let items: Vec<String> = items.collect();
    let mut s = format!("{heading} (as of {}):", ctx.pulled());
    if items.is_empty() {
        s.push_str(if complete {
            " none recorded"
        } else {
            " none among what could be read"
        });
    }
    for i in items {
        s.push_str(&format!("\n- {i}"));
    }
    if !complete && !s.ends_with("could be read") {
        s.push_str("\n(not every record could be read: see the chart)");
    }
    s
}

fn age_years(birth: &str, now: DateTime<Utc>) -> Option<i32> {
    let born = crate::fhir::time::instant(birth)?.date_naive();
    now.date_naive().years_since(born).map(|y| y as i32)
}

/// A note's text made from a template's, and the data blocks it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Filled {
    pub text: String,
    /// Each data link and the exact text it put in (found again at refresh).
    pub blocks: Vec<(DataLink, String)>,
}

/// Replace the data links of `template_text`; blanks and pick-lists stay
/// for the clinician.
pub fn fill(template_text: &str, ctx: &NoteContext) -> Filled {
    let mut text = String::with_capacity(template_text.len() * 2);
    let mut blocks = Vec::new();
    let mut at = 0;
    for p in placeholders(template_text) {
        if let Placeholder::Data { offset, len, link } = p {
            text.push_str(&template_text[at..offset]);
            let block = inert(&data(&link, ctx));
            text.push_str(&block);
            blocks.push((link, block));
            at = offset + len;
        }
    }
    text.push_str(&template_text[at..]);
    Filled { text, blocks }
}

/// Chart data never becomes a field: a `***` or `{{` in a medication or
/// problem name would add a blank that blocks signing, or a pick-list
/// offering choices its author made up. They are shown with look-alikes.
pub fn inert(block: &str) -> String {
    block.replace("***", "∗∗∗").replace("{{", "{\u{200a}{")
}

/// Pull every data block of `text` again. A block the clinician changed
/// by hand is left as it is and named in the second value.
pub fn refresh(
    text: &str,
    blocks: &[(DataLink, String)],
    ctx: &NoteContext,
) -> (Filled, Vec<DataLink>) {
    let mut out = text.to_string();
    let mut new_blocks = Vec::new();
    let mut edited = Vec::new();
    for (link, old) in blocks {
        let new = inert(&data(link, ctx));
        match out.find(old.as_str()) {
            Some(i) if !old.is_empty() => {
                out.replace_range(i..i + old.len(), &new);
                new_blocks.push((link.clone(), new));
            }
            _ => {
                edited.push(link.clone());
                new_blocks.push((link.clone(), old.clone()));
            }
        }
    }
    (
        Filled {
            text: out,
            blocks: new_blocks,
        },
        edited,
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chart::Section;
    use chrono::TimeZone;
    use serde_json::json;

    /// A chart with every kind of data a note pulls in, and records a
    /// note must leave out (refuted, stopped, cancelled).
    pub(crate) fn chart() -> ChartData {
        let patient = serde_json::from_value(json!({"resourceType": "Patient", "id": "p1",
            "name": [{"family": "Nguyễn", "given": ["Thị", "Lan"]}], "gender": "female",
            "birthDate": "1971-05-14",
            "identifier": [{"system": crate::fhir::codes::MRN_SYSTEM, "value": "00100001"}]}))
        .unwrap();
        let mut c = ChartData::empty(patient);
        c.allergies = Section::loaded(vec![
            serde_json::from_value(json!({"code": {"text": "Penicillin"}, "criticality": "high"}))
                .unwrap(),
            serde_json::from_value(json!({"code": {"text": "Sulfa"},
                "verificationStatus": {"coding": [{"code": "refuted"}]}}))
            .unwrap(),
        ]);
        c.medications = Section::loaded(vec![
            serde_json::from_value(json!({"status": "active",
                "medicationCodeableConcept": {"text": "Metformin 500 MG"},
                "dosageInstruction": [{"text": "500 mg twice daily"}]}))
            .unwrap(),
            serde_json::from_value(json!({"status": "on-hold",
                "medicationCodeableConcept": {"text": "Warfarin 5 MG"}}))
            .unwrap(),
            serde_json::from_value(json!({"status": "stopped",
                "medicationCodeableConcept": {"text": "Lisinopril"}}))
            .unwrap(),
        ]);
        let k = |v: &str, when: &str, status: &str| -> crate::fhir::model::Observation {
            serde_json::from_str(&format!(
                r#"{{"status": "{status}", "category": [{{"coding": [{{"code": "laboratory"}}]}}],
                "code": {{"coding": [{{"system": "http://loinc.org", "code": "2823-3"}}], "text": "Potassium"}},
                "effectiveDateTime": "{when}", "valueQuantity": {{"value": {v}, "unit": "mmol/L"}},
                "interpretation": [{{"coding": [{{"code": "N"}}]}}]}}"#
            ))
            .unwrap()
        };
        c.labs = Section::loaded(vec![
            k("5.0", "2026-11-20T08:00:00Z", "final"),
            k("7.9", "2026-11-21T08:00:00Z", "cancelled"),
            k("4.10", "2026-10-01T08:00:00Z", "final"),
        ]);
        c.vitals = Section::loaded(vec![
            serde_json::from_str(
                r#"{"status": "final", "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"text": "Body temperature"}, "effectiveDateTime": "2026-11-22T10:00:00Z",
            "valueQuantity": {"value": 37.20, "unit": "Cel", "code": "Cel"}}"#,
            )
            .unwrap(),
        ]);
        c
    }

    fn ctx(c: &ChartData) -> NoteContext<'_> {
        static RECORDS: std::sync::OnceLock<RecordNumber> = std::sync::OnceLock::new();
        NoteContext {
            chart: c,
            now: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
            tz: Tz::UTC,
            author: "Dr. Ama Mensah",
            records: RECORDS.get_or_init(RecordNumber::default),
        }
    }

    #[test]
    fn data_links_read_the_chart_by_its_rules() {
        let c = chart();
        let x = ctx(&c);
        assert_eq!(
            data(&DataLink::Demographics, &x),
            "Nguyễn, Thị Lan · F · 55y · DOB 1971-05-14 · MRN 00100001"
        );
        assert_eq!(
            data(&DataLink::Allergies, &x),
            "Allergies (as of 12:00): Penicillin (high)"
        );
        assert_eq!(
            data(&DataLink::Medications, &x),
            "Medications (as of 12:00):\n- Metformin 500 MG — 500 mg twice daily\n- Warfarin 5 MG [held]"
        );
        assert_eq!(
            data(
                &DataLink::Results {
                    loinc: "2823-3".into(),
                    n: 3
                },
                &x
            ),
            "Potassium (last 2): 5.0 mmol/L (2026-11-20 08:00); 4.10 mmol/L (2026-10-01 08:00, 7 wk ago)",
            "the cancelled 7.9 is not a value; decimals as sent"
        );
        assert_eq!(
            data(&DataLink::Vitals, &x),
            "Vitals (as of 12:00):\n- Body temperature: 37.20 °C (2026-11-22 10:00)"
        );
        assert_eq!(
            data(
                &DataLink::Results {
                    loinc: "4548-4".into(),
                    n: 3
                },
                &x
            ),
            "Hemoglobin A1c: no result on file (as of 12:00)"
        );
        assert_eq!(data(&DataLink::Today, &x), "2026-11-23");
    }

    #[test]
    fn chart_data_never_becomes_a_field() {
        let mut c = chart();
        c.medications = Section::loaded(vec![
            serde_json::from_value(json!({"status": "active",
                "medicationCodeableConcept": {"text": "Evil *** {{pick: X | a | b}}"}}))
            .unwrap(),
        ]);
        let f = fill("Meds: {{medications}}\nPlan: ***", &ctx(&c));
        assert!(f.text.contains("Evil"), "{}", f.text);
        let found =
            crate::notes::fields::fields(&f.text.lines().map(str::to_string).collect::<Vec<_>>());
        assert_eq!(
            found.len(),
            1,
            "only the template's own blank: {found:?}\n{}",
            f.text
        );
    }

    #[test]
    fn a_note_is_filled_and_refreshed_block_by_block() {
        let mut c = chart();
        let f = fill(
            "S: ***\n{{allergies}}\n{{medications}}\nA: {{pick: X | a | b}}",
            &ctx(&c),
        );
        assert!(
            f.text
                .starts_with("S: ***\nAllergies (as of 12:00): Penicillin (high)\nMedications")
        );
        assert!(
            f.text.ends_with("A: {{pick: X | a | b}}"),
            "fields stay for the clinician"
        );
        assert_eq!(f.blocks.len(), 2);
        // The clinician edits the medication block; an allergy is added meanwhile.
        let typed = f
            .text
            .replace("twice daily", "twice daily (patient takes once)");
        c.allergies
            .items
            .push(serde_json::from_value(json!({"code": {"text": "Latex"}})).unwrap());
        let (r, edited) = refresh(&typed, &f.blocks, &ctx(&c));
        assert!(r.text.contains("Penicillin (high), Latex"), "{}", r.text);
        assert!(r.text.contains("(patient takes once)"), "the edit is kept");
        assert_eq!(edited, [DataLink::Medications]);
    }
}
