//! Loading FHIR R4 data files: transaction/collection Bundles (`.json`) and
//! bulk-data NDJSON (`.ndjson`).
//!
//! Ids are kept as given (or taken from the entry's `urn:uuid:` fullUrl), so
//! loading the same files again updates nothing. `urn:uuid:` references are
//! rewritten to `Type/id`; conditional references (`Organization?identifier=…`)
//! are resolved against what is already loaded, which is why directory and
//! practitioner files are loaded first and unresolved entries get a second try
//! at the end. A file or line that cannot be read is reported with its
//! position and skipped; the rest still loads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::http::rewrite_references;
use super::params;
use super::store::Store;

#[derive(Debug, Default, Clone)]
pub struct ImportReport {
    /// Files read (including ones that failed).
    pub files: usize,
    /// Resources accepted (written or already present unchanged).
    pub resources: usize,
    /// Of `resources`, how many were already stored unchanged, or repeated
    /// within this import (the first copy of a `Type/id` wins, so a shared
    /// Organization in every patient Bundle neither churns versions nor
    /// flips between copies on re-import).
    pub unchanged: usize,
    /// One line per problem, naming the file and the line or Bundle entry.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Ndjson,
}

fn format_of(path: &Path, explicit: bool) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    match ext.as_deref() {
        Some("ndjson") => return Some(Format::Ndjson),
        Some("json") => return Some(Format::Json),
        _ => {}
    }
    // Mangled names such as `x.json"` are still meant as data files and are
    // attempted (and reported if unreadable) rather than silently skipped.
    if name.contains(".ndjson") {
        Some(Format::Ndjson)
    } else if name.contains(".json") || explicit {
        Some(Format::Json)
    } else {
        None
    }
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Format)>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else if let Some(f) = format_of(path, true) {
            out.push((path.clone(), f));
        }
    }
    out.sort_by_key(|(p, _)| (load_rank(p), p.clone()));
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Format)>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if let Some(f) = format_of(&p, false) {
            out.push((p, f));
        }
    }
    Ok(())
}

/// Directory data (organisations, locations, practitioners) first, so that
/// conditional references in patient files resolve.
fn load_rank(path: &Path) -> u8 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    const FIRST: [&str; 6] = [
        "hospitalInformation",
        "practitionerInformation",
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
    ];
    if FIRST.iter().any(|f| name.starts_with(f)) {
        0
    } else {
        1
    }
}

/// A resource waiting for a conditional reference to become resolvable.
struct Deferred {
    label: String,
    resource: Value,
}

struct Loader {
    store: Store,
    report: ImportReport,
    resolved: HashMap<String, Option<String>>,
    deferred: Vec<Deferred>,
    seen: HashSet<(String, String)>,
}

/// Imports files and directories (recursively) into the database at `db`.
pub fn import_paths(db: &Path, paths: &[PathBuf], progress: bool) -> anyhow::Result<ImportReport> {
    let files = collect_files(paths)?;
    let total_bytes: u64 = files
        .iter()
        .filter_map(|(p, _)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = if progress {
        let bar = indicatif::ProgressBar::new(total_bytes);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let mut loader = Loader {
        store: Store::open(db)?,
        report: ImportReport::default(),
        resolved: HashMap::new(),
        deferred: Vec::new(),
        seen: HashSet::new(),
    };
    for (path, format) in &files {
        loader.report.files += 1;
        let name = path.display().to_string();
        if let Some(bar) = &bar {
            bar.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
        }
        match std::fs::read(path) {
            Ok(bytes) => match format {
                Format::Ndjson => loader.ndjson(&name, &bytes)?,
                Format::Json => loader.json(&name, &bytes)?,
            },
            Err(e) => loader
                .report
                .errors
                .push(format!("{name}: cannot read: {e}")),
        }
        if let Some(bar) = &bar
            && let Ok(m) = std::fs::metadata(path)
        {
            bar.inc(m.len());
        }
    }
    loader.finish_deferred()?;
    if let Some(bar) = bar {
        bar.finish_with_message(format!(
            "{} resources from {} files",
            loader.report.resources, loader.report.files
        ));
    }
    Ok(loader.report)
}

impl Loader {
    fn ingest(&mut self, resources: Vec<Value>) -> anyhow::Result<()> {
        let n = resources.len();
        let seen = &mut self.seen;
        let fresh: Vec<Value> = resources
            .into_iter()
            .filter(|r| {
                let key = (
                    r["resourceType"].as_str().unwrap_or_default().to_string(),
                    r["id"].as_str().unwrap_or_default().to_string(),
                );
                key.1.is_empty() || seen.insert(key)
            })
            .collect();
        let written = self.store.ingest(fresh)?;
        self.report.resources += n;
        self.report.unchanged += n - written;
        Ok(())
    }

    fn ndjson(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        let mut batch = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(v) => match check_resource(&v) {
                    Ok(()) => batch.push(v),
                    Err(msg) => self
                        .report
                        .errors
                        .push(format!("{name}: line {}: {msg}", i + 1)),
                },
                Err(e) => self.report.errors.push(format!(
                    "{name}: line {}: {}",
                    i + 1,
                    strip_position(&e)
                )),
            }
            if batch.len() >= 10_000 {
                self.ingest(std::mem::take(&mut batch))?;
            }
        }
        self.ingest(batch)
    }

    fn json(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            self.report.errors.push(format!(
                "{name}: line 1: empty file, expected a FHIR Bundle or resource"
            ));
            return Ok(());
        }
        let mut value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                self.report.errors.push(format!(
                    "{name}: line {} column {}: {}",
                    e.line(),
                    e.column(),
                    strip_position(&e)
                ));
                return Ok(());
            }
        };
        if value.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return match check_resource(&value) {
                Ok(()) => self.ingest(vec![value]),
                Err(msg) => {
                    self.report.errors.push(format!("{name}: {msg}"));
                    Ok(())
                }
            };
        }
        let entries = match value.get_mut("entry").map(Value::take) {
            Some(Value::Array(entries)) => entries,
            _ => Vec::new(),
        };
        // First: the id of every entry, so references between entries resolve.
        let mut map = HashMap::new();
        let mut resources = Vec::with_capacity(entries.len());
        for (i, mut entry) in entries.into_iter().enumerate() {
            let method = entry
                .pointer("/request/method")
                .and_then(Value::as_str)
                .unwrap_or("");
            if method.eq_ignore_ascii_case("DELETE") {
                continue;
            }
            let full_url = entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(str::to_string);
            let Some(mut resource) = entry.get_mut("resource").map(Value::take) else {
                self.report
                    .errors
                    .push(format!("{name}: entry {i}: no resource"));
                continue;
            };
            if let Err(msg) = check_resource(&resource) {
                self.report.errors.push(format!("{name}: entry {i}: {msg}"));
                continue;
            }
            let ty = resource["resourceType"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let id = stable_id(&resource, full_url.as_deref(), name, i);
            resource["id"] = Value::String(id.clone());
            if let Some(full) = full_url {
                map.insert(full, format!("{ty}/{id}"));
            }
            resources.push((i, resource));
        }
        let mut ready = Vec::with_capacity(resources.len());
        for (i, mut resource) in resources {
            rewrite_references(&mut resource, &map);
            if self.resolve_conditionals(&mut resource)? {
                ready.push(resource);
            } else {
                self.deferred.push(Deferred {
                    label: format!("{name}: entry {i}"),
                    resource,
                });
            }
        }
        self.ingest(ready)
    }

    /// Rewrites conditional references it can resolve; false if any remain.
    fn resolve_conditionals(&mut self, resource: &mut Value) -> anyhow::Result<bool> {
        let mut refs = Vec::new();
        conditional_refs(resource, &mut refs);
        if refs.is_empty() {
            return Ok(true);
        }
        let mut map = HashMap::new();
        let mut all = true;
        for r in refs {
            let target = match self.resolved.get(&r) {
                Some(Some(t)) => Some(t.clone()),
                _ => {
                    let t = self.store.resolve_conditional(&r)?;
                    if t.is_some() {
                        self.resolved.insert(r.clone(), t.clone());
                    }
                    t
                }
            };
            match target {
                Some(t) => {
                    map.insert(r, t);
                }
                None => all = false,
            }
        }
        rewrite_references(resource, &map);
        Ok(all)
    }

    fn finish_deferred(&mut self) -> anyhow::Result<()> {
        let deferred = std::mem::take(&mut self.deferred);
        let mut ready = Vec::new();
        for mut d in deferred {
            if !self.resolve_conditionals(&mut d.resource)? {
                let mut left = Vec::new();
                conditional_refs(&d.resource, &mut left);
                self.report.errors.push(format!(
                    "{}: loaded with unresolved references: {}",
                    d.label,
                    left.join(", ")
                ));
            }
            ready.push(d.resource);
        }
        self.ingest(ready)
    }
}

fn conditional_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                match v {
                    Value::String(s)
                        if k == "reference"
                            && s.contains('?')
                            && s.split('?').next().is_some_and(params::is_type_name) =>
                    {
                        if !out.contains(s) {
                            out.push(s.clone());
                        }
                    }
                    _ => conditional_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| conditional_refs(v, out)),
        _ => {}
    }
}

fn check_resource(v: &Value) -> Result<(), String> {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("AuditEvent") => Err(
            "AuditEvents are recorded by the server and are never imported (skipped)".to_string(),
        ),
        Some(t) if params::is_type_name(t) => Ok(()),
        Some(t) => Err(format!("{t:?} is not a resource type")),
        None => Err("not a FHIR resource (no resourceType)".to_string()),
    }
}

/// The given id; else the uuid of a `urn:uuid:` fullUrl; else one derived
/// from the file and entry (`imp-` and the first 64 bits of the SHA-256 of
/// `file`, a newline and the entry's position), so a re-import finds the
/// same resource again, whatever Rust release built chartty.
fn stable_id(resource: &Value, full_url: Option<&str>, file: &str, index: usize) -> String {
    if let Some(id) = resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| params::is_valid_id(id))
    {
        return id.to_string();
    }
    if let Some(u) = full_url
        .and_then(|u| u.strip_prefix("urn:uuid:"))
        .filter(|u| params::is_valid_id(u))
    {
        return u.to_string();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{file}\n{index}").as_bytes());
    format!("imp-{}", super::store::hex(&digest[..8]))
}

/// serde_json appends " at line X column Y"; the caller reports the position itself.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_stable() {
        let r = json!({"resourceType":"Patient"});
        assert_eq!(stable_id(&r, Some("urn:uuid:abc-1"), "f", 0), "abc-1");
        assert_eq!(stable_id(&r, None, "f", 3), stable_id(&r, None, "f", 3));
        assert_ne!(stable_id(&r, None, "f", 3), stable_id(&r, None, "f", 4));
        // `printf 'data/a.json\n3' | sha256sum | cut -c1-16`
        assert_eq!(
            stable_id(&r, None, "data/a.json", 3),
            "imp-0b711e2381737d14"
        );
        let r = json!({"resourceType":"Patient","id":"p9"});
        assert_eq!(stable_id(&r, Some("urn:uuid:abc-1"), "f", 0), "p9");
    }

    #[test]
    fn finds_conditional_references() {
        let r = json!({"resourceType":"Encounter","serviceProvider":{"reference":"Organization?identifier=https://x|1"},
            "subject":{"reference":"Patient/1"}});
        let mut out = Vec::new();
        conditional_refs(&r, &mut out);
        assert_eq!(out, vec!["Organization?identifier=https://x|1".to_string()]);
    }

    #[test]
    fn mangled_json_names_are_attempted() {
        assert_eq!(format_of(Path::new("a.json\""), false), Some(Format::Json));
        assert_eq!(format_of(Path::new("README.md"), false), None);
        assert_eq!(
            format_of(Path::new("x.ndjson"), false),
            Some(Format::Ndjson)
        );
    }
}
