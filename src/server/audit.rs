//! Append-only audit of every read, search and write, written off the request
//! path by a dedicated thread with its own connection.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::params;

use super::access::Caller;
use super::store;

#[derive(Debug)]
pub struct Record {
    pub at: i64,
    pub user: Option<String>,
    pub role: Option<String>,
    pub action: &'static str,
    pub ty: Option<String>,
    pub id: Option<String>,
    pub status: u16,
}

enum Msg {
    Record(Record),
    Stop,
}

#[derive(Clone)]
pub struct AuditSink(mpsc::Sender<Msg>);

impl AuditSink {
    pub fn record(
        &self,
        caller: &Caller,
        action: &'static str,
        ty: Option<&str>,
        id: Option<&str>,
        status: u16,
    ) {
        let rec = Record {
            at: store::now_ms(),
            user: caller.name().map(str::to_string),
            role: caller.role().map(|r| r.code().to_string()),
            action,
            ty: ty.map(str::to_string),
            id: id.map(str::to_string),
            status,
        };
        // A stopped writer means the server is shutting down.
        let _ = self.0.send(Msg::Record(rec));
    }

    pub fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

/// Starts the writer thread.
pub fn spawn(db: &Path) -> anyhow::Result<(AuditSink, JoinHandle<()>)> {
    let conn = store::connect(db)?;
    let (tx, rx) = mpsc::channel::<Msg>();
    let handle = std::thread::Builder::new()
        .name("audit-writer".into())
        .spawn(move || {
            let mut conn = conn;
            let mut stop = false;
            while !stop {
                let Ok(first) = rx.recv() else { break };
                let mut batch = Vec::new();
                match first {
                    Msg::Record(r) => batch.push(r),
                    Msg::Stop => stop = true,
                }
                while batch.len() < 1000 {
                    match rx.try_recv() {
                        Ok(Msg::Record(r)) => batch.push(r),
                        Ok(Msg::Stop) => stop = true,
                        Err(_) => break,
                    }
                }
                if let Err(err) = write_batch(&mut conn, &batch) {
                    tracing::error!(error = %err, records = batch.len(), "audit write failed");
                }
            }
        })?;
    Ok((AuditSink(tx), handle))
}

fn write_batch(conn: &mut rusqlite::Connection, batch: &[Record]) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (at, user, role, action, type, id, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.at, r.user, r.role, r.action, r.ty, r.id, r.status
            ])?;
        }
    }
    tx.commit()
}
