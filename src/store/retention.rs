//! Retention of the journal: old rows deleted and free pages given back, in bounded steps
//! between the writer's commits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::{Writer, unix_ms};
use crate::metrics::Metrics;
use crate::server::config::JournalConfig;

/// Retention runs in steps between commits, so that deleting old rows never holds the writer
/// (and, through the full queue, the verdicts) for long: a pass over a journal at its
/// `max_messages` had been one statement of seconds, a scan of the whole table each minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retention {
    /// Nothing to do until the next pass is due.
    Idle,
    /// Deleting the oldest messages, in the order written, until one is to be kept; then
    /// the old host actions and answered questions.
    Messages { cutoff: i64 },
    /// Giving free pages back to the file system.
    Vacuum,
}

/// Rows of `messages` one retention step deletes at most (a few ms of work).
pub(super) const RETENTION_ROWS: i64 = 4096;

/// Free pages one retention step gives back at most (2 MiB of 4 KiB pages).
const VACUUM_PAGES: u32 = 512;

/// How often a retention pass starts.
pub(super) const RETENTION_EVERY: Duration = Duration::from_secs(60);

impl Writer {
    /// Starts a retention pass: rows older than `retention_hours` and messages beyond
    /// `max_messages` go; open questions are never deleted.
    pub(super) fn start_retention(&mut self) {
        self.last_retention = Instant::now();
        let cutoff = unix_ms() - (self.config.retention_hours.get() as i64) * 3_600_000;
        self.retention = Retention::Messages { cutoff };
    }

    /// One bounded step of the pass under way, if any.
    pub(super) fn retention_step(&mut self) {
        if let Err(e) = self.try_retention_step() {
            tracing::warn!(error = %e, "journal retention failed");
            self.retention = Retention::Idle;
        }
    }

    fn try_retention_step(&mut self) -> rusqlite::Result<()> {
        match self.retention {
            Retention::Idle => {}
            Retention::Messages { cutoff } => {
                // The oldest rows first, by rowid (the order written): the step reads only the
                // rows it looks at, where a condition on `written_at` alone would scan the table.
                let keep = self.config.max_messages.get() as i64;
                let deleted = self.conn.execute(
                    "DELETE FROM messages WHERE rowid IN (SELECT rowid FROM messages ORDER BY rowid LIMIT ?1)
                     AND (written_at < ?2 OR rowid <= (SELECT max(rowid) FROM messages) - ?3)",
                    params![self.retention_rows, cutoff, keep],
                )?;
                if (deleted as i64) < self.retention_rows {
                    // Host actions and questions are few: one statement each.
                    self.conn.execute("DELETE FROM host_actions WHERE written_at < ?1", [cutoff])?;
                    self.conn.execute(
                        "DELETE FROM questions WHERE state IN ('answered', 'dismissed') AND updated_at < ?1",
                        [cutoff],
                    )?;
                    self.retention = Retention::Vacuum;
                }
            }
            Retention::Vacuum => {
                let free = |conn: &Connection| conn.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0));
                let before = free(&self.conn)?;
                self.conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES});"))?;
                // Done when nothing is free, or when nothing could be given back: a journal
                // created before `auto_vacuum = INCREMENTAL` keeps its free pages for reuse.
                let after = free(&self.conn)?;
                if after == 0 || after >= before {
                    self.retention = Retention::Idle;
                }
            }
        }
        Ok(())
    }

    /// A whole retention pass at once.
    fn retention_pass(&mut self) {
        self.start_retention();
        while self.retention != Retention::Idle {
            self.retention_step();
        }
    }
}

/// Runs a whole retention pass now.
pub fn retention_now(path: &Path, config: &JournalConfig) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    Writer::new(conn, config.clone(), Arc::new(Metrics::new()), Instant::now()).retention_pass();
    Ok(())
}
