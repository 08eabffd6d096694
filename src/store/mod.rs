//! The durable journal: an embedded SQLite database of messages with their verdicts, questions,
//! host actions and the product on screen, written in batches by one thread off the hot path.
//!
//! Shards send [`Record`]s through a bounded channel (policy when full: the shard waits, and
//! `kotae_backpressure_total{channel="journal"}` counts it); the writer commits up to
//! `batch_max` records per transaction, at least every `flush_interval_ms`. Questions are
//! upserted, so the table always holds each question's latest state, and [`Journal::open`]
//! hands them back after a crash. WAL mode with `synchronous=NORMAL` survives `kill -9` of the
//! process (not a power cut) with at most the last un-committed batch lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, params};
use rustc_hash::FxHashMap;

use crate::catalog::CatalogSpec;
use crate::label::{Action, LabelSet};
use crate::metrics::{Channel, Metrics, Stage};
use crate::queue::Question;
use crate::server::config::JournalConfig;

/// Journal failures (start-up only; write failures are logged and counted).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite could not open, set up, migrate or read the database.
    #[error("journal {path}: {source}")]
    Sqlite {
        /// The database file, as configured (`journal.path`).
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A stored question or catalogue is not the JSON this version reads.
    #[error("journal {path}: bad question row: {source}")]
    Row {
        /// The database file, as configured (`journal.path`).
        path: String,
        /// Where the JSON did not parse.
        source: serde_json::Error,
    },
    /// The writer thread could not be started.
    #[error("journal writer thread: {0}")]
    Thread(std::io::Error),
}

/// One thing to make durable.
#[derive(Debug)]
pub enum Record {
    /// A message and its verdict.
    Message {
        /// The stream it was sent to.
        stream: Arc<str>,
        /// The id its verdict echoes: the platform's, else its 1-based position in the
        /// connection.
        id: String,
        /// When it was sent, Unix milliseconds: its `ts` (clamped to the allowed skew ahead of
        /// the wall clock), else the stream's clock.
        ts: u64,
        /// The sender as the platform named them; `None` when it sent none.
        user: Option<String>,
        /// The original text, unmodified.
        text: String,
        /// The verdict's action (for a message over the latency budget, the fail-open or
        /// fail-closed one).
        action: Action,
        /// The labels given; empty for a message over the latency budget.
        labels: LabelSet,
        /// The question cluster it joined (shown as `q<id>`); `None` when it is no question.
        cluster: Option<u32>,
        /// The product the message is about (named, else on screen); `None` for the shop or
        /// when no product was on screen. What `kotae report` counts per product.
        product: Option<Arc<str>>,
    },
    /// A question's latest state (upserted).
    Question {
        /// The stream it was asked on.
        stream: Arc<str>,
        /// The question as the host queue holds it now, in any state.
        question: Question,
    },
    /// A question dropped from a full queue.
    QuestionRemoved {
        /// The stream whose queue dropped it.
        stream: Arc<str>,
        /// The dropped question's cluster id; its row is deleted.
        cluster: u32,
    },
    /// A host action on a question, or a product change (`cluster` absent).
    HostAction {
        /// The stream acted on.
        stream: Arc<str>,
        /// The question acted on; `None` for a product change.
        cluster: Option<u32>,
        /// What was done: `answered`, `pin`, `unpin`, `dismiss`, `reopen`, or `product`.
        action: &'static str,
        /// When, in the stream's time (Unix milliseconds).
        at: u64,
        /// The answer text given with `answered`, the new product id with `product`;
        /// otherwise `None` (also when the answer or product was cleared).
        detail: Option<String>,
    },
    /// The product on screen.
    Product {
        /// The stream it is on screen in.
        stream: Arc<str>,
        /// The product's id in the stream's catalogue; `None` when nothing is on screen.
        product: Option<String>,
    },
    /// The stream's catalogue.
    Catalog {
        /// The stream it belongs to.
        stream: Arc<str>,
        /// The catalogue as sent (`PUT /v1/streams/ID/catalog`), replacing the one before.
        catalog: CatalogSpec,
    },
    /// Question ids up to `upto` may be issued on this stream: after a restart, ids continue
    /// above it. Once committed, `durable` is raised to `upto` (verdicts carrying an id above
    /// the durable value wait for it).
    Reserve {
        /// The stream whose ids are reserved.
        stream: Arc<str>,
        /// The highest question id reserved; the stored value only ever rises.
        upto: u32,
        /// The stream's durable reservation, raised by the writer once this record is
        /// committed (or its batch failed, logged).
        durable: Arc<tokio::sync::watch::Sender<u32>>,
    },
}

enum Cmd {
    /// Boxed: the channel's slots are allocated and touched in full up front, so a slot the
    /// size of a pointer and a time keeps the idle queue small (32 bytes a slot, not 176).
    /// With when it was sent: a batch is committed `flush_interval` after its oldest record
    /// was sent, however long that record waited for the writer.
    Write(Box<Record>, Instant),
    /// Commit everything before this and answer.
    Flush(crossbeam_channel::Sender<()>),
    /// Commit everything before this and stop.
    Stop,
}

/// What a previous run left: per stream, its questions and the product on screen.
#[derive(Debug, Default)]
pub struct Restored {
    /// Each stream the journal knows, by name.
    pub streams: HashMap<String, RestoredStream>,
}

/// One stream's restored state (also what a cluster snapshot holds of a stream's queue).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RestoredStream {
    /// Its questions in their last journaled state (answered and dismissed ones included),
    /// in cluster order.
    pub questions: Vec<Question>,
    /// The product on screen when the previous run last set it; `None` when none was.
    pub product: Option<String>,
    /// The catalogue last sent for the stream; `None` when none was.
    pub catalog: Option<CatalogSpec>,
    /// Highest question id reserved: new ids continue above it.
    pub reserved: u32,
}

/// A cloneable handle for sending records.
#[derive(Clone)]
pub struct JournalSender {
    tx: Option<Sender<Cmd>>,
    metrics: Arc<Metrics>,
}

impl JournalSender {
    /// A sender that drops everything (journal disabled).
    pub fn disabled(metrics: Arc<Metrics>) -> Self {
        Self { tx: None, metrics }
    }

    /// Queues a record; waits when the queue is full (counted). `false` when there is no
    /// journal to take it (disabled, or stopped).
    pub fn send(&self, r: Record) -> bool {
        let Some(tx) = &self.tx else { return false };
        self.metrics.journal_lag.inc();
        let sent = Cmd::Write(Box::new(r), Instant::now());
        match tx.try_send(sent) {
            Ok(()) => true,
            Err(TrySendError::Full(cmd)) => {
                self.metrics.backpressure(Channel::Journal);
                if tx.send(cmd).is_err() {
                    self.metrics.journal_lag.dec();
                    return false;
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metrics.journal_lag.dec();
                false
            }
        }
    }

    /// Waits until everything sent before is committed.
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (done_tx, done_rx) = bounded(1);
        if tx.send(Cmd::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }

    /// Records waiting.
    pub fn depth(&self) -> usize {
        self.tx.as_ref().map_or(0, |t| t.len())
    }
}

/// The journal writer thread.
pub struct Journal {
    sender: JournalSender,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Opens (or creates) the database, reads back what a previous run left and starts the
    /// writer. With the journal disabled, returns a sender that drops records.
    pub fn open(config: &JournalConfig, metrics: Arc<Metrics>) -> Result<(Self, Restored), StoreError> {
        if !config.enabled() {
            return Ok((Self { sender: JournalSender::disabled(metrics), thread: None }, Restored::default()));
        }
        let path = config.path.display().to_string();
        let sql = |source| StoreError::Sqlite { path: path.clone(), source };
        let conn = Connection::open(&config.path).map_err(sql)?;
        // auto_vacuum must be chosen before the first table exists; later it is a no-op.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;").map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        migrate(&conn).map_err(sql)?;
        let restored = restore(&conn, &path)?;
        let (tx, rx) = bounded(config.queue.get());
        let sender = JournalSender { tx: Some(tx), metrics: metrics.clone() };
        let writer = Writer::new(conn, config.clone(), metrics, Instant::now() - Duration::from_secs(3600));
        let nice = config.nice;
        let thread = std::thread::Builder::new()
            .name("kotae-journal".into())
            .spawn(move || {
                crate::runtime::set_thread_nice(nice);
                writer.run(rx)
            })
            .map_err(StoreError::Thread)?;
        Ok((Self { sender, thread: Some(thread) }, restored))
    }

    /// A handle for sending records.
    pub fn sender(&self) -> JournalSender {
        self.sender.clone()
    }

    /// Commits everything queued and stops the writer; later sends are dropped (and no
    /// longer counted as lag).
    pub fn close(mut self) {
        if let Some(tx) = self.sender.tx.take() {
            let _ = tx.send(Cmd::Stop);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    conn: Connection,
    config: JournalConfig,
    metrics: Arc<Metrics>,
    last_retention: Instant,
    /// Where the retention pass under way is.
    retention: Retention,
    /// Rows of `messages` one retention step deletes at most.
    retention_rows: i64,
    /// Pages holding data when the last retention pass ended (or the journal was opened).
    used_after_retention: Option<i64>,
    /// Free pages the retention pass under way leaves for the next minute's rows.
    keep_free: i64,
    /// Multi-row message inserts by rows per statement, largest first, ending with one row.
    insert_messages: Vec<(usize, String)>,
    /// Scratch buffer for question bodies.
    body: Vec<u8>,
    /// How long a commit takes, on average lately.
    commit_estimate: Duration,
}

/// When a batch whose oldest record was sent at `sent` must start committing: so that it is
/// durable `interval` after it was sent, given commits take `estimate` (at most half the
/// interval is set aside for that).
fn commit_due(sent: Instant, interval: Duration, estimate: Duration) -> Instant {
    sent + interval - estimate.min(interval / 2)
}

/// Columns of a `messages` row as inserted.
const MESSAGE_COLUMNS: usize = 10;

/// Rows per message insert statement: one statement (one parse of its bytecode's loop, one
/// step) per 64 rows costs well under 64 single-row ones. 64 × 10 parameters stays far below
/// SQLite's limit of 32,766.
const MESSAGE_ROWS: [usize; 3] = [64, 8, 1];

/// Every action, numbered as a `messages` insert binds them.
const ACTIONS: [Action; 3] = [Action::Allow, Action::Hold, Action::Block];

impl Writer {
    fn new(conn: Connection, config: JournalConfig, metrics: Arc<Metrics>, last_retention: Instant) -> Self {
        // The action goes in as its text, picked by the number bound: SQLite copies every
        // bound text, and this one is always one of three constants.
        let mut action_case = String::from("CASE ?");
        for (i, a) in ACTIONS.iter().enumerate() {
            action_case.push_str(&format!(" WHEN {i} THEN '{}'", a.as_str()));
        }
        action_case.push_str(" END");
        let insert_messages = MESSAGE_ROWS
            .iter()
            .map(|&rows| {
                let mut sql = String::from(
                    "INSERT INTO messages (stream, msg_id, ts, user, text, action, labels, cluster, written_at, product) VALUES ",
                );
                for row in 0..rows {
                    if row > 0 {
                        sql.push(',');
                    }
                    sql.push_str("(?,?,?,?,?,");
                    sql.push_str(&action_case);
                    sql.push_str(",?,?,?,?)");
                }
                (rows, sql)
            })
            .collect();
        let used_after_retention = retention::used_pages(&conn).ok();
        Self {
            conn,
            config,
            metrics,
            last_retention,
            retention: Retention::Idle,
            retention_rows: RETENTION_ROWS,
            used_after_retention,
            keep_free: 0,
            insert_messages,
            body: Vec::new(),
            commit_estimate: Duration::ZERO,
        }
    }
}

impl Writer {
    fn run(mut self, rx: Receiver<Cmd>) {
        let interval = Duration::from_millis(self.config.flush_interval_ms.get());
        let max = self.config.batch_max.get();
        let mut batch: Vec<Record> = Vec::with_capacity(max);
        let mut waiters = Vec::new();
        loop {
            let first = match rx.recv_timeout(interval) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Set by the batch's oldest record; `None` until one arrives.
            let mut deadline: Option<Instant> = None;
            let mut next = first;
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Write(r, sent) => {
                        let due = if matches!(*r, Record::Reserve { .. }) {
                            // Verdicts wait for it: commit as soon as the queue is drained.
                            Instant::now()
                        } else {
                            commit_due(sent, interval, self.commit_estimate)
                        };
                        deadline = Some(deadline.map_or(due, |d| d.min(due)));
                        batch.push(*r);
                    }
                    Cmd::Flush(w) => {
                        waiters.push(w);
                        break;
                    }
                    Cmd::Stop => {
                        self.commit(&mut batch);
                        return;
                    }
                }
                if batch.len() >= max {
                    break;
                }
                // A batch is committed when full or so that its oldest record is durable
                // `flush_interval` after it was sent, not whenever the queue runs dry: every
                // commit writes the WAL frames again and each question touched in the batch once
                // more, so fewer, larger commits cost less per record, and the loss window of a
                // crash stays `flush_interval`.
                next = match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(_) => match deadline {
                        Some(d) if Instant::now() < d => {
                            rx.recv_timeout(d.saturating_duration_since(Instant::now())).ok()
                        }
                        _ => None,
                    },
                };
            }
            self.commit(&mut batch);
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if self.retention == Retention::Idle && self.last_retention.elapsed() > RETENTION_EVERY {
                self.start_retention();
            }
            self.retention_step();
        }
        self.commit(&mut batch);
    }

    fn commit(&mut self, batch: &mut Vec<Record>) {
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let n = batch.len();
        let mut result = self.write(batch);
        if result.is_err() {
            // One retry covers SQLITE_BUSY from an outside reader; then the batch is lost, loudly.
            std::thread::sleep(Duration::from_millis(50));
            result = self.write(batch);
        }
        match result {
            Ok(()) => self.metrics.journal_written.inc_by(n as u64),
            Err(e) => {
                self.metrics.journal_failures.inc();
                tracing::error!(error = %e, records = n, "journal write failed; records lost");
            }
        }
        // Waiting verdicts go out either way: a failed write is counted and logged above.
        for r in batch.iter() {
            if let Record::Reserve { upto, durable, .. } = r {
                durable.send_if_modified(|d| {
                    let raise = *d < *upto;
                    if raise {
                        *d = *upto;
                    }
                    raise
                });
            }
        }
        let took = started.elapsed();
        // A slow moving average of how long a commit takes, so batches start committing early
        // enough to end within `flush_interval` of their oldest record.
        self.commit_estimate = (self.commit_estimate * 7 + took) / 8;
        self.metrics.journal_lag.sub(n as i64);
        self.metrics.observe(Stage::Journal, took.as_secs_f64());
        batch.clear();
    }

    fn write(&mut self, batch: &[Record]) -> rusqlite::Result<()> {
        let now = unix_ms();
        let tx = self.conn.transaction()?;
        {
            let mut question = tx.prepare_cached(
                "INSERT INTO questions (stream, cluster, state, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (stream, cluster) DO UPDATE SET state = ?3, body = ?4, updated_at = ?5",
            )?;
            let mut removed = tx.prepare_cached("DELETE FROM questions WHERE stream = ?1 AND cluster = ?2")?;
            let mut action = tx.prepare_cached(
                "INSERT INTO host_actions (stream, cluster, action, at, detail, written_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut product = tx.prepare_cached(
                "INSERT INTO streams (stream, product) VALUES (?1, ?2) ON CONFLICT (stream) DO UPDATE SET product = ?2",
            )?;
            let mut catalog = tx.prepare_cached(
                "INSERT INTO streams (stream, catalog) VALUES (?1, ?2) ON CONFLICT (stream) DO UPDATE SET catalog = ?2",
            )?;
            let mut reserve = tx.prepare_cached(
                "INSERT INTO streams (stream, reserved) VALUES (?1, ?2) \
                 ON CONFLICT (stream) DO UPDATE SET reserved = max(reserved, ?2)",
            )?;
            // Only the last state of a question in a batch matters.
            let mut last_question: FxHashMap<(&str, u32), usize> = FxHashMap::default();
            for (i, r) in batch.iter().enumerate() {
                if let Record::Question { stream, question } = r {
                    last_question.insert((stream, question.cluster), i);
                }
            }
            // Messages go in after the rest, many rows per statement: they are the bulk of a
            // batch and no other record refers to them, so only their order among themselves
            // is kept.
            let mut messages = Vec::with_capacity(batch.len());
            for (i, r) in batch.iter().enumerate() {
                match r {
                    Record::Message { .. } => messages.push(r),
                    Record::Question { stream, question: q } => {
                        if last_question.get(&(&**stream, q.cluster)) != Some(&i) {
                            continue;
                        }
                        let state = match q.state {
                            crate::queue::QuestionState::Open => "open",
                            crate::queue::QuestionState::Pinned => "pinned",
                            crate::queue::QuestionState::Answered(_) => "answered",
                            crate::queue::QuestionState::Dismissed(_) => "dismissed",
                        };
                        self.body.clear();
                        serde_json::to_writer(&mut self.body, q)
                            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                        // serde_json writes UTF-8: the bytes go in as text without a second check.
                        let body = ToSqlOutput::Borrowed(ValueRef::Text(&self.body));
                        question.execute(params![&**stream, q.cluster, state, body, now])?;
                    }
                    Record::QuestionRemoved { stream, cluster } => {
                        removed.execute(params![&**stream, cluster])?;
                    }
                    Record::HostAction { stream, cluster, action: a, at, detail } => {
                        action.execute(params![&**stream, cluster, a, *at as i64, detail, now])?;
                    }
                    Record::Product { stream, product: p } => {
                        product.execute(params![&**stream, p])?;
                    }
                    Record::Catalog { stream, catalog: c } => {
                        let body =
                            serde_json::to_string(c).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?;
                        catalog.execute(params![&**stream, body])?;
                    }
                    Record::Reserve { stream, upto, .. } => {
                        reserve.execute(params![&**stream, upto])?;
                    }
                }
            }
            let mut rest = &messages[..];
            let mut labels = String::new();
            for (rows, sql) in &self.insert_messages {
                if rest.len() < *rows {
                    continue;
                }
                let mut insert = tx.prepare_cached(sql)?;
                while let Some((chunk, tail)) = rest.split_at_checked(*rows) {
                    for (row, r) in chunk.iter().enumerate() {
                        let Record::Message { stream, id, ts, user, text, action: act, labels: ls, cluster, product } =
                            r
                        else {
                            continue;
                        };
                        labels.clear();
                        for l in ls.iter() {
                            if !labels.is_empty() {
                                labels.push(',');
                            }
                            labels.push_str(l.as_str());
                        }
                        // Text is bound as a copy (SQLITE_TRANSIENT), so `labels` can be reused.
                        let at = row * MESSAGE_COLUMNS;
                        insert.raw_bind_parameter(at + 1, &**stream)?;
                        insert.raw_bind_parameter(at + 2, id)?;
                        insert.raw_bind_parameter(at + 3, *ts as i64)?;
                        insert.raw_bind_parameter(at + 4, user)?;
                        insert.raw_bind_parameter(at + 5, text)?;
                        insert.raw_bind_parameter(at + 6, ACTIONS.iter().position(|a| a == act))?;
                        insert.raw_bind_parameter(at + 7, &labels)?;
                        insert.raw_bind_parameter(at + 8, cluster)?;
                        insert.raw_bind_parameter(at + 9, now)?;
                        insert.raw_bind_parameter(at + 10, product.as_deref())?;
                    }
                    insert.raw_execute()?;
                    rest = tail;
                }
            }
        }
        tx.commit()
    }
}

mod retention;
mod schema;

pub use retention::retention_now;
use retention::{RETENTION_EVERY, RETENTION_ROWS, Retention};
pub use schema::{ADDED_COLUMNS, migrate};
use schema::{SCHEMA, restore, unix_ms};

#[cfg(test)]
mod tests;
