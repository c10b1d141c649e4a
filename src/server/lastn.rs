//! `Observation/$lastn`: the newest `max` results of each test of a patient,
//! the standard FHIR operation (http://hl7.org/fhir/OperationDefinition/Observation-lastn).
//!
//! It answers "the latest of every test" without fetching a patient's whole
//! history: a patient with 250 finger-stick glucose readings still gets the
//! one potassium drawn a month ago. The other parameters are Observation
//! search parameters (`category`, `code`, `status`, `date`…) and are applied
//! before ranking, so `status=final,amended,corrected` keeps a cancelled
//! newer result from displacing the valid older one.
//!
//! The `idx_lastn` table holds, per Observation, its subject, its test (see
//! [`params::lastn_group`]) and its effective time, indexed as
//! `(subject, grp, eff, rid)`: the tests of a patient are read from the
//! index, then each test's newest matching results in index order, so the
//! cost follows the number of tests and `max`, not the length of the history.

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::outcome::FhirError;
use super::params;
use super::search::{self, Summary};
use super::store;

/// Results per test when `max` is not given (the operation's default).
pub const DEFAULT_MAX: usize = 1;
/// The largest `max` honoured.
pub const MAX_MAX: usize = 100;

/// Search result parameters that do not apply to `$lastn` (it is not paged
/// and its order is its own): reported as ignored.
const NOT_APPLIED: &[&str] = &[
    "_count",
    "_sort",
    "_cursor",
    "_include",
    "_revinclude",
    "_total",
];

/// Runs `Observation/$lastn` with the request's parameters and the
/// caller's `forced` scope conditions; returns a searchset Bundle.
pub fn bundle(
    conn: &Connection,
    request: &[(String, String)],
    forced: &[(String, String)],
    base: &str,
    strict: bool,
) -> Result<Value, FhirError> {
    bundle_with(conn, request, forced, &[], base, strict, &mut |s| {
        Ok(Some(s.value()))
    })
}

/// [`bundle`] with SQL scope conditions too, and `show` asked for every
/// result (what the caller may see of it, or `None` to leave it out).
pub fn bundle_with(
    conn: &Connection,
    request: &[(String, String)],
    forced: &[(String, String)],
    restrict: &[(String, Vec<Sql>)],
    base: &str,
    strict: bool,
    show: &mut dyn FnMut(&store::Stored) -> Result<Option<Value>, FhirError>,
) -> Result<Value, FhirError> {
    let mut max = DEFAULT_MAX;
    let mut searched = Vec::new();
    let mut ignored = Vec::new();
    for (name, value) in request {
        match name.as_str() {
            "max" => {
                max = value
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| FhirError::bad_request("max must be a positive whole number"))?
                    .min(MAX_MAX);
            }
            n if NOT_APPLIED.contains(&n) => {
                ignored.push(format!("{name} (not applied by $lastn)"))
            }
            _ => searched.push((name.clone(), value.clone())),
        }
    }
    let subjects = subjects(&searched)?;
    if subjects.is_empty() {
        return Err(FhirError::bad_request(
            "Observation/$lastn needs the patient: patient=Patient/123 (or subject=)",
        ));
    }
    let mut q = search::parse("Observation", &searched, forced)?;
    for (sql, args) in restrict {
        q.restrict(sql.clone(), args.clone());
    }
    let mut unknown = q.unknown.clone();
    unknown.append(&mut ignored);
    if strict && !unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown search parameters: {}",
            unknown.join(", ")
        )));
    }

    let mut found = Vec::new();
    for subject in &subjects {
        let mut tests = newest_per_test(conn, &q, subject, max)?;
        // The test with the most recent result first; within a test, newest
        // first (as read from the index).
        tests.sort_by(|a, b| b.newest.cmp(&a.newest).then_with(|| a.group.cmp(&b.group)));
        found.extend(tests.into_iter().flat_map(|t| t.results));
    }

    let mut shown = Vec::with_capacity(found.len());
    for s in &found {
        if let Some(v) = show(s)? {
            shown.push((s, v));
        }
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": shown.len(),
        "link": [{"relation": "self", "url": self_link(base, request)}],
    });
    let mut entries = Vec::new();
    if q.summary != Summary::Count {
        for (s, v) in shown {
            entries.push(json!({
                "fullUrl": format!("{base}/{}/{}", s.ty, s.id),
                "resource": q.present(v),
                "search": {"mode": "match"}
            }));
        }
    }
    if let Some(e) = search::unknown_outcome(&unknown) {
        entries.push(e);
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(bundle)
}

/// The results picked for one test, newest first.
struct Test {
    group: String,
    /// Effective time of the newest.
    newest: i64,
    results: Vec<store::Stored>,
}

/// `Type/id` of every patient or subject asked for.
fn subjects(query: &[(String, String)]) -> Result<Vec<String>, FhirError> {
    let mut out = Vec::new();
    for (name, value) in query {
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name.as_str(), None),
        };
        if base != "patient" && base != "subject" {
            continue;
        }
        for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let typed = match modifier {
                Some(t) if params::is_type_name(t) && !v.contains('/') => format!("{t}/{v}"),
                _ if base == "patient" && !v.contains('/') => format!("Patient/{v}"),
                _ => v.to_string(),
            };
            if !typed.contains('/') {
                return Err(FhirError::bad_request(format!(
                    "{name}: {v:?} needs its type, e.g. subject=Patient/{v}"
                )));
            }
            let r = params::normalize_reference(&typed).ok_or_else(|| {
                FhirError::bad_request(format!("{name}: {v:?} is not a reference"))
            })?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        // Further patient/subject parameters narrow these (they are applied
        // as search conditions to every candidate).
        break;
    }
    Ok(out)
}

/// The newest `max` results of each test of `subject` that match `q`.
fn newest_per_test(
    conn: &Connection,
    q: &search::Query,
    subject: &str,
    max: usize,
) -> Result<Vec<Test>, FhirError> {
    let groups: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT grp FROM idx_lastn WHERE subject = ?1")?
        .query_map([subject], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let (filters, filter_args) = q.row_filters();
    let sql = format!(
        "SELECT r.rid, r.type, r.id, r.version, r.lu, r.deleted, r.json, l.eff
         FROM idx_lastn l JOIN resources r ON r.rid = l.rid
         WHERE l.subject = ? AND l.grp = ? AND r.deleted = 0 AND {filters}
         ORDER BY l.eff DESC, l.rid DESC LIMIT ?"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut out = Vec::new();
    for group in groups {
        let mut args = vec![Sql::Text(subject.to_string()), Sql::Text(group.clone())];
        args.extend(filter_args.iter().cloned());
        args.push(Sql::Integer(max as i64));
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut test = Test {
            group,
            newest: i64::MIN,
            results: Vec::new(),
        };
        while let Some(row) = rows.next()? {
            if test.results.is_empty() {
                test.newest = row.get(7)?;
            }
            test.results.push(store::row_to_stored(row)?);
        }
        if !test.results.is_empty() {
            out.push(test);
        }
    }
    Ok(out)
}

fn self_link(base: &str, request: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in request {
        ser.append_pair(k, v);
    }
    let qs = ser.finish();
    if qs.is_empty() {
        format!("{base}/Observation/$lastn")
    } else {
        format!("{base}/Observation/$lastn?{qs}")
    }
}
