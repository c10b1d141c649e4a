//! The database schema as an ordered list of numbered migrations.
//!
//! `PRAGMA user_version` records the last migration applied. Opening a
//! database applies every later one in order, each in its own transaction
//! (taken with `BEGIN IMMEDIATE`, so two processes opening the same file at
//! once do not both apply it): a migration that fails leaves the database as
//! it was before that migration. A database written by a newer chartty (a
//! version above the last migration known here) is refused, never guessed at.
//!
//! Migrations are append-only: a released migration is never edited, a
//! change to the schema or to what the index holds is a new migration.
//! Migrations after the first may use the current code (hashing, index
//! extraction) to recompute what they change.

use anyhow::Context;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde_json::Value;

use super::params;
use super::store;

/// One step of the schema.
pub struct Migration {
    /// What `user_version` says once this migration is applied.
    pub version: i64,
    pub summary: &'static str,
    apply: fn(&Connection) -> anyhow::Result<()>,
}

/// The schema every database had before migrations were numbered (it was
/// created with `IF NOT EXISTS` and marked `user_version = 1`). Kept
/// byte for byte: it is migration 1, and tests build version 1 databases
/// from it.
pub const V1_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resources (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    lu INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    hash INTEGER NOT NULL DEFAULT 0,
    json TEXT NOT NULL,
    UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_lu ON resources(type, lu);
CREATE INDEX IF NOT EXISTS resources_type ON resources(type, deleted);
CREATE TABLE IF NOT EXISTS history (
    rid INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lu INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (rid, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_string (
    type TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (type, param, value, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_rid ON idx_string(rid, param, value);
CREATE TABLE IF NOT EXISTS idx_token (
    type TEXT NOT NULL, param TEXT NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (type, param, code, system, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_token_rid ON idx_token(rid, param, code);
CREATE TABLE IF NOT EXISTS idx_date (
    type TEXT NOT NULL, param TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (type, param, lo, hi, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_rid ON idx_date(rid, param, lo, hi);
CREATE TABLE IF NOT EXISTS idx_ref (
    type TEXT NOT NULL, param TEXT NOT NULL, ref TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (type, param, ref, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_ref_rid ON idx_ref(rid, param, ref);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    user TEXT,
    role TEXT,
    action TEXT NOT NULL,
    type TEXT,
    id TEXT,
    status INTEGER NOT NULL
);
";

/// Every migration, in order; versions are 1, 2, 3… without gaps.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        summary: "resources, history, search index and audit tables",
        apply: |conn| Ok(conn.execute_batch(V1_SCHEMA)?),
    },
    Migration {
        version: 2,
        summary: "SHA-256 content hashes; name index folded with fhir::fold",
        apply: v2_sha256_and_folded_names,
    },
    Migration {
        version: 3,
        summary: "Observation/$lastn index",
        apply: v3_lastn_index,
    },
    Migration {
        version: 4,
        summary: "users and tokens; a chained, append-only audit trail; coverage and appointments by patient",
        apply: v4_users_and_chained_audit,
    },
    Migration {
        version: 5,
        summary: "sign-in: passwords, TOTP, OAuth grants, codes, refresh and device codes, the id_token key",
        apply: v5_sign_in,
    },
    Migration {
        version: 6,
        summary: "device codes: when and from which address they were asked for",
        apply: v6_device_origin,
    },
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The schema version recorded in the database (0 for a new file).
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database up to [`latest`]; refuses a newer one.
pub fn migrate(conn: &Connection) -> anyhow::Result<()> {
    migrate_with(conn, MIGRATIONS)
}

fn refuse_newer(found: i64, known: i64) -> anyhow::Result<()> {
    if found > known {
        anyhow::bail!(
            "the database is at schema version {found}, newer than this chartty \
             understands (up to {known}); it was written by a newer chartty: \
             use that version, or another database file"
        );
    }
    Ok(())
}

fn migrate_with(conn: &Connection, migrations: &[Migration]) -> anyhow::Result<()> {
    let known = migrations.last().map_or(0, |m| m.version);
    let found = version(conn).context("reading the schema version")?;
    refuse_newer(found, known)?;
    for m in migrations.iter().filter(|m| m.version > found) {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .context("locking the database to migrate it")?;
        // Another process may have migrated while this one waited for the lock.
        let now = version(&tx)?;
        refuse_newer(now, known)?;
        if now >= m.version {
            continue;
        }
        anyhow::ensure!(
            now == m.version - 1,
            "schema version {now} cannot be migrated to {} directly",
            m.version
        );
        tracing::info!(
            version = m.version,
            summary = m.summary,
            "migrating database"
        );
        (m.apply)(&tx)
            .with_context(|| format!("schema migration {} ({})", m.version, m.summary))?;
        tx.pragma_update(None, "user_version", m.version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The column names of `table`.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect()
}

/// Rows per step when a migration walks a whole table.
const CHUNK: i64 = 5_000;

/// Calls `f` with (rid, type, json) of every current, undeleted resource,
/// in row id order, `CHUNK` rows at a time (so `f` may write to the table).
fn each_resource(
    conn: &Connection,
    types: Option<&[&str]>,
    mut f: impl FnMut(i64, &str, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = 0i64;
    loop {
        let mut stmt = conn.prepare_cached(
            "SELECT rid, type, json FROM resources WHERE rid > ?1 AND deleted = 0
             ORDER BY rid LIMIT ?2",
        )?;
        let rows: Vec<(i64, String, String)> = stmt
            .query_map(params![after, CHUNK], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.0;
        for (rid, ty, json) in &rows {
            if types.is_none_or(|t| t.contains(&ty.as_str())) {
                f(*rid, ty, json)?;
            }
        }
    }
}

/// The content hash becomes SHA-256 (the old one came from the standard
/// library's `DefaultHasher`, whose output may change with any Rust
/// release, which would make every re-import write a new version), and
/// names are indexed folded with the shared [`crate::fhir::fold::fold`].
fn v2_sha256_and_folded_names(conn: &Connection) -> anyhow::Result<()> {
    // A chartty from before numbered migrations marks every database it
    // opens as version 1 again: the columns may already be in place.
    let cols = columns(conn, "resources")?;
    if !cols.iter().any(|c| c == "sha256") {
        conn.execute_batch("ALTER TABLE resources ADD COLUMN sha256 BLOB;")?;
    }
    {
        let mut update = conn.prepare("UPDATE resources SET sha256 = ?2 WHERE rid = ?1")?;
        each_resource(conn, None, |rid, _, json| {
            let mut value: Value = serde_json::from_str(json)
                .with_context(|| format!("resource row {rid} is not JSON"))?;
            update.execute(params![rid, store::content_hash(&mut value)])?;
            Ok(())
        })?;
    }
    if cols.iter().any(|c| c == "hash") {
        conn.execute_batch("ALTER TABLE resources DROP COLUMN hash;")?;
    }

    // Only string parameters change with the folding.
    let with_strings: Vec<&str> = params::CORE_TYPES
        .iter()
        .chain(params::OTHER_TYPES.iter())
        .filter(|(_, ps)| ps.iter().any(|p| p.kind == params::Kind::String))
        .map(|(ty, _)| *ty)
        .collect();
    conn.execute_batch("DELETE FROM idx_string;")?;
    let mut insert = conn.prepare(
        "INSERT OR IGNORE INTO idx_string (type, param, value, rid) VALUES (?1, ?2, ?3, ?4)",
    )?;
    each_resource(conn, Some(&with_strings), |rid, ty, json| {
        let value: Value = serde_json::from_str(json)
            .with_context(|| format!("resource row {rid} is not JSON"))?;
        for (param, folded) in params::extract(ty, &value).strings {
            insert.execute(params![ty, param, folded, rid])?;
        }
        Ok(())
    })?;
    Ok(())
}

/// One row per current Observation with a subject: the test it belongs to
/// and when it took effect, indexed so that the newest results of each
/// test of one patient are read in order without a sort (see `lastn`).
fn v3_lastn_index(conn: &Connection) -> anyhow::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS idx_lastn (
             rid INTEGER PRIMARY KEY,
             subject TEXT NOT NULL,
             grp TEXT NOT NULL,
             eff INTEGER NOT NULL
         );
         CREATE INDEX IF NOT EXISTS idx_lastn_subject ON idx_lastn(subject, grp, eff, rid);
         DELETE FROM idx_lastn;",
    )?;
    let mut insert =
        conn.prepare("INSERT INTO idx_lastn (rid, subject, grp, eff) VALUES (?1, ?2, ?3, ?4)")?;
    each_resource(conn, Some(&["Observation"]), |rid, ty, json| {
        let value: Value = serde_json::from_str(json)
            .with_context(|| format!("resource row {rid} is not JSON"))?;
        if let Some(row) = params::extract(ty, &value).lastn {
            insert.execute(params![rid, row.subject, row.group, row.effective])?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The schema of migration 4: users and their tokens (as hashes), and the
/// audit trail as a hash chain (see `audit`).
pub const V4_SCHEMA: &str = "
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    practitioner TEXT,
    issuer TEXT,
    subject TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    UNIQUE (issuer, subject)
);
CREATE TABLE tokens (
    hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    revoked INTEGER,
    label TEXT
) WITHOUT ROWID;
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE audit_v3 AS SELECT * FROM audit;
DROP TABLE audit;
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    request TEXT,
    source TEXT,
    user TEXT,
    name TEXT,
    role TEXT,
    who TEXT,
    action TEXT NOT NULL,
    type TEXT,
    id TEXT,
    version INTEGER,
    query TEXT,
    entities TEXT NOT NULL DEFAULT '[]',
    patients TEXT NOT NULL DEFAULT '[]',
    status INTEGER NOT NULL,
    detail TEXT,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_who ON audit(who, seq);
CREATE INDEX audit_user ON audit(user, seq);
CREATE TABLE audit_patient (
    patient TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (patient, seq)
) WITHOUT ROWID;
CREATE TABLE audit_indexed (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    upto INTEGER NOT NULL
);
CREATE TABLE audit_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE audit_archive (
    upto INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    count INTEGER NOT NULL,
    file TEXT NOT NULL,
    at INTEGER NOT NULL
);
";

/// The schema of migration 5: what the server needs to be the OAuth 2 /
/// SMART authorization server of its users (see `server::auth`). Codes,
/// refresh tokens and device codes are stored as SHA-256, like tokens.
pub const V5_SCHEMA: &str = "
ALTER TABLE users ADD COLUMN password TEXT;
ALTER TABLE users ADD COLUMN totp_secret BLOB;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
ALTER TABLE tokens ADD COLUMN grant_id INTEGER;
ALTER TABLE tokens ADD COLUMN scope TEXT;
CREATE INDEX tokens_grant ON tokens(grant_id) WHERE grant_id IS NOT NULL;
CREATE TABLE auth_grants (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
);
CREATE TABLE auth_refresh (
    hash BLOB PRIMARY KEY,
    grant_id INTEGER NOT NULL REFERENCES auth_grants(id),
    issued INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    spent INTEGER
) WITHOUT ROWID;
CREATE INDEX auth_refresh_grant ON auth_refresh(grant_id);
CREATE TABLE auth_codes (
    hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    challenge TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id),
    scope TEXT NOT NULL,
    expires INTEGER NOT NULL,
    used INTEGER,
    grant_id INTEGER
) WITHOUT ROWID;
CREATE TABLE auth_device (
    hash BLOB PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires INTEGER NOT NULL,
    interval_s INTEGER NOT NULL,
    last_poll INTEGER,
    state TEXT NOT NULL DEFAULT 'pending',
    user_id INTEGER REFERENCES users(id),
    grant_id INTEGER
) WITHOUT ROWID;
CREATE TABLE auth_keys (
    kid TEXT PRIMARY KEY,
    pkcs8 BLOB NOT NULL,
    created INTEGER NOT NULL
);
";

/// Sign-in tables; skipped on a database an older chartty rewound to
/// version 1, which has them already.
fn v5_sign_in(conn: &Connection) -> anyhow::Result<()> {
    if columns(conn, "users")?.iter().any(|c| c == "password") {
        return Ok(());
    }
    Ok(conn.execute_batch(V5_SCHEMA)?)
}

/// What the device approval page shows of a code: when it was asked for
/// and by which address (none for codes made before).
fn v6_device_origin(conn: &Connection) -> anyhow::Result<()> {
    if columns(conn, "auth_device")?
        .iter()
        .any(|c| c == "requested")
    {
        return Ok(());
    }
    Ok(conn.execute_batch(
        "ALTER TABLE auth_device ADD COLUMN requested INTEGER;
         ALTER TABLE auth_device ADD COLUMN address TEXT;",
    )?)
}

/// Users and tokens; the audit trail becomes a hash chain. The AuditEvents
/// an older server stored as resources (with the patient, which the old
/// `audit` rows lack) become the first records of the chain, oldest
/// first, and leave the resources (no client may write or change one). The
/// old rows are dropped: each is also one of those AuditEvents. Coverage
/// and Appointment are indexed again, now searchable by patient.
fn v4_users_and_chained_audit(conn: &Connection) -> anyhow::Result<()> {
    // A database an older chartty marked as version 1 again has it all
    // already (that chartty only creates tables that are missing).
    if !columns(conn, "users")?.is_empty() {
        return Ok(());
    }
    conn.execute_batch(V4_SCHEMA)?;
    let legacy_events: i64 = conn.query_row(
        "SELECT COUNT(*) FROM resources WHERE type = 'AuditEvent'",
        [],
        |r| r.get(0),
    )?;
    let legacy_rows: i64 = conn.query_row("SELECT COUNT(*) FROM audit_v3", [], |r| r.get(0))?;
    let adopted = super::audit::adopt_legacy(conn)?;
    tracing::info!(
        adopted,
        legacy_events,
        legacy_rows,
        "audit records moved into the chained trail"
    );
    conn.execute_batch("DROP TABLE audit_v3;")?;
    conn.execute_batch(super::audit::NO_UPDATE_TRIGGER)?;
    conn.execute_batch(super::audit::NO_DELETE_TRIGGER)?;

    let types = ["Coverage", "Appointment"];
    for ty in types {
        for table in ["idx_string", "idx_token", "idx_date", "idx_ref"] {
            conn.execute(&format!("DELETE FROM {table} WHERE type = ?1"), params![ty])?;
        }
    }
    each_resource(conn, Some(&types), |rid, ty, json| {
        let value: Value = serde_json::from_str(json)
            .with_context(|| format!("resource row {rid} is not JSON"))?;
        let rows = params::extract(ty, &value);
        for (param, v) in &rows.strings {
            conn.execute(
                "INSERT OR IGNORE INTO idx_string (type, param, value, rid) VALUES (?1, ?2, ?3, ?4)",
                params![ty, param, v, rid],
            )?;
        }
        for (param, system, code) in &rows.tokens {
            conn.execute(
                "INSERT OR IGNORE INTO idx_token (type, param, code, system, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ty, param, code, system, rid],
            )?;
        }
        for (param, lo, hi) in &rows.dates {
            conn.execute(
                "INSERT OR IGNORE INTO idx_date (type, param, lo, hi, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ty, param, lo, hi, rid],
            )?;
        }
        for (param, r) in &rows.refs {
            conn.execute(
                "INSERT OR IGNORE INTO idx_ref (type, param, ref, rid) VALUES (?1, ?2, ?3, ?4)",
                params![ty, param, r, rid],
            )?;
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::server::search;
    use crate::server::store::Store;

    #[test]
    fn versions_are_numbered_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.summary);
        }
    }

    #[test]
    fn an_empty_file_is_migrated_to_the_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("new.db")).unwrap();
        let conn = store.connection();
        assert_eq!(version(conn).unwrap(), latest());
        let cols = columns(conn, "resources").unwrap();
        assert!(cols.contains(&"sha256".to_string()), "{cols:?}");
        assert!(!cols.contains(&"hash".to_string()), "{cols:?}");
        for table in [
            "history",
            "idx_string",
            "idx_token",
            "idx_date",
            "idx_ref",
            "audit",
        ] {
            assert!(!columns(conn, table).unwrap().is_empty(), "{table}");
        }
        // Opening again applies nothing and changes nothing.
        drop(store);
        let store = Store::open(&dir.path().join("new.db")).unwrap();
        assert_eq!(version(store.connection()).unwrap(), latest());
    }

    /// A version 1 database as the server before numbered migrations wrote
    /// it: the schema of migration 1, a Patient with its meta stamps, an
    /// integer hash from `DefaultHasher`, and its name indexed with accents
    /// removed but ø kept.
    fn v1_database(path: &std::path::Path, patient: &Value) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut stored = patient.clone();
        stored["meta"] = json!({"versionId": "1", "lastUpdated": "2026-01-05T10:00:00.000Z"});
        conn.execute(
            "INSERT INTO resources (rid, type, id, version, lu, deleted, hash, json)
             VALUES (7, 'Patient', 'p1', 1, 1767607200000, 0, -4242424242424242, ?1)",
            [stored.to_string()],
        )
        .unwrap();
        for (param, value) in [
            ("name", "søren"),
            ("name", "østergaard"),
            ("name", "søren østergaard"),
            ("family", "østergaard"),
            ("given", "søren"),
        ] {
            conn.execute(
                "INSERT INTO idx_string (type, param, value, rid) VALUES ('Patient', ?1, ?2, 7)",
                [param, value],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO idx_date (type, param, lo, hi, rid)
             VALUES ('Patient', 'birthdate', 0, 86399999, 7)",
            [],
        )
        .unwrap();
        let obs = json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-01-02T08:00:00Z",
            "valueQuantity": {"value": 5.0, "unit": "mmol/L"},
            "meta": {"versionId": "1", "lastUpdated": "2026-01-05T10:00:00.000Z"}});
        conn.execute(
            "INSERT INTO resources (rid, type, id, version, lu, deleted, hash, json)
             VALUES (8, 'Observation', 'o1', 1, 1767607200000, 0, 99, ?1)",
            [obs.to_string()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO idx_ref (type, param, ref, rid) VALUES ('Observation', 'subject', 'Patient/p1', 8)",
            [],
        )
        .unwrap();
    }

    fn found(conn: &Connection, query: &[(&str, &str)]) -> Vec<String> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        search::matching(conn, "Patient", &query, 10)
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect()
    }

    #[test]
    fn a_version_1_database_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let patient = json!({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01",
            "name": [{"text": "Søren Østergaard", "family": "Østergaard", "given": ["Søren"]}]});
        v1_database(&path, &patient);

        let mut store = Store::open(&path).unwrap();
        let conn = store.connection();
        assert_eq!(version(conn).unwrap(), latest());
        // The folded names are found; the old unfolded rows are gone.
        assert_eq!(found(conn, &[("name", "soren")]), ["p1"]);
        assert_eq!(found(conn, &[("family", "oster")]), ["p1"]);
        assert_eq!(found(conn, &[("name", "Søren Østergaard")]), ["p1"]);
        assert_eq!(found(conn, &[("name", "søren")]), ["p1"]);
        let unfolded: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM idx_string WHERE value LIKE '%ø%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unfolded, 0);
        // Other index rows are kept as they were.
        assert_eq!(found(conn, &[("birthdate", "1970")]), ["p1"]);
        // The stored content hashes as the same resource sent again.
        assert_eq!(store.ingest([patient.clone()]).unwrap(), 0);
        let cur = store::current(store.connection(), "Patient", "p1")
            .unwrap()
            .unwrap();
        assert_eq!((cur.rid, cur.version), (7, 1));
        // A change is still a change.
        let mut changed = patient;
        changed["gender"] = json!("male");
        assert_eq!(store.ingest([changed]).unwrap(), 1);
        // Results stored before $lastn existed are ranked by it.
        let query = vec![("patient".to_string(), "p1".to_string())];
        let b = crate::server::lastn::bundle(store.connection(), &query, &[], "x", false).unwrap();
        assert_eq!(b["total"], 1, "{b}");
        assert_eq!(b["entry"][0]["resource"]["id"], "o1");
        assert_eq!(
            b["entry"][0]["resource"]["valueQuantity"]["value"].to_string(),
            "5.0"
        );
    }

    /// A chartty from before numbered migrations runs `V1_SCHEMA` and sets
    /// version 1 on whatever it opens; the next start migrates again.
    #[test]
    fn a_database_rewound_to_version_1_by_an_older_chartty_migrates_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rewound.db");
        let patient = json!({"resourceType": "Patient", "id": "p1",
            "name": [{"family": "Łódź"}]});
        let obs = json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}});
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.ingest([patient.clone(), obs]).unwrap(), 2);
        drop(store);
        let old = Connection::open(&path).unwrap();
        old.execute_batch(V1_SCHEMA).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        drop(old);

        let mut store = Store::open(&path).unwrap();
        assert_eq!(version(store.connection()).unwrap(), latest());
        assert_eq!(found(store.connection(), &[("name", "lodz")]), ["p1"]);
        assert_eq!(store.ingest([patient]).unwrap(), 0);
        let lastn: i64 = store
            .connection()
            .query_row("SELECT COUNT(*) FROM idx_lastn", [], |r| r.get(0))
            .unwrap();
        assert_eq!(lastn, 1);
    }

    /// A version 3 database as the server before the chained audit wrote
    /// it: AuditEvents stored as resources (with the patient) beside the
    /// old `audit` rows, and a Coverage indexed without its beneficiary.
    #[test]
    fn a_version_3_database_gets_users_and_a_chained_audit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.db");
        let conn = store::connect(&path).unwrap();
        migrate_with(&conn, &MIGRATIONS[..3]).unwrap();
        assert_eq!(version(&conn).unwrap(), 3);
        let events = [
            json!({"resourceType": "AuditEvent", "recorded": "2026-01-05T10:00:00.000Z",
                "subtype": [{"code": "read"}], "action": "R", "outcome": "0", "outcomeDesc": "200",
                "agent": [{"requestor": true, "who": {"reference": "Practitioner/pr-nurse", "display": "Rosa Delgado, RN"},
                           "role": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}]}],
                "entity": [{"what": {"reference": "Observation/o1"}}, {"what": {"reference": "Patient/p1"}}]}),
            json!({"resourceType": "AuditEvent", "recorded": "2026-01-05T10:01:00.000Z",
                "subtype": [{"code": "search-type"}], "action": "E", "outcome": "4", "outcomeDesc": "403",
                "agent": [{"requestor": true, "who": {"reference": "Practitioner/pr-frontdesk", "display": "Kevin Park"}}],
                "entity": [{"type": {"code": "Observation"}}, {"what": {"reference": "Patient/p1"}}]}),
        ];
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            e["id"] = json!(format!("ae{i}"));
            conn.execute(
                "INSERT INTO resources (type, id, version, lu, deleted, json) VALUES ('AuditEvent', ?1, 1, 0, 0, ?2)",
                params![format!("ae{i}"), e.to_string()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO audit (at, user, role, action, type, id, status) VALUES (0, 'x', 'nurse', 'read', 'Observation', 'o1', 200)",
                [],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO resources (type, id, version, lu, deleted, json) VALUES ('Coverage', 'cov1', 1, 0, 0, ?1)",
            [json!({"resourceType": "Coverage", "id": "cov1", "status": "active",
                "beneficiary": {"reference": "Patient/p1"}}).to_string()],
        )
        .unwrap();
        drop(conn);

        let store = Store::open(&path).unwrap();
        let conn = store.connection();
        assert_eq!(version(conn).unwrap(), latest());
        for table in [
            "users",
            "tokens",
            "audit_patient",
            "audit_head",
            "audit_archive",
        ] {
            assert!(!columns(conn, table).unwrap().is_empty(), "{table}");
        }
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM resources WHERE type = 'AuditEvent'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "AuditEvents leave the resources");
        let verdict = crate::server::audit::verify(conn).unwrap();
        assert!(verdict.intact(), "{:?}", verdict.problems);
        assert_eq!(verdict.records, 2);
        let first = crate::server::audit::read(conn, 1).unwrap().unwrap().event;
        assert_eq!(
            (
                first.who.as_deref(),
                first.role.as_deref(),
                first.action.as_str(),
                first.status
            ),
            (Some("Practitioner/pr-nurse"), Some("nurse"), "read", 200)
        );
        assert_eq!(first.patients, ["Patient/p1"]);
        let by_patient = crate::server::audit::search(
            conn,
            &crate::server::audit::Search {
                patient: Some("Patient/p1".into()),
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(by_patient.len(), 2);
        // The trail is append-only.
        assert!(conn.execute("DELETE FROM audit", []).is_err());
        // Coverage is found by its patient.
        let q = search::parse(
            "Coverage",
            &[("patient".to_string(), "p1".to_string())],
            &[],
        )
        .unwrap();
        assert_eq!(q.first(conn, 5).unwrap().len(), 1);
    }

    #[test]
    fn a_database_from_a_newer_chartty_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        drop(conn);
        let err = match Store::open(&path) {
            Ok(_) => panic!("a newer database was opened"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("newer than this chartty"), "{err}");
        assert!(err.contains(&format!("version {}", latest() + 1)), "{err}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(version(&conn).unwrap(), latest() + 1);
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
    }

    #[test]
    fn a_failing_migration_leaves_the_database_at_the_version_before() {
        let steps = [
            Migration {
                version: 1,
                summary: "one table",
                apply: |c| Ok(c.execute_batch("CREATE TABLE a (x INTEGER);")?),
            },
            Migration {
                version: 2,
                summary: "a table, then a failure",
                apply: |c| {
                    c.execute_batch("CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1);")?;
                    anyhow::bail!("disk on fire")
                },
            },
        ];
        let conn = Connection::open_in_memory().unwrap();
        let err = migrate_with(&conn, &steps).unwrap_err();
        assert!(format!("{err:#}").contains("disk on fire"), "{err:#}");
        assert_eq!(version(&conn).unwrap(), 1);
        let b: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let a: i64 = conn
            .query_row("SELECT COUNT(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!((a, b), (0, 0));
    }
}
