//! The server's database connections: a bounded pool of read connections,
//! and one writer, a thread that owns the only write connection.
//!
//! A request waits for a read connection (or its turn at the writer) for
//! at most [`Options::wait`]; then it is answered 503 with `Retry-After`,
//! and nothing more is opened: the number of open database handles is the
//! pool size plus two (the writer and the checkpointer), whatever the load.
//!
//! Writes run one transaction each, in arrival order. Audit records of
//! reads are appended by the writer too, and audit appends that wait
//! together are committed in one transaction (a group commit): the reader
//! is answered only once its record is committed. In WAL mode with
//! `synchronous = NORMAL`, a committed transaction survives the process
//! being killed (it is in the WAL file); only a power loss can take the
//! last ones.
//!
//! Commits do not checkpoint the WAL into the database file (that costs an
//! fsync, which would land on whichever request happened to commit): a
//! thread of its own checkpoints a few times a second.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::audit::{self, Event};
use super::options::Options;
use super::outcome::FhirError;
use super::store;

/// Jobs waiting for the writer beyond this are answered 503 at once.
const WRITER_QUEUE: usize = 4096;
/// Audit appends committed together, at most.
const GROUP: usize = 512;
/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How often, at most, the writer brings the audit's by-patient index up
/// to date (between jobs).
const INDEX_EVERY: Duration = Duration::from_millis(200);

/// Work for the writer thread.
trait WriteJob: Send {
    /// Runs inside an open transaction; true to commit it.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Reports the outcome (after the commit, or without running when the
    /// job waited too long).
    fn finish(self: Box<Self>, committed: Result<(), FhirError>);
}

struct Typed<T, E, F> {
    f: Option<F>,
    out: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> WriteJob for Typed<T, E, F>
where
    T: Send,
    E: From<FhirError> + Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = f(conn);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), FhirError>) {
        let me = *self;
        let result = match (committed, me.out) {
            (Err(e), Some(Err(out))) => {
                // Rolled back because the job failed: its own error.
                let _ = e;
                Err(out)
            }
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), Some(out)) => out,
            (Ok(()), None) => Err(E::from(FhirError::internal())),
        };
        let _ = me.reply.send(result);
    }
}

enum Job {
    Write {
        deadline: Instant,
        job: Box<dyn WriteJob>,
    },
    Append {
        deadline: Instant,
        events: Vec<Event>,
        done: oneshot::Sender<Result<(), FhirError>>,
    },
}

pub struct Db {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
    wait: Duration,
}

fn busy(what: &str) -> FhirError {
    FhirError::unavailable(format!(
        "the server is busy ({what}); try again in a moment"
    ))
}

impl Db {
    /// Opens the writer (migrating the database) and an empty pool.
    pub fn open(path: &Path, options: &Options) -> anyhow::Result<Arc<Db>> {
        let writer = store::connect(path)?;
        store::migrate(&writer)?;
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || writer_loop(writer, rx))?;
        let stopping = Arc::new(AtomicBool::new(false));
        let checkpoints = {
            let conn = store::connect(path)?;
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("db-checkpoint".into())
                .spawn(move || checkpoint_loop(conn, &stopping))?
        };
        Ok(Arc::new(Db {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(options.readers.max(1))),
            writer: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![thread, checkpoints]),
            stopping,
            wait: options.wait,
        }))
    }

    /// Runs `f` on a read connection, waiting for one at most `wait`.
    pub async fn read<T, E>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<FhirError> + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| E::from(busy("all database connections are in use")))?
            .map_err(|_| E::from(FhirError::internal()))?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = db.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&db.path).map_err(E::from)?,
            };
            let out = f(&conn);
            if let Ok(mut r) = db.readers.lock() {
                r.push(conn);
            }
            out
        })
        .await
        .map_err(|_| E::from(FhirError::internal()))?
    }

    fn sender(&self) -> Result<mpsc::Sender<Job>, FhirError> {
        self.writer
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .ok_or_else(|| FhirError::unavailable("the server is stopping"))
    }

    async fn enqueue(&self, job: Job) -> Result<(), FhirError> {
        let tx = self.sender()?;
        tx.send_timeout(job, self.wait)
            .await
            .map_err(|_| busy("too many writes waiting"))
    }

    /// Runs `f` in one transaction on the writer: committed if it returns
    /// `Ok`, rolled back otherwise.
    pub async fn write<T, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<FhirError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job::Write {
            deadline: Instant::now() + self.wait,
            job: Box::new(Typed {
                f: Some(f),
                out: None,
                reply,
            }),
        };
        self.enqueue(job).await.map_err(E::from)?;
        rx.await.map_err(|_| E::from(FhirError::internal()))?
    }

    /// Appends audit records (of reads, refusals, failures); returns once
    /// they are committed.
    pub async fn append(&self, events: Vec<Event>) -> Result<(), FhirError> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, rx) = oneshot::channel();
        self.enqueue(Job::Append {
            deadline: Instant::now() + self.wait,
            events,
            done,
        })
        .await?;
        rx.await.map_err(|_| FhirError::internal())?
    }

    /// Stops the writer once the jobs already queued are done.
    pub fn stop(&self) {
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// Waits for the writer and checkpoint threads to finish (after
    /// [`Db::stop`]).
    pub fn join(&self) {
        let handles = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
}

/// Copies committed WAL frames into the database file, without blocking
/// readers or the writer (a passive checkpoint), until the server stops.
fn checkpoint_loop(conn: Connection, stopping: &AtomicBool) {
    while !stopping.load(Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, FhirError> {
    let c = store::connect(path)?;
    c.pragma_update(None, "query_only", true)?;
    Ok(c)
}

fn begin(conn: &Connection) -> Result<(), FhirError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    Ok(())
}

fn commit(conn: &Connection) -> Result<(), FhirError> {
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e.into());
    }
    Ok(())
}

fn rollback(conn: &Connection) {
    let _ = conn.execute_batch("ROLLBACK");
}

/// Indexes the audit records appended since the last time, in a
/// transaction of its own.
fn index_audit(conn: &Connection) {
    let done = begin(conn).and_then(|()| match audit::index_patients(conn) {
        Ok(_) => commit(conn),
        Err(e) => {
            rollback(conn);
            Err(e.into())
        }
    });
    if let Err(e) = done {
        tracing::warn!(error = %e.message, "indexing the audit trail failed");
    }
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut next: Option<Job> = None;
    let mut indexed = Instant::now();
    loop {
        if indexed.elapsed() >= INDEX_EVERY {
            index_audit(&conn);
            indexed = Instant::now();
        }
        let job = match next.take() {
            Some(j) => j,
            None => match rx.blocking_recv() {
                Some(j) => j,
                None => {
                    index_audit(&conn);
                    return;
                }
            },
        };
        match job {
            Job::Write { deadline, mut job } => {
                if Instant::now() > deadline {
                    job.finish(Err(busy("the write waited too long")));
                    continue;
                }
                if let Err(e) = begin(&conn) {
                    job.finish(Err(e));
                    continue;
                }
                let keep =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&conn)))
                        .unwrap_or(false);
                if keep {
                    let committed = commit(&conn);
                    job.finish(committed);
                } else {
                    rollback(&conn);
                    job.finish(Err(FhirError::internal()));
                }
            }
            Job::Append {
                deadline,
                events,
                done,
            } => {
                // Every append waiting now joins this transaction.
                let mut group = vec![(deadline, events, done)];
                while group.len() < GROUP {
                    match rx.try_recv() {
                        Ok(Job::Append {
                            deadline,
                            events,
                            done,
                        }) => group.push((deadline, events, done)),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let now = Instant::now();
                let (late, group): (Vec<_>, Vec<_>) =
                    group.into_iter().partition(|(d, _, _)| now > *d);
                for (_, _, done) in late {
                    let _ = done.send(Err(busy("the audit record waited too long")));
                }
                if group.is_empty() {
                    continue;
                }
                let result = begin(&conn).and_then(|()| {
                    for (_, events, _) in &group {
                        if let Err(e) = audit::append(&conn, events) {
                            rollback(&conn);
                            return Err(FhirError::from(e));
                        }
                    }
                    commit(&conn)
                });
                for (_, _, done) in group {
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}
