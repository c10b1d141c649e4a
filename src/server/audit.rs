//! The audit trail: one record per interaction, appended in the same
//! database transaction as the change it records (a write that cannot be
//! audited does not happen) and, for reads, committed before the answer
//! goes out. Each record says who (user, name, role, practitioner), from
//! where, what (action, type, id, version, query, every resource returned
//! or written), which patients, the outcome (HTTP status, and the rule or
//! error), when, and which request it belongs to (a batch and its entries
//! share one).
//!
//! Records are append-only (triggers refuse updates and deletes) and
//! chained: each carries the SHA-256 of the one before it and its own,
//!
//! ```text
//! hash = SHA-256(prev ‖ JSON [seq, at, request, source, user, name, role, who,
//!                             action, type, id, version, query, entities,
//!                             patients, status, detail])
//! ```
//!
//! with `entities` and `patients` as the JSON text stored, and `prev` of
//! the first record 32 zero bytes (or the last hash of the records
//! archived before it). `audit_head` holds the last sequence number and
//! hash, updated with every append, so a record removed from the end is
//! noticed too. [`verify`] walks the chain and names the first record
//! that was edited, inserted or deleted; [`archive`] moves the oldest
//! records to a file with their hashes, so the chain can still be checked
//! across the file and the database.
//!
//! Clients search the trail as FHIR `AuditEvent`s (rendered from these
//! rows, never stored as resources): privacy officers by patient
//! (`AuditEvent?patient=`) and by user (`AuditEvent?agent=` or `user=`).
//! The by-patient index is derived from the records by the writer between
//! requests ([`index_patients`]); a search also reads the records appended
//! since, so nothing recorded is missing from it.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::fhir::codes::ROLE_SYSTEM;

use super::access::Caller;
use super::store;

/// One interaction to record (before it is given its place in the chain).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Epoch milliseconds.
    pub at: i64,
    /// The HTTP request this belongs to (shared by a batch and its entries).
    pub request: String,
    /// Where the request came from (peer address), or `cli`.
    pub source: Option<String>,
    /// Login, display name, role and `Practitioner/<id>` of the caller.
    pub user: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub who: Option<String>,
    /// read, vread, history, search, operation, create, update, delete,
    /// batch, transaction, whoami, or an administrative action.
    pub action: String,
    pub ty: Option<String>,
    pub id: Option<String>,
    pub version: Option<i64>,
    /// The search parameters, as sent.
    pub query: Option<String>,
    /// `Type/id/_history/v` of every resource returned or written.
    pub entities: Vec<String>,
    /// `Patient/<id>` of every patient the interaction concerned.
    pub patients: Vec<String>,
    pub status: u16,
    /// The rule that refused it, or what was wrong.
    pub detail: Option<String>,
}

impl Event {
    /// An event of `caller` with the request's context.
    pub fn of(caller: Option<&Caller>, ctx: &Context, action: &str) -> Event {
        let mut e = Event {
            at: ctx.at,
            request: ctx.request.clone(),
            source: ctx.source.clone(),
            action: action.to_string(),
            ..Event::default()
        };
        if let Some(Caller::User(u)) = caller {
            e.user = Some(u.login.clone());
            e.name = Some(u.name.clone());
            e.role = Some(u.role.code().to_string());
            e.who = u.practitioner.clone();
        }
        e
    }
}

/// Where and when a request arrived.
#[derive(Debug, Clone)]
pub struct Context {
    pub request: String,
    pub source: Option<String>,
    pub at: i64,
}

impl Context {
    pub fn new(source: Option<String>) -> Context {
        use rand::RngExt;
        let bytes: [u8; 8] = rand::rng().random();
        Context {
            request: store::hex(&bytes),
            source,
            at: store::now_ms(),
        }
    }
}

/// What an interaction touched, collected as it runs.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    pub entities: Vec<String>,
    pub patients: BTreeSet<String>,
    pub version: Option<i64>,
}

impl Trail {
    /// A resource returned or written.
    pub fn saw(&mut self, ty: &str, id: &str, version: i64, resource: &Value) {
        self.entities.push(format!("{ty}/{id}/_history/{version}"));
        for p in super::access::patients_of(ty, id, resource) {
            self.patients.insert(p);
        }
    }

    pub fn patient(&mut self, reference: String) {
        self.patients.insert(reference);
    }
}

const GENESIS: [u8; 32] = [0u8; 32];

/// The last sequence number and hash the next record chains to.
fn head(conn: &Connection) -> rusqlite::Result<(i64, [u8; 32])> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE one = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((seq, hash)) => (seq, to32(&hash)),
        None => (0, GENESIS),
    })
}

fn to32(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

/// A stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub seq: i64,
    pub event: Event,
    pub entities_json: String,
    pub patients_json: String,
    pub prev: [u8; 32],
    pub hash: [u8; 32],
}

/// The hash of a record, given the hash before it.
pub fn hash_of(prev: &[u8; 32], seq: i64, e: &Event, entities: &str, patients: &str) -> [u8; 32] {
    let canonical = json!([
        seq, e.at, e.request, e.source, e.user, e.name, e.role, e.who, e.action, e.ty, e.id,
        e.version, e.query, entities, patients, e.status, e.detail
    ]);
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical.to_string().as_bytes());
    h.finalize().into()
}

/// Appends events to the chain. The caller owns the transaction (the one
/// that holds the change the events record).
pub fn append(conn: &Connection, events: &[Event]) -> rusqlite::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev) = head(conn)?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO audit (seq, at, request, source, user, name, role, who, action, type, id,
                            version, query, entities, patients, status, detail, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
    )?;
    for e in events {
        seq += 1;
        let entities = serde_json::to_string(&e.entities).unwrap_or_else(|_| "[]".into());
        let patients = serde_json::to_string(&e.patients).unwrap_or_else(|_| "[]".into());
        let hash = hash_of(&prev, seq, e, &entities, &patients);
        insert.execute(params![
            seq,
            e.at,
            e.request,
            e.source,
            e.user,
            e.name,
            e.role,
            e.who,
            e.action,
            e.ty,
            e.id,
            e.version,
            e.query,
            entities,
            patients,
            e.status,
            e.detail,
            prev.as_slice(),
            hash.as_slice()
        ])?;
        prev = hash;
    }
    conn.prepare_cached(
        "INSERT INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (one) DO UPDATE SET seq = ?1, hash = ?2",
    )?
    .execute(params![seq, prev.as_slice()])?;
    Ok(())
}

/// Records at most this many per step of [`index_patients`].
const INDEX_STEP: i64 = 5_000;

/// Brings the by-patient index up to date with the records appended since
/// it last ran (it is derived from the chain, not part of it, and kept off
/// the request path: one record names up to a page of patients, whose index
/// entries land all over the index). Searches read the records not yet
/// indexed directly. The caller owns the transaction.
pub fn index_patients(conn: &Connection) -> rusqlite::Result<usize> {
    let upto: i64 = conn
        .prepare_cached("SELECT COALESCE((SELECT upto FROM audit_indexed WHERE one = 1), 0)")?
        .query_row([], |r| r.get(0))?;
    let mut rows: Vec<(String, i64)> = Vec::new();
    let mut last = upto;
    {
        let mut stmt = conn.prepare_cached(
            "SELECT seq, patients FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut q = stmt.query(params![upto, INDEX_STEP])?;
        while let Some(r) = q.next()? {
            let seq: i64 = r.get(0)?;
            let patients: String = r.get(1)?;
            for p in serde_json::from_str::<Vec<String>>(&patients).unwrap_or_default() {
                rows.push((p, seq));
            }
            last = seq;
        }
    }
    if last == upto {
        return Ok(0);
    }
    // In index order: neighbouring entries share pages.
    rows.sort();
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO audit_patient (patient, seq) VALUES (?1, ?2)")?;
    for (p, seq) in &rows {
        insert.execute(params![p, seq])?;
    }
    conn.prepare_cached(
        "INSERT INTO audit_indexed (one, upto) VALUES (1, ?1)
         ON CONFLICT (one) DO UPDATE SET upto = ?1",
    )?
    .execute(params![last])?;
    Ok((last - upto) as usize)
}

const COLUMNS: &str = "seq, at, request, source, user, name, role, who, action, type, id, version, query, entities, patients, status, detail, prev, hash";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let entities_json: String = r.get(13)?;
    let patients_json: String = r.get(14)?;
    Ok(Row {
        seq: r.get(0)?,
        event: Event {
            at: r.get(1)?,
            request: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
            source: r.get(3)?,
            user: r.get(4)?,
            name: r.get(5)?,
            role: r.get(6)?,
            who: r.get(7)?,
            action: r.get(8)?,
            ty: r.get(9)?,
            id: r.get(10)?,
            version: r.get(11)?,
            query: r.get(12)?,
            entities: serde_json::from_str(&entities_json).unwrap_or_default(),
            patients: serde_json::from_str(&patients_json).unwrap_or_default(),
            status: r.get::<_, i64>(15)?.try_into().unwrap_or(0),
            detail: r.get(16)?,
        },
        entities_json,
        patients_json,
        prev: to32(&r.get::<_, Vec<u8>>(17)?),
        hash: to32(&r.get::<_, Vec<u8>>(18)?),
    })
}

// ---- verification ----

/// What [`verify`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// Records checked.
    pub records: usize,
    /// Last sequence number and hash (record them elsewhere to notice a
    /// rewritten chain later).
    pub head: Option<(i64, String)>,
    /// One line per problem, naming the record.
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a run of records against the hash before it; the first problem
/// of each kind names its record. Returns the last hash.
fn check_run(
    rows: impl Iterator<Item = Row>,
    mut prev_seq: i64,
    mut prev: [u8; 32],
    where_: &str,
    verdict: &mut Verdict,
) -> (i64, [u8; 32]) {
    for r in rows {
        verdict.records += 1;
        if r.seq != prev_seq + 1 {
            if r.seq > prev_seq + 1 {
                let missing = if r.seq == prev_seq + 2 {
                    format!("record {} is missing", prev_seq + 1)
                } else {
                    format!("records {} to {} are missing", prev_seq + 1, r.seq - 1)
                };
                verdict.problems.push(format!(
                    "{where_}: {missing} (deleted): record {} follows record {prev_seq}",
                    r.seq
                ));
            } else {
                verdict.problems.push(format!(
                    "{where_}: record {} is out of order after record {prev_seq} (inserted)",
                    r.seq
                ));
            }
        }
        let recomputed = hash_of(&r.prev, r.seq, &r.event, &r.entities_json, &r.patients_json);
        if recomputed != r.hash {
            verdict.problems.push(format!(
                "{where_}: record {} was changed: its content does not match its hash",
                r.seq
            ));
        } else if r.prev != prev {
            verdict.problems.push(format!(
                "{where_}: record {} does not follow the record before it (record {prev_seq}): \
                 a record was inserted, deleted or replaced there",
                r.seq
            ));
        }
        prev_seq = r.seq;
        prev = r.hash;
    }
    (prev_seq, prev)
}

/// Walks the whole chain in the database (from where the last archive
/// ended) and checks the head.
pub fn verify(conn: &Connection) -> rusqlite::Result<Verdict> {
    let mut verdict = Verdict::default();
    let start: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT upto, hash FROM audit_archive ORDER BY upto DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (start_seq, start_hash) = start.map_or((0, GENESIS), |(s, h)| (s, to32(&h)));
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY seq"))?;
    let rows: Vec<Row> = stmt.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    let (last_seq, last_hash) = check_run(
        rows.into_iter(),
        start_seq,
        start_hash,
        "database",
        &mut verdict,
    );
    let (head_seq, head_hash) = head(conn)?;
    if head_seq != 0 || last_seq != start_seq {
        if head_seq > last_seq {
            verdict.problems.push(format!(
                "database: the chain ends at record {last_seq} but its head says {head_seq}: \
                 records after {last_seq} were deleted"
            ));
        } else if head_seq < last_seq {
            verdict.problems.push(format!(
                "database: records after {head_seq} (up to {last_seq}) were added outside the server \
                 (the head says {head_seq})"
            ));
        } else if head_hash != last_hash {
            verdict.problems.push(format!(
                "database: record {last_seq} does not match the head's hash: it was replaced"
            ));
        }
    }
    if last_seq > 0 {
        verdict.head = Some((last_seq, store::hex(&last_hash)));
    }
    Ok(verdict)
}

// ---- archive ----

/// First line of an archive file.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ArchiveHeader {
    chartty_audit_archive: u32,
    first: i64,
    last: i64,
    /// Hex hash the first record chains to.
    prev: String,
    /// Hex hash of the last record.
    hash: String,
    archived_at: String,
}

fn row_json(r: &Row) -> Value {
    let e = &r.event;
    json!({
        "seq": r.seq, "at": e.at, "request": e.request, "source": e.source, "user": e.user,
        "name": e.name, "role": e.role, "who": e.who, "action": e.action, "type": e.ty,
        "id": e.id, "version": e.version, "query": e.query, "entities": r.entities_json,
        "patients": r.patients_json, "status": e.status, "detail": e.detail,
        "prev": store::hex(&r.prev), "hash": store::hex(&r.hash),
    })
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn row_from_json(v: &Value) -> Option<Row> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let entities_json = s("entities")?;
    let patients_json = s("patients")?;
    Some(Row {
        seq: v.get("seq")?.as_i64()?,
        event: Event {
            at: v.get("at")?.as_i64()?,
            request: s("request").unwrap_or_default(),
            source: s("source"),
            user: s("user"),
            name: s("name"),
            role: s("role"),
            who: s("who"),
            action: s("action")?,
            ty: s("type"),
            id: s("id"),
            version: v.get("version").and_then(Value::as_i64),
            query: s("query"),
            entities: serde_json::from_str(&entities_json).unwrap_or_default(),
            patients: serde_json::from_str(&patients_json).unwrap_or_default(),
            status: v.get("status")?.as_u64()?.try_into().ok()?,
            detail: s("detail"),
        },
        entities_json,
        patients_json,
        prev: from_hex(&s("prev")?)?,
        hash: from_hex(&s("hash")?)?,
    })
}

/// What [`archive`] moved.
#[derive(Debug, PartialEq)]
pub struct Archived {
    pub records: usize,
    pub first: i64,
    pub last: i64,
}

/// Moves the records older than `before` (epoch ms) to `out`, a new file
/// (NDJSON: a header line, then one record per line, hashes included), and
/// removes them from the database once the file is on disk. Only an
/// intact chain is archived, and only from its start: the records moved
/// are those before the first record at or after `before`.
pub fn archive(conn: &mut Connection, before: i64, out: &Path) -> anyhow::Result<Archived> {
    anyhow::ensure!(
        !out.exists(),
        "{} exists; archives are never overwritten",
        out.display()
    );
    let verdict = verify(conn)?;
    anyhow::ensure!(
        verdict.intact(),
        "the audit chain is not intact; nothing was archived:\n  {}",
        verdict.problems.join("\n  ")
    );
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let upto: Option<i64> = tx.query_row(
        "SELECT COALESCE((SELECT MIN(seq) FROM audit WHERE at >= ?1) - 1, (SELECT MAX(seq) FROM audit))",
        params![before],
        |r| r.get(0),
    )?;
    let rows: Vec<Row> = tx
        .prepare(&format!(
            "SELECT {COLUMNS} FROM audit WHERE seq <= ?1 ORDER BY seq"
        ))?
        .query_map(params![upto.unwrap_or(0)], row)?
        .collect::<rusqlite::Result<_>>()?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Archived {
            records: 0,
            first: 0,
            last: 0,
        });
    };
    let header = ArchiveHeader {
        chartty_audit_archive: 1,
        first: first.seq,
        last: last.seq,
        prev: store::hex(&first.prev),
        hash: store::hex(&last.hash),
        archived_at: store::instant(store::now_ms()),
    };
    // Written beside the target and renamed, so a file that exists is whole.
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    {
        let w = tmp.as_file_mut();
        writeln!(w, "{}", serde_json::to_string(&header)?)?;
        for r in &rows {
            writeln!(w, "{}", row_json(r))?;
        }
        w.sync_all()?;
    }
    tmp.persist_noclobber(out)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", out.display()))?;
    let (first_seq, last_seq, count) = (first.seq, last.seq, rows.len());
    tx.execute_batch("DROP TRIGGER IF EXISTS audit_no_delete;")?;
    tx.execute("DELETE FROM audit WHERE seq <= ?1", params![last_seq])?;
    tx.execute(
        "DELETE FROM audit_patient WHERE seq <= ?1",
        params![last_seq],
    )?;
    tx.execute_batch(NO_DELETE_TRIGGER)?;
    tx.execute(
        "INSERT INTO audit_archive (upto, hash, count, file, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            last_seq,
            last.hash.as_slice(),
            count as i64,
            out.display().to_string(),
            store::now_ms()
        ],
    )?;
    tx.commit()?;
    Ok(Archived {
        records: count,
        first: first_seq,
        last: last_seq,
    })
}

/// The triggers that keep the table append-only (migration 4 creates them;
/// [`archive`] drops and recreates the delete one around its removal).
pub const NO_UPDATE_TRIGGER: &str = "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;";
pub const NO_DELETE_TRIGGER: &str = "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only; chartty serve audit archive moves old ones to a file'); END;";

/// Checks archive files (in the order they were made) and that the
/// database's chain continues from the last one.
pub fn verify_with_archives(
    conn: &Connection,
    files: &[std::path::PathBuf],
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::default();
    let mut prev_seq = 0;
    let mut prev = GENESIS;
    for (i, f) in files.iter().enumerate() {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let mut lines = text.lines();
        let name = f.display().to_string();
        let header: ArchiveHeader = match lines.next().map(serde_json::from_str) {
            Some(Ok(h)) => h,
            _ => {
                verdict
                    .problems
                    .push(format!("{name}: not a chartty audit archive"));
                continue;
            }
        };
        let start = from_hex(&header.prev).unwrap_or(GENESIS);
        if i == 0 {
            prev_seq = header.first - 1;
            prev = start;
        }
        let mut rows = Vec::new();
        for (n, line) in lines.enumerate() {
            match serde_json::from_str::<Value>(line)
                .ok()
                .as_ref()
                .and_then(row_from_json)
            {
                Some(r) => rows.push(r),
                None => verdict
                    .problems
                    .push(format!("{name}: line {} is not an audit record", n + 2)),
            }
        }
        let (s, h) = check_run(rows.into_iter(), prev_seq, prev, &name, &mut verdict);
        if s != header.last || store::hex(&h) != header.hash {
            verdict.problems.push(format!(
                "{name}: the file ends at record {s}, its header says {}: records were removed from it",
                header.last
            ));
        }
        prev_seq = s;
        prev = h;
    }
    let db = verify(conn)?;
    if !files.is_empty() {
        let start: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT upto, hash FROM audit_archive ORDER BY upto DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((upto, hash)) = start
            && (upto != prev_seq || to32(&hash) != prev)
        {
            verdict.problems.push(format!(
                "the database continues from record {upto}, the archives end at record {prev_seq}"
            ));
        }
    }
    verdict.records += db.records;
    verdict.problems.extend(db.problems);
    verdict.head = db.head;
    Ok(verdict)
}

// ---- the FHIR view ----

/// The FHIR R4 AuditEvent of one record; its id is the sequence number.
pub fn audit_event(seq: i64, e: &Event) -> Value {
    let (action, subtype) = match e.action.as_str() {
        "create" => ("C", "create"),
        "update" => ("U", "update"),
        "delete" => ("D", "delete"),
        "read" => ("R", "read"),
        "vread" => ("R", "vread"),
        "history" => ("R", "history-instance"),
        "search" => ("E", "search-type"),
        "operation" => ("E", "operation"),
        "transaction" => ("E", "transaction"),
        "batch" => ("E", "batch"),
        _ => ("E", "operation"),
    };
    let outcome = match e.status {
        0..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut agent = json!({"requestor": true});
    match (&e.who, &e.user) {
        (Some(who), _) => agent["who"] = json!({"reference": who, "display": e.name}),
        (None, Some(_)) => agent["who"] = json!({"display": e.name}),
        (None, None) => agent["name"] = json!("anonymous (no user)"),
    }
    if let Some(login) = &e.user {
        agent["altId"] = json!(login);
    }
    if let Some(role) = &e.role {
        agent["role"] = json!([{"coding": [{"system": ROLE_SYSTEM, "code": role}]}]);
    }
    if let Some(source) = &e.source {
        agent["network"] = json!({"address": source, "type": "2"});
    }
    let mut entities = Vec::new();
    for what in &e.entities {
        entities.push(json!({"what": {"reference": what}}));
    }
    if e.entities.is_empty()
        && let Some(ty) = &e.ty
    {
        let mut ent = match &e.id {
            Some(id) => json!({"what": {"reference": format!("{ty}/{id}")}}),
            None => json!({"type": {"system": "http://hl7.org/fhir/resource-types", "code": ty}}),
        };
        if let Some(q) = &e.query {
            ent["query"] = json!(base64_of(q));
        }
        entities.push(ent);
    } else if let Some(q) = &e.query {
        entities.push(
            json!({"type": {"system": "http://hl7.org/fhir/resource-types", "code": e.ty},
            "query": base64_of(q)}),
        );
    }
    for p in &e.patients {
        entities.push(json!({"what": {"reference": p},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}));
    }
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": seq.to_string(),
        "meta": {"versionId": "1", "lastUpdated": store::instant(e.at)},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": store::instant(e.at),
        "outcome": outcome,
        "outcomeDesc": match &e.detail {
            Some(d) => format!("{} {d}", e.status),
            None => e.status.to_string(),
        },
        "agent": [agent],
        "source": {"observer": {"display": "chartty portal"}},
        "extension": [{"url": "urn:chartty:audit-request", "valueString": e.request}],
    });
    if !entities.is_empty() {
        ev["entity"] = Value::Array(entities);
    }
    ev
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// One record by sequence number.
pub fn read(conn: &Connection, seq: i64) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit WHERE seq = ?1"))?
        .query_row(params![seq], row)
        .optional()
}

/// A search of the trail, newest first.
#[derive(Debug, Default)]
pub struct Search {
    /// These records only (by sequence number).
    pub ids: Vec<i64>,
    pub patient: Option<String>,
    /// `Practitioner/<id>` of the caller.
    pub agent: Option<String>,
    /// Login of the caller.
    pub user: Option<String>,
    /// Any `Type/id` the record names.
    pub entity: Option<String>,
    /// Any of these actions (empty: all).
    pub actions: Vec<String>,
    /// `0`, `4` or `8` (AuditEvent.outcome).
    pub outcome: Option<String>,
    /// Inclusive epoch ms bounds.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Records below this sequence number (paging).
    pub before: Option<i64>,
    pub count: usize,
}

/// Matching records, newest first, at most `count + 1` (one more says
/// there is a next page).
pub fn search(conn: &Connection, s: &Search) -> rusqlite::Result<Vec<Row>> {
    use rusqlite::types::Value as Sql;
    let mut sql = format!("SELECT {COLUMNS} FROM audit a WHERE 1");
    let mut args: Vec<Sql> = Vec::new();
    if !s.ids.is_empty() {
        let marks = vec!["?"; s.ids.len()].join(", ");
        sql.push_str(&format!(" AND a.seq IN ({marks})"));
        args.extend(s.ids.iter().map(|i| Sql::Integer(*i)));
    }
    if let Some(p) = &s.patient {
        // Indexed records, and the few appended since the index last ran.
        sql.push_str(
            " AND (a.seq IN (SELECT seq FROM audit_patient WHERE patient = ?)
                   OR (a.seq > COALESCE((SELECT upto FROM audit_indexed WHERE one = 1), 0)
                       AND instr(a.patients, ?) > 0))",
        );
        args.push(Sql::Text(p.clone()));
        args.push(Sql::Text(format!("\"{p}\"")));
    }
    if let Some(w) = &s.agent {
        sql.push_str(" AND a.who = ?");
        args.push(Sql::Text(w.clone()));
    }
    if let Some(u) = &s.user {
        sql.push_str(" AND a.user = ?");
        args.push(Sql::Text(u.clone()));
    }
    if let Some(e) = &s.entity {
        sql.push_str(" AND ((a.type || '/' || a.id) = ? OR instr(a.entities, ?) > 0)");
        args.push(Sql::Text(e.clone()));
        args.push(Sql::Text(format!("\"{e}/_history/")));
    }
    if !s.actions.is_empty() {
        let marks = vec!["?"; s.actions.len()].join(", ");
        sql.push_str(&format!(" AND a.action IN ({marks})"));
        args.extend(s.actions.iter().map(|a| Sql::Text(a.clone())));
    }
    match s.outcome.as_deref() {
        Some("0") => sql.push_str(" AND a.status < 400"),
        Some("4") => sql.push_str(" AND a.status >= 400 AND a.status < 500"),
        Some(_) => sql.push_str(" AND a.status >= 500"),
        None => {}
    }
    if let Some(f) = s.from {
        sql.push_str(" AND a.at >= ?");
        args.push(Sql::Integer(f));
    }
    if let Some(t) = s.to {
        sql.push_str(" AND a.at <= ?");
        args.push(Sql::Integer(t));
    }
    if let Some(b) = s.before {
        sql.push_str(" AND a.seq < ?");
        args.push(Sql::Integer(b));
    }
    sql.push_str(" ORDER BY a.seq DESC LIMIT ?");
    args.push(Sql::Integer(s.count as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(rusqlite::params_from_iter(args), row)?
        .collect()
}

// ---- the trail before chaining (migration 4) ----

/// Turns the AuditEvents an older server stored as resources into chained
/// records, oldest first, and removes them from the resources.
pub fn adopt_legacy(conn: &Connection) -> anyhow::Result<usize> {
    let mut stmt =
        conn.prepare("SELECT rid, id, json FROM resources WHERE type = 'AuditEvent' ORDER BY rid")?;
    let legacy: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    drop(stmt);
    let mut events = Vec::with_capacity(legacy.len());
    for (_, id, json) in &legacy {
        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        events.push(legacy_event(id, &v));
    }
    for chunk in events.chunks(5_000) {
        append(conn, chunk)?;
    }
    while index_patients(conn)? > 0 {}
    for table in [
        "idx_string",
        "idx_token",
        "idx_date",
        "idx_ref",
        "idx_lastn",
        "history",
    ] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent')"),
            [],
        )?;
    }
    conn.execute("DELETE FROM resources WHERE type = 'AuditEvent'", [])?;
    Ok(legacy.len())
}

fn legacy_event(id: &str, v: &Value) -> Event {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let action = match s("/subtype/0/code").as_deref() {
        Some("history-instance") => "history".to_string(),
        Some("search-type") => "search".to_string(),
        Some(other) => other.to_string(),
        None => "unknown".to_string(),
    };
    let mut ty = None;
    let mut rid = None;
    let mut patients = Vec::new();
    for e in v["entity"].as_array().into_iter().flatten() {
        if let Some(what) = e.pointer("/what/reference").and_then(Value::as_str) {
            if what.starts_with("Patient/") && !patients.contains(&what.to_string()) {
                patients.push(what.to_string());
            }
            if ty.is_none()
                && let Some((t, i)) = what.split_once('/')
            {
                ty = Some(t.to_string());
                rid = Some(i.to_string());
            }
        } else if let Some(code) = e.pointer("/type/code").and_then(Value::as_str)
            && ty.is_none()
        {
            ty = Some(code.to_string());
        }
    }
    Event {
        at: s("/recorded")
            .and_then(|r| crate::fhir::time::instant(&r))
            .map_or(0, |t| t.timestamp_millis()),
        request: "legacy".to_string(),
        source: None,
        user: s("/agent/0/who/display"),
        name: s("/agent/0/who/display"),
        role: s("/agent/0/role/0/coding/0/code"),
        who: s("/agent/0/who/reference"),
        action,
        ty,
        id: rid,
        version: None,
        query: None,
        entities: Vec::new(),
        patients,
        status: s("/outcomeDesc")
            .and_then(|d| d.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0),
        detail: Some(format!("recorded before the chain as AuditEvent/{id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::connect(&dir.path().join("a.db")).unwrap();
        store::migrate(&conn).unwrap();
        (dir, conn)
    }

    fn ev(n: i64) -> Event {
        Event {
            at: 1_700_000_000_000 + n * 86_400_000,
            request: format!("r{n}"),
            user: Some("rosa".into()),
            role: Some("nurse".into()),
            action: "read".into(),
            ty: Some("Patient".into()),
            id: Some(format!("p{n}")),
            patients: vec![format!("Patient/p{n}")],
            status: 200,
            ..Event::default()
        }
    }

    #[test]
    fn the_chain_links_every_record_and_verify_names_the_broken_one() {
        let (_dir, conn) = db();
        append(&conn, &(1..=5).map(ev).collect::<Vec<_>>()).unwrap();
        append(&conn, &[ev(6)]).unwrap();
        let v = verify(&conn).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        assert_eq!(v.records, 6);
        assert_eq!(v.head.as_ref().map(|h| h.0), Some(6));
        // The table refuses edits; one who drops the trigger is caught.
        assert!(
            conn.execute("UPDATE audit SET status = 403 WHERE seq = 3", [])
                .is_err()
        );
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET status = 403 WHERE seq = 3;",
        )
        .unwrap();
        let v = verify(&conn).unwrap();
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(
            v.problems[0].contains("record 3 was changed"),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn patients_are_found_before_and_after_the_index_catches_up() {
        let (_dir, conn) = db();
        append(&conn, &(1..=4).map(ev).collect::<Vec<_>>()).unwrap();
        let find = |p: &str| {
            search(
                &conn,
                &Search {
                    patient: Some(p.into()),
                    count: 10,
                    ..Search::default()
                },
            )
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>()
        };
        assert_eq!(find("Patient/p2"), [2], "not indexed yet");
        assert_eq!(index_patients(&conn).unwrap(), 4);
        append(&conn, &[ev(2)]).unwrap();
        assert_eq!(find("Patient/p2"), [5, 2], "indexed, and the tail");
        assert_eq!(find("Patient/p"), Vec::<i64>::new(), "no prefix matches");
        assert_eq!(index_patients(&conn).unwrap(), 1);
        assert_eq!(index_patients(&conn).unwrap(), 0);
        assert_eq!(find("Patient/p2"), [5, 2]);
    }

    #[test]
    fn archived_records_leave_a_chain_that_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store::connect(&dir.path().join("a.db")).unwrap();
        store::migrate(&conn).unwrap();
        append(&conn, &(1..=10).map(ev).collect::<Vec<_>>()).unwrap();
        let out = dir.path().join("audit-1.ndjson");
        let a = archive(&mut conn, ev(5).at, &out).unwrap();
        assert_eq!((a.records, a.first, a.last), (4, 1, 4));
        assert!(
            archive(&mut conn, ev(5).at, &out).is_err(),
            "never overwrites"
        );
        append(&conn, &[ev(11)]).unwrap();
        let v = verify(&conn).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        assert_eq!(v.records, 7);
        let v = verify_with_archives(&conn, std::slice::from_ref(&out)).unwrap();
        assert!(v.intact(), "{:?}", v.problems);
        assert_eq!(v.records, 11);
        // A record removed from the file is found.
        let text = std::fs::read_to_string(&out).unwrap();
        let cut: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(&out, cut.join("\n")).unwrap();
        let v = verify_with_archives(&conn, std::slice::from_ref(&out)).unwrap();
        assert!(!v.intact());
        assert!(
            v.problems.iter().any(|p| p.contains("record 2 is missing")),
            "{:?}",
            v.problems
        );
    }

    #[test]
    fn the_fhir_view_names_agent_patient_and_outcome() {
        let mut e = ev(1);
        e.who = Some("Practitioner/pr-nurse".into());
        e.name = Some("Rosa Delgado, RN".into());
        e.entities = vec!["Patient/p1/_history/2".into()];
        e.status = 403;
        e.detail = Some("refused".into());
        let v = audit_event(7, &e);
        assert_eq!(v["id"], "7");
        assert_eq!(v["agent"][0]["who"]["reference"], "Practitioner/pr-nurse");
        assert_eq!(v["agent"][0]["altId"], "rosa");
        assert_eq!(v["outcome"], "4");
        assert_eq!(v["entity"][0]["what"]["reference"], "Patient/p1/_history/2");
        assert_eq!(v["entity"][1]["what"]["reference"], "Patient/p1");
    }
}
