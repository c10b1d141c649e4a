//! SQLite storage: current resources, their earlier versions and the search index.
//!
//! Resources are kept as the JSON they were given (plus the `meta` the server
//! maintains), so nothing a client wrote is lost. Each resource has an integer
//! row id (`rid`) that never changes across versions: index rows point at it,
//! and default paging walks it, so paging stays stable while data changes.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::params::{self, IndexRows};
use super::schema;

/// Creates the database file readable and writable by its owner only
/// (0600), unless it exists. SQLite gives the `-wal` and `-shm` files it
/// creates beside it the database file's mode, so they are private too.
fn create_private(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating database {}", path.display())),
    }
}

/// An existing database keeps its mode; one that other users can open is
/// reported (it holds patient data).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                db = %path.display(),
                mode = format!("{:o}", meta.permissions().mode() & 0o777),
                "other users can open the database file; chmod 600 it (and its -wal and -shm)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Opens a connection with the pragmas every connection needs, creating
/// the database file (owner-only) if it does not exist.
pub fn connect(path: &Path) -> anyhow::Result<Connection> {
    create_private(path)?;
    let conn =
        Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "mmap_size", 256i64 * 1024 * 1024)?;
    Ok(conn)
}

/// Brings the schema up to date (see [`schema`]); safe to run on every
/// start, and refuses a database written by a newer chartty.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    schema::migrate(conn)
}

/// A resource as stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub rid: i64,
    pub ty: String,
    pub id: String,
    pub version: i64,
    pub lu: i64,
    pub deleted: bool,
    pub json: String,
}

impl Stored {
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
    pub fn last_modified(&self) -> String {
        ms_to_datetime(self.lu)
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    }
    pub fn reference(&self) -> String {
        format!("{}/{}", self.ty, self.id)
    }
}

pub fn ms_to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn instant(ms: i64) -> String {
    ms_to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

const SELECT: &str = "SELECT rid, type, id, version, lu, deleted, json FROM resources";

pub fn row_to_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok(Stored {
        rid: row.get(0)?,
        ty: row.get(1)?,
        id: row.get(2)?,
        version: row.get(3)?,
        lu: row.get(4)?,
        deleted: row.get::<_, i64>(5)? != 0,
        json: row.get(6)?,
    })
}

/// The current version (possibly a deletion marker).
pub fn current(conn: &Connection, ty: &str, id: &str) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached(&format!("{SELECT} WHERE type = ?1 AND id = ?2"))?
        .query_row(params![ty, id], row_to_stored)
        .optional()
}

pub fn by_rid(conn: &Connection, rid: i64) -> rusqlite::Result<Option<Stored>> {
    conn.prepare_cached(&format!("{SELECT} WHERE rid = ?1"))?
        .query_row(params![rid], row_to_stored)
        .optional()
}

pub fn version(
    conn: &Connection,
    ty: &str,
    id: &str,
    version: i64,
) -> rusqlite::Result<Option<Stored>> {
    if let Some(cur) = current(conn, ty, id)?.filter(|c| c.version == version) {
        return Ok(Some(cur));
    }
    conn.prepare_cached(
        "SELECT h.rid, r.type, r.id, h.version, h.lu, h.deleted, h.json
         FROM resources r JOIN history h ON h.rid = r.rid
         WHERE r.type = ?1 AND r.id = ?2 AND h.version = ?3",
    )?
    .query_row(params![ty, id, version], row_to_stored)
    .optional()
}

/// Every version, newest first.
pub fn history(conn: &Connection, ty: &str, id: &str) -> rusqlite::Result<Vec<Stored>> {
    let Some(cur) = current(conn, ty, id)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn.prepare_cached(
        "SELECT h.rid, ?2, ?3, h.version, h.lu, h.deleted, h.json
         FROM history h WHERE h.rid = ?1 ORDER BY h.version DESC",
    )?;
    let older = stmt.query_map(params![cur.rid, ty, id], row_to_stored)?;
    let mut out = vec![cur];
    for s in older {
        out.push(s?);
    }
    Ok(out)
}

/// A SHA-256 content hash.
pub type Hash = [u8; 32];

/// SHA-256 of a resource's content without the server-maintained meta, so
/// an identical re-import can be recognised and skipped. The content is
/// hashed as compact JSON with keys in sorted order and numbers as sent, so
/// the hash depends on the content alone, on every platform and release.
pub fn content_hash(resource: &mut Value) -> Hash {
    // The stamps are replaced on every write anyway, so they are dropped here
    // rather than hashed from a copy.
    if let Some(obj) = resource.as_object_mut()
        && let Some(meta) = obj.get_mut("meta").and_then(Value::as_object_mut)
    {
        meta.remove("versionId");
        meta.remove("lastUpdated");
        if meta.is_empty() {
            obj.remove("meta");
        }
    }
    struct HashWriter(Sha256);
    impl std::io::Write for HashWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = HashWriter(Sha256::new());
    // Writing into a hasher cannot fail.
    let _ = serde_json::to_writer(&mut w, resource);
    w.0.finalize().into()
}

/// Lower-case hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a new version of `ty/id` (`None` deletes), maintaining `meta`, the
/// history and the index. The caller owns the transaction.
pub fn write(
    conn: &Connection,
    ty: &str,
    id: &str,
    resource: Option<Value>,
    now: i64,
) -> rusqlite::Result<Stored> {
    if ty == "AuditEvent" {
        // The trail lives in the `audit` table (see `audit`); nothing
        // writes one as a resource.
        return Err(rusqlite::Error::InvalidParameterName(
            "AuditEvents are not stored as resources".into(),
        ));
    }
    let prev = previous(conn, ty, id)?;
    write_after(conn, ty, id, resource, now, prev, None)
}

/// What is stored for `ty/id` now: (rid, version, content hash, deleted).
type Prev = (i64, i64, Option<Hash>, bool);

fn previous(conn: &Connection, ty: &str, id: &str) -> rusqlite::Result<Option<Prev>> {
    conn.prepare_cached(
        "SELECT rid, version, sha256, deleted FROM resources WHERE type = ?1 AND id = ?2",
    )?
    .query_row(params![ty, id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))
    })
    .optional()
}

fn write_after(
    conn: &Connection,
    ty: &str,
    id: &str,
    resource: Option<Value>,
    now: i64,
    prev: Option<Prev>,
    hash: Option<Hash>,
) -> rusqlite::Result<Stored> {
    let version = prev.as_ref().map_or(1, |p| p.1 + 1);
    let deleted = resource.is_none();
    let (json, hash, rows) = match resource {
        Some(mut res) => {
            let hash = hash.unwrap_or_else(|| content_hash(&mut res));
            stamp(&mut res, id, version, now);
            let rows = params::extract(ty, &res);
            (res.to_string(), Some(hash), rows)
        }
        None => {
            // A deletion keeps the last content for history readers.
            let last: Option<String> = match &prev {
                Some((rid, ..)) => conn
                    .prepare_cached("SELECT json FROM resources WHERE rid = ?1")?
                    .query_row(params![rid], |r| r.get(0))
                    .optional()?,
                None => None,
            };
            (last.unwrap_or_default(), None, IndexRows::default())
        }
    };
    let rid = match &prev {
        Some((rid, ..)) => {
            // The history table holds the versions before the current one.
            conn.prepare_cached(
                "INSERT OR REPLACE INTO history (rid, version, lu, deleted, json)
                 SELECT rid, version, lu, deleted, json FROM resources WHERE rid = ?1",
            )?
            .execute(params![rid])?;
            conn.prepare_cached(
                "UPDATE resources SET version = ?2, lu = ?3, deleted = ?4, sha256 = ?5, json = ?6 WHERE rid = ?1",
            )?
            .execute(params![rid, version, now, deleted as i64, hash, json])?;
            clear_index(conn, *rid)?;
            *rid
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO resources (type, id, version, lu, deleted, sha256, json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![ty, id, version, now, deleted as i64, hash, json])?;
            conn.last_insert_rowid()
        }
    };
    insert_index(conn, ty, rid, &rows)?;
    Ok(Stored {
        rid,
        ty: ty.to_string(),
        id: id.to_string(),
        version,
        lu: now,
        deleted,
        json,
    })
}

fn stamp(res: &mut Value, id: &str, version: i64, now: i64) {
    let Some(obj) = res.as_object_mut() else {
        return;
    };
    obj.insert("id".into(), Value::String(id.to_string()));
    let meta = obj
        .entry("meta")
        .or_insert_with(|| Value::Object(Default::default()));
    if !meta.is_object() {
        *meta = Value::Object(Default::default());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("versionId".into(), Value::String(version.to_string()));
        meta.insert("lastUpdated".into(), Value::String(instant(now)));
    }
}

fn clear_index(conn: &Connection, rid: i64) -> rusqlite::Result<()> {
    for table in [
        "idx_string",
        "idx_token",
        "idx_date",
        "idx_ref",
        "idx_lastn",
    ] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE rid = ?1"))?
            .execute(params![rid])?;
    }
    Ok(())
}

fn insert_index(conn: &Connection, ty: &str, rid: i64, rows: &IndexRows) -> rusqlite::Result<()> {
    if !rows.strings.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO idx_string (type, param, value, rid) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (param, value) in &rows.strings {
            stmt.execute(params![ty, param, value, rid])?;
        }
    }
    if !rows.tokens.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO idx_token (type, param, code, system, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (param, system, code) in &rows.tokens {
            stmt.execute(params![ty, param, code, system, rid])?;
        }
    }
    if !rows.dates.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO idx_date (type, param, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (param, lo, hi) in &rows.dates {
            stmt.execute(params![ty, param, lo, hi, rid])?;
        }
    }
    if !rows.refs.is_empty() {
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO idx_ref (type, param, ref, rid) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (param, r) in &rows.refs {
            stmt.execute(params![ty, param, r, rid])?;
        }
    }
    if let Some(row) = &rows.lastn {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO idx_lastn (rid, subject, grp, eff) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![rid, row.subject, row.group, row.effective])?;
    }
    Ok(())
}

/// A fresh server-assigned id.
pub fn new_id() -> String {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Direct access to a portal database for bulk loading (import, demo data,
/// benchmarks).
pub struct Store {
    conn: Connection,
}

/// Resources per transaction when ingesting.
const INGEST_BATCH: usize = 20_000;

impl Store {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn = connect(path)?;
        warn_if_shared(path);
        migrate(&conn)?;
        Ok(Store { conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Upserts resources with the ids they carry (a missing or invalid id gets
    /// a fresh one), in large transactions. A resource identical to what is
    /// stored is skipped, so loading the same data twice changes nothing.
    /// Returns how many resources were written.
    pub fn ingest(&mut self, resources: impl IntoIterator<Item = Value>) -> anyhow::Result<usize> {
        let mut written = 0;
        let mut iter = resources.into_iter().peekable();
        while iter.peek().is_some() {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = now_ms();
            for resource in iter.by_ref().take(INGEST_BATCH) {
                if upsert_one(&tx, resource, now)? {
                    written += 1;
                }
            }
            tx.commit()?;
        }
        Ok(written)
    }

    /// `Type/id` of the one resource matching a conditional reference such as
    /// `Organization?identifier=sys|val`, if exactly one matches.
    pub fn resolve_conditional(&self, reference: &str) -> anyhow::Result<Option<String>> {
        super::search::resolve_conditional(&self.conn, reference)
    }

    pub fn count(&self, ty: &str) -> anyhow::Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM resources WHERE type = ?1 AND deleted = 0",
            params![ty],
            |r| r.get(0),
        )?)
    }
}

/// Writes one resource unless an identical one is stored; true if written.
pub fn upsert_one(conn: &Connection, resource: Value, now: i64) -> anyhow::Result<bool> {
    let Some(ty) = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|t| params::is_type_name(t))
        .map(str::to_string)
    else {
        anyhow::bail!("resource without a valid resourceType");
    };
    anyhow::ensure!(
        ty != "AuditEvent",
        "AuditEvents are recorded by the server's audit trail, never stored as resources"
    );
    let id = resource
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| params::is_valid_id(id))
        .map(str::to_string)
        .unwrap_or_else(new_id);
    let mut resource = resource;
    let hash = content_hash(&mut resource);
    let prev = previous(conn, &ty, &id)?;
    if prev.is_some_and(|p| p.2 == Some(hash) && !p.3) {
        return Ok(false);
    }
    write_after(conn, &ty, &id, Some(resource), now, prev, Some(hash))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ingest_twice_keeps_one_version() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let pat = json!({"resourceType":"Patient","id":"p1","name":[{"family":"Fonseca"}]});
        assert_eq!(store.ingest([pat.clone()]).unwrap(), 1);
        assert_eq!(store.ingest([pat]).unwrap(), 0);
        let cur = current(store.connection(), "Patient", "p1")
            .unwrap()
            .unwrap();
        assert_eq!(cur.version, 1);
        assert_eq!(cur.value()["meta"]["versionId"], "1");
    }

    #[test]
    fn the_content_hash_is_sha256_of_the_sorted_compact_json() {
        // `printf '%s' '{"gender":"female","id":"p1","name":[{"family":"Fonseca"}],"resourceType":"Patient"}' | sha256sum`
        let mut pat = json!({"resourceType":"Patient","id":"p1","gender":"female",
            "name":[{"family":"Fonseca"}],"meta":{"versionId":"4","lastUpdated":"2026-01-01T00:00:00Z"}});
        assert_eq!(
            hex(&content_hash(&mut pat)),
            "ddf0f1c6b5422282872706816f03be89f76bda2c174481e5ce3fcce703898879"
        );
        // Numbers hash as sent: 5.0 is not 5.
        let mut a = json!({"resourceType":"Observation","valueQuantity":{"value":5.0}});
        let mut b: Value =
            serde_json::from_str(r#"{"resourceType":"Observation","valueQuantity":{"value":5}}"#)
                .unwrap();
        assert_ne!(content_hash(&mut a), content_hash(&mut b));
        // Meta other than the server's stamps is content.
        let mut tagged = json!({"resourceType":"Patient","id":"p1","meta":{"tag":[{"code":"x"}]}});
        let mut plain = json!({"resourceType":"Patient","id":"p1"});
        assert_ne!(content_hash(&mut tagged), content_hash(&mut plain));
    }
}
