//! FHIR search: query parameters → SQL over the index tables → searchset Bundle.
//!
//! Paging is keyset-based: the `next` link carries an opaque cursor holding the
//! sort key and row id of the last entry, so pages neither repeat nor skip
//! entries when resources are created or updated between requests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use super::outcome::{FhirError, outcome};
use super::params::{self, Kind, Param};
use super::store::{self, Stored};
use crate::fhir::time;

pub const DEFAULT_COUNT: usize = 20;
pub const MAX_COUNT: usize = 1000;
/// Most values one search parameter may carry (`a,b,c` or words of a name).
pub const MAX_VALUES: usize = 100;
/// Most parameters one search may carry.
pub const MAX_PARAMS: usize = 50;

/// Result parameters understood; everything else starting with `_` is unknown.
const CONTROL: &[&str] = &[
    "_count",
    "_sort",
    "_elements",
    "_summary",
    "_include",
    "_total",
    "_cursor",
    "_format",
    "_pretty",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    False,
    Count,
    Data,
}

#[derive(Debug, Clone)]
enum SortKey {
    Rid,
    Expr { sql: String, param: Option<String> },
}

#[derive(Debug, Clone)]
pub struct Query {
    pub ty: String,
    conds: Vec<Cond>,
    pub count: usize,
    sort: SortKey,
    descending: bool,
    elements: Option<Vec<String>>,
    pub summary: Summary,
    total: bool,
    includes: Vec<&'static Param>,
    cursor: Option<(Sql, i64)>,
    pub unknown: Vec<String>,
    /// Parameters echoed in `self`/`next` links (the request's own, minus the cursor).
    link_params: Vec<(String, String)>,
}

/// One search condition. The most selective index condition drives the plan
/// (its row ids are looked up directly); the others are checked per candidate
/// row through the `(rid, param, …)` indexes, so an unselective condition such
/// as `category=vital-signs` never materialises every matching row.
#[derive(Debug, Clone)]
struct Cond {
    /// Lower is more selective; `None` never drives.
    rank: Option<u8>,
    form: Form,
    /// `r.rid IN (…)` (or `r.id IN (…)` for `_id`) with its arguments.
    driver: (String, Vec<Sql>),
    /// The same test as a per-row filter.
    filter: (String, Vec<Sql>),
    /// Counts matching index rows, capped (see [`Query::pick_driver`]).
    probe: Option<(String, Vec<Sql>)>,
}

/// A condition matching at least this many index rows is too broad to drive
/// a default-ordered page: walking the type in row id order and filtering
/// finds the first page sooner than collecting every match.
const BROAD: i64 = 2000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Id,
    Index,
    Column,
}

fn index_cond(
    table: &str,
    ty: &str,
    param: &'static Param,
    alts: &[String],
    args: Vec<Sql>,
    negate: bool,
) -> Cond {
    let alts = alts.join(" OR ");
    let stored = params::storage_name(ty, param);
    let mut driver_args = vec![Sql::Text(ty.to_string()), Sql::Text(stored.to_string())];
    driver_args.extend(args.iter().cloned());
    let mut filter_args = vec![Sql::Text(stored.to_string())];
    filter_args.extend(args);
    let not = if negate { "NOT " } else { "" };
    let rank = match (negate, param.kind) {
        (true, _) => None,
        (_, Kind::Reference) => Some(1),
        (_, Kind::Token) if param.name == "identifier" => Some(2),
        (_, Kind::String) => Some(3),
        (_, Kind::Date) => Some(4),
        (_, Kind::Token) => Some(5),
    };
    Cond {
        rank,
        form: Form::Index,
        // References are selective by nature (one patient's records) and always drive.
        probe: (param.kind != Kind::Reference).then(|| {
            (
            format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE type = ? AND param = ? AND ({alts}) LIMIT {BROAD})"
            ),
            driver_args.clone(),
        )
        }),
        driver: (
            format!("r.rid IN (SELECT rid FROM {table} WHERE type = ? AND param = ? AND ({alts}))"),
            driver_args,
        ),
        filter: (
            format!(
                "{not}EXISTS (SELECT 1 FROM {table} x WHERE x.rid = r.rid AND x.param = ? AND ({alts}))"
            ),
            filter_args,
        ),
    }
}

fn split_prefix(value: &str) -> (&str, &str) {
    const PREFIXES: [&str; 9] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];
    if value.len() > 2 && value.is_char_boundary(2) {
        let (p, rest) = value.split_at(2);
        if PREFIXES.contains(&p) && rest.starts_with(|c: char| c.is_ascii_digit()) {
            return (p, rest);
        }
    }
    ("eq", value)
}

/// SQL comparing a stored range `lo`/`hi` to a searched range.
fn date_alt(prefix: &str, lo_col: &str, hi_col: &str, plo: i64, phi: i64) -> (String, Vec<Sql>) {
    let (sql, args): (String, Vec<i64>) = match prefix {
        "ne" => (
            format!("NOT ({lo_col} >= ? AND {hi_col} <= ?)"),
            vec![plo, phi],
        ),
        "gt" | "sa" => (format!("{hi_col} > ?"), vec![phi]),
        "lt" | "eb" => (format!("{lo_col} < ?"), vec![plo]),
        "ge" => (format!("{hi_col} >= ?"), vec![plo]),
        "le" => (format!("{lo_col} <= ?"), vec![phi]),
        "ap" => (format!("({lo_col} <= ? AND {hi_col} >= ?)"), vec![phi, plo]),
        _ => (format!("({lo_col} >= ? AND {hi_col} <= ?)"), vec![plo, phi]),
    };
    (sql, args.into_iter().map(Sql::Integer).collect())
}

fn condition(
    ty: &str,
    param: &'static Param,
    modifier: Option<&str>,
    raw: &str,
) -> Result<Cond, FhirError> {
    let values: Vec<&str> = split_or(raw);
    if values.is_empty() {
        return Err(FhirError::bad_request(format!(
            "search parameter {} has no value",
            param.name
        )));
    }
    let mut alts = Vec::new();
    let mut args = Vec::new();
    match param.kind {
        Kind::String => {
            for v in values {
                let n = params::fold(v.trim());
                match modifier {
                    Some("exact") => {
                        alts.push("value = ?".to_string());
                        args.push(Sql::Text(n));
                    }
                    Some("contains") => {
                        alts.push("instr(value, ?) > 0".to_string());
                        args.push(Sql::Text(n));
                    }
                    _ => {
                        alts.push("(value >= ? AND value < ?)".to_string());
                        let upper = format!("{n}\u{10FFFF}");
                        args.push(Sql::Text(n));
                        args.push(Sql::Text(upper));
                    }
                }
            }
            Ok(index_cond("idx_string", ty, param, &alts, args, false))
        }
        Kind::Token => {
            for v in values {
                match v.split_once('|') {
                    Some((system, "")) => {
                        alts.push("system = ?".to_string());
                        args.push(Sql::Text(system.to_string()));
                    }
                    Some((system, code)) => {
                        alts.push("(code = ? AND system = ?)".to_string());
                        args.push(Sql::Text(code.to_string()));
                        args.push(Sql::Text(system.to_string()));
                    }
                    None => {
                        alts.push("code = ?".to_string());
                        args.push(Sql::Text(v.to_string()));
                    }
                }
            }
            let negate = modifier == Some("not");
            Ok(index_cond("idx_token", ty, param, &alts, args, negate))
        }
        Kind::Date => {
            for v in values {
                let (prefix, rest) = split_prefix(v);
                let Some((plo, phi)) = time::range_ms(rest) else {
                    return Err(FhirError::bad_request(format!(
                        "search parameter {}: {rest:?} is not a date",
                        param.name
                    )));
                };
                let (sql, mut a) = date_alt(prefix, "lo", "hi", plo, phi);
                alts.push(sql);
                args.append(&mut a);
            }
            Ok(index_cond("idx_date", ty, param, &alts, args, false))
        }
        Kind::Reference => {
            for v in values {
                let v = v.trim();
                let typed = match modifier {
                    Some(t) if params::is_type_name(t) && !v.contains('/') => format!("{t}/{v}"),
                    _ => v.to_string(),
                };
                if typed.contains('/') {
                    let Some(r) = params::normalize_reference(&typed) else {
                        return Err(FhirError::bad_request(format!(
                            "search parameter {}: {v:?} is not a reference",
                            param.name
                        )));
                    };
                    if param
                        .target
                        .is_some_and(|t| !r.starts_with(&format!("{t}/")))
                    {
                        // e.g. patient=Group/1: never a match.
                        alts.push("0".to_string());
                        continue;
                    }
                    alts.push("ref = ?".to_string());
                    args.push(Sql::Text(r));
                } else if let Some(target) = param.target {
                    alts.push("ref = ?".to_string());
                    args.push(Sql::Text(format!("{target}/{typed}")));
                } else {
                    alts.push("ref GLOB ?".to_string());
                    args.push(Sql::Text(format!("*/{}", glob_escape(&typed))));
                }
            }
            Ok(index_cond("idx_ref", ty, param, &alts, args, false))
        }
    }
}

fn glob_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '*' | '?' | '[' => format!("[{c}]"),
            c => c.to_string(),
        })
        .collect()
}

/// Comma separates alternatives; `\,` is a literal comma.
fn split_or(raw: &str) -> Vec<&str> {
    raw.split(',').filter(|s| !s.is_empty()).collect()
}

fn sort_key(ty: &str, name: &str, descending: bool) -> Option<SortKey> {
    match name {
        "_id" => {
            return Some(SortKey::Expr {
                sql: "r.id".into(),
                param: None,
            });
        }
        "_lastUpdated" => {
            return Some(SortKey::Expr {
                sql: "r.lu".into(),
                param: None,
            });
        }
        _ => {}
    }
    // Sorting by name means sorting by family name.
    let name = if name == "name" && params::find_param(ty, "family").is_some() {
        "family"
    } else {
        name
    };
    let param = params::find_param(ty, name)?;
    let (table, col, agg, null) = match param.kind {
        Kind::Date if descending => ("idx_date", "hi", "MAX", "-9223372036854775808"),
        Kind::Date => ("idx_date", "lo", "MIN", "-9223372036854775808"),
        Kind::String => ("idx_string", "value", "MIN", "''"),
        Kind::Token => ("idx_token", "code", "MIN", "''"),
        Kind::Reference => ("idx_ref", "ref", "MIN", "''"),
    };
    Some(SortKey::Expr {
        sql: format!(
            "COALESCE((SELECT {agg}({col}) FROM {table} x WHERE x.rid = r.rid AND x.param = ?), {null})"
        ),
        param: Some(params::storage_name(ty, param).to_string()),
    })
}

fn decode_cursor(raw: &str) -> Result<(Sql, i64), FhirError> {
    let bad = || FhirError::bad_request("invalid paging cursor");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rid = v.get(1).and_then(Value::as_i64).ok_or_else(bad)?;
    let key = match v.get(0) {
        Some(Value::Number(n)) => Sql::Integer(n.as_i64().ok_or_else(bad)?),
        Some(Value::String(s)) => Sql::Text(s.clone()),
        _ => Sql::Null,
    };
    Ok((key, rid))
}

fn encode_cursor(key: &Sql, rid: i64) -> String {
    let k = match key {
        Sql::Integer(i) => json!(i),
        Sql::Text(s) => json!(s),
        _ => Value::Null,
    };
    URL_SAFE_NO_PAD.encode(json!([k, rid]).to_string())
}

/// Parses search parameters for `ty`. `forced` are conditions the caller's
/// access scope adds; they constrain the search but never show in links.
pub fn parse(
    ty: &str,
    request: &[(String, String)],
    forced: &[(String, String)],
) -> Result<Query, FhirError> {
    let mut q = Query {
        ty: ty.to_string(),
        conds: Vec::new(),
        count: DEFAULT_COUNT,
        sort: SortKey::Rid,
        descending: false,
        elements: None,
        summary: Summary::False,
        total: false,
        includes: Vec::new(),
        cursor: None,
        unknown: Vec::new(),
        link_params: Vec::new(),
    };
    if request.len() > MAX_PARAMS {
        return Err(FhirError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "too-costly",
            format!(
                "the search has {} parameters; at most {MAX_PARAMS} are taken",
                request.len()
            ),
        ));
    }
    for (name, value) in request {
        if name != "_cursor" {
            q.link_params.push((name.clone(), value.clone()));
        }
        let values = split_or(value).len().max(value.split_whitespace().count());
        if values > MAX_VALUES {
            return Err(FhirError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "too-costly",
                format!(
                    "search parameter {name} has {values} values; at most {MAX_VALUES} are taken"
                ),
            ));
        }
    }
    for (name, value) in request.iter().chain(forced.iter()) {
        // An empty search box sends `name=`: an empty value constrains nothing.
        if value.trim().is_empty() {
            continue;
        }
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name.as_str(), None),
        };
        match base {
            "_count" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| FhirError::bad_request("_count must be a whole number"))?;
                if n == 0 {
                    q.summary = Summary::Count;
                }
                q.count = n.min(MAX_COUNT);
            }
            "_sort" => {
                if let Some(first) = value.split(',').find(|s| !s.is_empty()) {
                    let (desc, key) = match first.strip_prefix('-') {
                        Some(k) => (true, k),
                        None => (false, first),
                    };
                    match sort_key(ty, key, desc) {
                        Some(k) => {
                            q.sort = k;
                            q.descending = desc;
                        }
                        None => q.unknown.push(format!("_sort={first}")),
                    }
                }
            }
            "_elements" => {
                q.elements = Some(
                    value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "_summary" => match value.as_str() {
                "count" => q.summary = Summary::Count,
                "data" | "true" => q.summary = Summary::Data,
                "false" => q.summary = Summary::False,
                _ => q.unknown.push(format!("_summary={value}")),
            },
            "_total" => q.total = value == "accurate" || value == "estimate",
            "_cursor" => q.cursor = Some(decode_cursor(value)?),
            "_format" | "_pretty" => {}
            "_include" => {
                let param = value
                    .split_once(':')
                    .filter(|(src, _)| *src == ty)
                    .and_then(|(_, p)| params::find_param(ty, p.split(':').next().unwrap_or(p)))
                    .filter(|p| p.kind == Kind::Reference);
                match param {
                    Some(p) => q.includes.push(p),
                    None => q.unknown.push(format!("_include={value}")),
                }
            }
            "_id" => {
                let ids: Vec<&str> = split_or(value);
                if ids.is_empty() {
                    return Err(FhirError::bad_request("_id has no value"));
                }
                let marks = vec!["?"; ids.len()].join(", ");
                let test = (
                    format!("r.id IN ({marks})"),
                    ids.into_iter()
                        .map(|s| Sql::Text(s.to_string()))
                        .collect::<Vec<_>>(),
                );
                q.conds.push(Cond {
                    rank: Some(0),
                    probe: None,
                    form: Form::Id,
                    driver: test.clone(),
                    filter: test,
                });
            }
            "_lastUpdated" => {
                let mut alts = Vec::new();
                let mut args = Vec::new();
                for v in split_or(value) {
                    let (prefix, rest) = split_prefix(v);
                    let (plo, phi) = time::range_ms(rest)
                        .ok_or_else(|| FhirError::bad_request("_lastUpdated is not a date"))?;
                    let (sql, mut a) = date_alt(prefix, "r.lu", "r.lu", plo, phi);
                    alts.push(sql);
                    args.append(&mut a);
                }
                let test = (format!("({})", alts.join(" OR ")), args);
                q.conds.push(Cond {
                    rank: None,
                    probe: None,
                    form: Form::Column,
                    driver: test.clone(),
                    filter: test,
                });
            }
            _ if CONTROL.contains(&base) => {}
            _ => {
                let known_modifier = |p: &Param| match (p.kind, modifier) {
                    (_, None) | (Kind::String, Some("exact" | "contains")) => true,
                    (Kind::Token, Some("not")) => true,
                    (Kind::Reference, Some(m)) => params::is_type_name(m),
                    _ => false,
                };
                match params::find_param(ty, base).filter(|p| known_modifier(p)) {
                    // "fons agus" in a search box: every word must match
                    // the start of some name part.
                    Some(param)
                        if param.kind == Kind::String
                            && modifier.is_none()
                            && !value.contains(',')
                            && value.trim().contains(char::is_whitespace) =>
                    {
                        for word in value.split_whitespace() {
                            q.conds.push(condition(ty, param, modifier, word)?);
                        }
                    }
                    Some(param) => q.conds.push(condition(ty, param, modifier, value)?),
                    None => q.unknown.push(name.clone()),
                }
            }
        }
    }
    Ok(q)
}

impl Query {
    /// Limits the search by an SQL test of the row `r` (a caller's scope).
    pub fn restrict(&mut self, sql: String, args: Vec<Sql>) {
        let test = (format!("({sql})"), args);
        self.conds.push(Cond {
            rank: None,
            probe: None,
            form: Form::Column,
            driver: test.clone(),
            filter: test,
        });
    }

    /// Up to `limit` current matches, in row order (conditional creates).
    pub fn first(&self, conn: &Connection, limit: usize) -> Result<Vec<Stored>, FhirError> {
        if !self.unknown.is_empty() {
            return Err(FhirError::bad_request(format!(
                "unknown search parameters in condition: {}",
                self.unknown.join(", ")
            )));
        }
        let mut q = self.clone();
        q.count = limit;
        q.sort = SortKey::Rid;
        q.cursor = None;
        Ok(q.page(conn)?.0)
    }

    /// The condition whose row ids drive the query, if any. For a page in
    /// row id order, a broad condition (see [`BROAD`]) does not drive.
    fn pick_driver(&self, conn: &Connection, rid_order: bool) -> Result<Option<usize>, FhirError> {
        let mut candidates: Vec<(u8, usize)> = self
            .conds
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.rank.map(|r| (r, i)))
            .collect();
        candidates.sort();
        for (_, i) in candidates {
            if rid_order && let Some((sql, args)) = &self.conds[i].probe {
                let n: i64 = conn
                    .prepare_cached(sql)?
                    .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
                if n >= BROAD {
                    continue;
                }
            }
            return Ok(Some(i));
        }
        Ok(None)
    }

    fn where_clause(&self, driver: Option<usize>) -> (String, Vec<Sql>) {
        let mut args = vec![Sql::Text(self.ty.clone())];
        // An index driver looks rows up by id, so the (type, deleted) index is
        // kept out of the plan; otherwise that index walks the type in row id
        // order (and serves `_id` through (type, id)).
        let mut sql = match driver.map(|i| self.conds[i].form) {
            Some(Form::Index) => "+r.type = ? AND +r.deleted = 0".to_string(),
            _ => "r.type = ? AND r.deleted = 0".to_string(),
        };
        for (i, c) in self.conds.iter().enumerate() {
            let (cond, a) = if Some(i) == driver {
                &c.driver
            } else {
                &c.filter
            };
            sql.push_str(" AND ");
            sql.push_str(cond);
            args.extend(a.iter().cloned());
        }
        (sql, args)
    }

    /// Every condition as a test of the row `r` (a `resources` row), joined
    /// with AND: for callers that find candidate rows their own way.
    pub fn row_filters(&self) -> (String, Vec<Sql>) {
        let mut sql = String::from("1");
        let mut args = Vec::new();
        for c in &self.conds {
            sql.push_str(" AND ");
            sql.push_str(&c.filter.0);
            args.extend(c.filter.1.iter().cloned());
        }
        (sql, args)
    }

    /// A matched resource as the search shows it: `_elements` and
    /// `_summary=data` applied.
    pub fn present(&self, mut res: Value) -> Value {
        if let Some(el) = &self.elements {
            res = subset(res, el);
        } else if self.summary == Summary::Data
            && let Some(obj) = res.as_object_mut()
        {
            obj.remove("text");
            mark_subsetted(obj);
        }
        res
    }

    pub fn count_matches(&self, conn: &Connection) -> Result<i64, FhirError> {
        let (wh, args) = self.where_clause(self.pick_driver(conn, false)?);
        let sql = format!("SELECT COUNT(*) FROM resources r WHERE {wh}");
        Ok(conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?)
    }

    /// One page of matches, and the cursor of the page after it if any.
    pub fn page(&self, conn: &Connection) -> Result<(Vec<Stored>, Option<String>), FhirError> {
        let rid_order = matches!(self.sort, SortKey::Rid);
        let (wh, mut args) = self.where_clause(self.pick_driver(conn, rid_order)?);
        let limit = self.count as i64 + 1;
        let (sql, with_key) = match &self.sort {
            SortKey::Rid => {
                let mut sql = format!(
                    "SELECT r.rid, r.type, r.id, r.version, r.lu, r.deleted, r.json, r.rid FROM resources r WHERE {wh}"
                );
                if let Some((_, rid)) = &self.cursor {
                    sql.push_str(" AND r.rid > ?");
                    args.push(Sql::Integer(*rid));
                }
                sql.push_str(" ORDER BY r.rid LIMIT ?");
                (sql, false)
            }
            SortKey::Expr { sql: expr, param } => {
                let mut key_args = Vec::new();
                if let Some(p) = param {
                    key_args.push(Sql::Text(p.clone()));
                }
                key_args.append(&mut args);
                let mut args2 = key_args;
                let dir = if self.descending { "DESC" } else { "ASC" };
                let mut sql = format!(
                    "SELECT rid, type, id, version, lu, deleted, json, k FROM (
                       SELECT r.rid, r.type, r.id, r.version, r.lu, r.deleted, r.json, {expr} AS k
                       FROM resources r WHERE {wh})"
                );
                // Equal keys in the same direction by row id, newest last
                // or (descending) first: two writes in one millisecond still
                // sort by `_lastUpdated` as they were made.
                let cmp = if self.descending { "<" } else { ">" };
                if let Some((key, rid)) = &self.cursor {
                    sql.push_str(&format!(" WHERE (k {cmp} ? OR (k = ? AND rid {cmp} ?))"));
                    args2.push(key.clone());
                    args2.push(key.clone());
                    args2.push(Sql::Integer(*rid));
                }
                sql.push_str(&format!(" ORDER BY k {dir}, rid {dir} LIMIT ?"));
                args = args2;
                (sql, true)
            }
        };
        args.push(Sql::Integer(limit));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(store::row_to_stored(row)?);
            keys.push(if with_key {
                row.get::<_, Sql>(7)?
            } else {
                Sql::Null
            });
        }
        let next = if out.len() > self.count {
            out.truncate(self.count);
            out.last()
                .zip(self.count.checked_sub(1).and_then(|i| keys.get(i)))
                .map(|(last, key)| encode_cursor(key, last.rid))
        } else {
            None
        };
        Ok((out, next))
    }

    fn include_refs(
        &self,
        conn: &Connection,
        matches: &[Stored],
    ) -> Result<Vec<String>, FhirError> {
        let mut refs = Vec::new();
        if self.includes.is_empty() || matches.is_empty() {
            return Ok(refs);
        }
        let mut stmt =
            conn.prepare_cached("SELECT ref FROM idx_ref WHERE rid = ?1 AND param = ?2")?;
        for m in matches {
            for inc in &self.includes {
                let stored = params::storage_name(&self.ty, inc);
                let rows =
                    stmt.query_map(rusqlite::params![m.rid, stored], |r| r.get::<_, String>(0))?;
                for r in rows {
                    let r = r?;
                    let wanted = inc.target.is_none_or(|t| r.split('/').next() == Some(t));
                    if wanted && !refs.contains(&r) {
                        refs.push(r);
                    }
                }
            }
        }
        Ok(refs)
    }

    fn link(&self, base: &str, cursor: Option<&str>) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.link_params {
            ser.append_pair(k, v);
        }
        if let Some(c) = cursor {
            ser.append_pair("_cursor", c);
        }
        let qs = ser.finish();
        if qs.is_empty() {
            format!("{base}/{}", self.ty)
        } else {
            format!("{base}/{}?{qs}", self.ty)
        }
    }
}

/// Keeps only the named top-level elements (plus the mandatory ones) and tags
/// the resource as a subset.
fn subset(mut res: Value, elements: &[String]) -> Value {
    if let Some(obj) = res.as_object_mut() {
        obj.retain(|k, _| {
            k == "resourceType"
                || k == "id"
                || k == "meta"
                || elements.iter().any(|e| {
                    // A choice element is named without its type: `deceased`
                    // keeps `deceasedDateTime`.
                    e == k
                        || k.strip_prefix(e.as_str())
                            .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
                })
        });
        mark_subsetted(obj);
    }
    res
}

fn mark_subsetted(obj: &mut serde_json::Map<String, Value>) {
    let meta = obj.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Some(tags) = tags.as_array_mut() {
            tags.push(json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "SUBSETTED"
            }));
        }
    }
}

/// What the caller may see of a resource found (`None`: leave it out).
pub type Show<'a> = dyn FnMut(&Stored, Mode) -> Result<Option<Value>, FhirError> + 'a;

/// How a resource is in a searchset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Match,
    Include,
}

/// Runs a search and builds the searchset Bundle. `can_read` decides, per
/// resource type, whether `_include`d resources may be shown to the caller.
pub fn bundle(
    conn: &Connection,
    q: &Query,
    base: &str,
    can_read: &dyn Fn(&str) -> bool,
) -> Result<Value, FhirError> {
    bundle_with(conn, q, base, &mut |s: &Stored, mode| {
        Ok((mode == Mode::Match || can_read(&s.ty)).then(|| s.value()))
    })
}

/// Runs a search and builds the searchset Bundle; `show` is asked for
/// every resource found (matches and includes) and returns what the
/// caller may see of it, or `None` to leave it out.
pub fn bundle_with(
    conn: &Connection,
    q: &Query,
    base: &str,
    show: &mut Show<'_>,
) -> Result<Value, FhirError> {
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
    });
    let mut entries = Vec::new();
    let mut links = vec![json!({"relation": "self", "url": q.link(base, None)})];
    if q.summary == Summary::Count {
        bundle["total"] = json!(q.count_matches(conn)?);
    } else {
        if q.total {
            bundle["total"] = json!(q.count_matches(conn)?);
        }
        let (matches, next) = q.page(conn)?;
        match next {
            Some(c) => links.push(json!({"relation": "next", "url": q.link(base, Some(&c))})),
            // Everything fits on this first page: the total costs nothing.
            None if q.cursor.is_none() => bundle["total"] = json!(matches.len()),
            None => {}
        }
        let refs = q.include_refs(conn, &matches)?;
        for m in &matches {
            let Some(res) = show(m, Mode::Match)? else {
                continue;
            };
            entries.push(json!({
                "fullUrl": format!("{base}/{}/{}", m.ty, m.id),
                "resource": q.present(res),
                "search": {"mode": "match"}
            }));
        }
        for r in refs {
            let Some((ty, id)) = r.split_once('/') else {
                continue;
            };
            if let Some(s) = store::current(conn, ty, id)?.filter(|s| !s.deleted)
                && let Some(res) = show(&s, Mode::Include)?
            {
                entries.push(json!({
                    "fullUrl": format!("{base}/{}/{}", s.ty, s.id),
                    "resource": res,
                    "search": {"mode": "include"}
                }));
            }
        }
    }
    if let Some(e) = unknown_outcome(&q.unknown) {
        entries.push(e);
    }
    bundle["link"] = Value::Array(links);
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(bundle)
}

/// The `outcome` entry that tells the client which parameters were ignored.
pub fn unknown_outcome(unknown: &[String]) -> Option<Value> {
    (!unknown.is_empty()).then(|| {
        json!({
            "resource": outcome(
                "warning",
                "not-supported",
                &format!("ignored unknown search parameters: {}", unknown.join(", ")),
            ),
            "search": {"mode": "outcome"}
        })
    })
}

/// Parses a query string into name/value pairs.
pub fn parse_query(qs: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(qs.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Up to `limit` current resources matching `Type?query` (conditional create,
/// conditional references, access-scope checks).
pub fn matching(
    conn: &Connection,
    ty: &str,
    query: &[(String, String)],
    limit: usize,
) -> Result<Vec<Stored>, FhirError> {
    let mut q = parse(ty, query, &[])?;
    if !q.unknown.is_empty() {
        return Err(FhirError::bad_request(format!(
            "unknown search parameters in condition: {}",
            q.unknown.join(", ")
        )));
    }
    q.count = limit;
    q.sort = SortKey::Rid;
    q.cursor = None;
    Ok(q.page(conn)?.0)
}

pub fn resolve_conditional(conn: &Connection, reference: &str) -> anyhow::Result<Option<String>> {
    let Some((ty, qs)) = reference.split_once('?') else {
        return Ok(None);
    };
    if params::type_params(ty).is_none() {
        return Ok(None);
    }
    let found = matching(conn, ty, &parse_query(qs), 2).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(match found.as_slice() {
        [one] => Some(one.reference()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn unknown_parameters_are_collected_not_fatal() {
        let q = parse(
            "Patient",
            &pairs(&[("name", "ab"), ("shoe", "1"), ("name:fuzzy", "x")]),
            &[],
        )
        .unwrap();
        assert_eq!(
            q.unknown,
            vec!["shoe".to_string(), "name:fuzzy".to_string()]
        );
    }

    #[test]
    fn count_is_capped_and_zero_means_count_only() {
        let q = parse("Patient", &pairs(&[("_count", "100000")]), &[]).unwrap();
        assert_eq!(q.count, MAX_COUNT);
        let q = parse("Patient", &pairs(&[("_count", "0")]), &[]).unwrap();
        assert_eq!(q.summary, Summary::Count);
        assert!(parse("Patient", &pairs(&[("_count", "x")]), &[]).is_err());
    }

    #[test]
    fn a_zero_count_page_is_empty_whatever_the_summary() {
        let conn = Connection::open_in_memory().unwrap();
        store::migrate(&conn).unwrap();
        store::write(
            &conn,
            "Patient",
            "a",
            Some(serde_json::json!({"resourceType": "Patient"})),
            0,
        )
        .unwrap();
        let q = parse(
            "Patient",
            &pairs(&[("_count", "0"), ("_summary", "false")]),
            &[],
        )
        .unwrap();
        let (page, next) = q.page(&conn).unwrap();
        assert!(page.is_empty() && next.is_none());
    }

    #[test]
    fn empty_values_constrain_nothing() {
        let q = parse("Patient", &pairs(&[("name", ""), ("birthdate", " ")]), &[]).unwrap();
        assert!(q.conds.is_empty() && q.unknown.is_empty());
    }

    #[test]
    fn cursor_round_trips() {
        for key in [Sql::Integer(-5), Sql::Text("ordóñez".into()), Sql::Null] {
            let c = encode_cursor(&key, 42);
            let (k, rid) = decode_cursor(&c).unwrap();
            assert_eq!((k, rid), (key, 42));
        }
    }

    #[test]
    fn prefixes_only_before_digits() {
        assert_eq!(split_prefix("ge1984"), ("ge", "1984"));
        assert_eq!(split_prefix("1984"), ("eq", "1984"));
        assert_eq!(split_prefix("gender"), ("eq", "gender"));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(name in "[a-z_:-]{1,16}", value in "\\PC{0,24}") {
            for ty in ["Patient", "Observation", "Task"] {
                let _ = parse(ty, &[(name.clone(), value.clone())], &[]);
            }
        }

        #[test]
        fn cursors_from_clients_never_panic(raw in "\\PC{0,40}") {
            let _ = decode_cursor(&raw);
        }
    }
}
