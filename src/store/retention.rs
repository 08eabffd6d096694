//! Retention of the journal: old rows deleted and free pages given back, in bounded steps
//! between the writer's commits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

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
    /// Deleting the oldest messages, in the order written, up to the first one to keep; then
    /// the old host actions and answered questions.
    Messages {
        /// Host actions and closed questions written before this (Unix ms) go.
        cutoff: i64,
        /// The rowid of the first message to keep: the first written at or after `cutoff`,
        /// unless more than `max_messages` follow it.
        keep_from: i64,
    },
    /// Giving free pages back to the file system, beyond those the next pass's rows will take.
    Vacuum,
}

/// Rows of `messages` one retention step deletes at most (a few ms of work).
pub(super) const RETENTION_ROWS: i64 = 4096;

/// Free pages one retention step gives back at most (2 MiB of 4 KiB pages).
const VACUUM_PAGES: i64 = 512;

/// How often a retention pass starts.
pub(super) const RETENTION_EVERY: Duration = Duration::from_secs(60);

impl Writer {
    /// Starts a retention pass: rows older than `retention_hours` and messages beyond
    /// `max_messages` go; open questions are never deleted.
    pub(super) fn start_retention(&mut self) {
        self.last_retention = Instant::now();
        let cutoff = unix_ms() - (self.config.retention_hours.get() as i64) * 3_600_000;
        // The pages rows took since the last pass: as many free pages are kept for the rows of
        // the next interval. A journal at `max_messages` deletes about what it took each
        // interval, and giving those pages back only for the file to grow again at once moved
        // every page from the end of the file (incremental vacuum) once a minute: the journal's
        // work per message doubled. A journal whose streams went quiet takes none, and gives
        // every free page back.
        let used = used_pages(&self.conn).unwrap_or(0);
        self.keep_free = self.used_after_retention.map_or(0, |before| (used - before).max(0));
        match self.first_to_keep(cutoff) {
            Ok(keep_from) => self.retention = Retention::Messages { cutoff, keep_from },
            Err(e) => tracing::warn!(error = %e, "journal retention failed"),
        }
    }

    /// Rows are written in rowid order with `written_at` rising, so what a pass deletes is a
    /// range of rowids: below the first row young enough, and below the last `max_messages`.
    /// Finding the first young row reads only the old rows before it.
    fn first_to_keep(&self, cutoff: i64) -> rusqlite::Result<i64> {
        let young: Option<i64> = self
            .conn
            .query_row("SELECT rowid FROM messages WHERE written_at >= ?1 ORDER BY rowid LIMIT 1", [cutoff], |r| {
                r.get(0)
            })
            .optional()?;
        let last: Option<i64> = self.conn.query_row("SELECT max(rowid) FROM messages", [], |r| r.get(0))?;
        let Some(last) = last else { return Ok(0) };
        let by_count = last - self.config.max_messages.get() as i64 + 1;
        Ok(young.unwrap_or(last + 1).max(by_count))
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
            Retention::Messages { cutoff, keep_from } => {
                // The oldest rows first, a bounded range of rowids a step: a range delete reads
                // only the rows it deletes (about half the work of picking them by a subquery).
                let oldest: Option<i64> = self.conn.query_row("SELECT min(rowid) FROM messages", [], |r| r.get(0))?;
                match oldest {
                    Some(oldest) if oldest < keep_from => {
                        let below = keep_from.min(oldest.saturating_add(self.retention_rows));
                        self.conn.execute("DELETE FROM messages WHERE rowid < ?1", [below])?;
                    }
                    _ => {
                        // Host actions and questions are few: one statement each.
                        self.conn.execute("DELETE FROM host_actions WHERE written_at < ?1", [cutoff])?;
                        self.conn.execute(
                            "DELETE FROM questions WHERE state IN ('answered', 'dismissed') AND updated_at < ?1",
                            [cutoff],
                        )?;
                        self.retention = Retention::Vacuum;
                    }
                }
            }
            Retention::Vacuum => {
                let before = free_pages(&self.conn)?;
                let give = (before - self.keep_free).min(VACUUM_PAGES);
                if give > 0 {
                    self.conn.execute_batch(&format!("PRAGMA incremental_vacuum({give});"))?;
                }
                // Done when no more is to be given back, or when nothing could be: a journal
                // created before `auto_vacuum = INCREMENTAL` keeps its free pages for reuse.
                let after = free_pages(&self.conn)?;
                if after <= self.keep_free || after >= before {
                    self.retention = Retention::Idle;
                    self.used_after_retention = used_pages(&self.conn).ok();
                }
            }
        }
        Ok(())
    }

    /// A whole retention pass at once.
    pub(super) fn retention_pass(&mut self) {
        self.start_retention();
        while self.retention != Retention::Idle {
            self.retention_step();
        }
    }
}

/// Pages holding data: the file's pages less the free ones.
pub(super) fn used_pages(conn: &Connection) -> rusqlite::Result<i64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(pages - free_pages(conn)?)
}

fn free_pages(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
}

/// Runs a whole retention pass now.
pub fn retention_now(path: &Path, config: &JournalConfig) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    Writer::new(conn, config.clone(), Arc::new(Metrics::new()), Instant::now()).retention_pass();
    Ok(())
}
