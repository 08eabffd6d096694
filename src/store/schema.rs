//! The journal's tables, the columns added since the first schema, and reading back what a
//! previous run left.

use rusqlite::{Connection, params};

use super::{Restored, StoreError};
use crate::queue::Question;

pub(super) const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA journal_size_limit = 67108864;
CREATE TABLE IF NOT EXISTS messages (
    stream TEXT NOT NULL, msg_id TEXT NOT NULL, ts INTEGER NOT NULL, user TEXT, text TEXT NOT NULL,
    action TEXT NOT NULL, labels TEXT NOT NULL, cluster INTEGER, written_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS questions (
    stream TEXT NOT NULL, cluster INTEGER NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
    updated_at INTEGER NOT NULL, PRIMARY KEY (stream, cluster));
CREATE TABLE IF NOT EXISTS host_actions (
    stream TEXT NOT NULL, cluster INTEGER, action TEXT NOT NULL, at INTEGER NOT NULL, detail TEXT,
    written_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, product TEXT);
";

/// Columns added after the first schema, each with its type: a journal written before gains
/// them when opened (older rows read as NULL). `streams.catalog`: the stream's products;
/// `streams.reserved`: question ids reserved; `messages.product`: the product each message is
/// about (for `kotae report`).
pub const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("streams", "catalog", "TEXT"),
    ("streams", "reserved", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "product", "TEXT"),
];

/// Brings a journal written by an earlier version up to the current schema, without loss.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in ADDED_COLUMNS {
        let present: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            params![table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// Wall-clock milliseconds as SQLite stores them.
pub(super) fn unix_ms() -> i64 {
    i64::try_from(crate::runtime::clock::unix_ms()).unwrap_or(i64::MAX)
}

pub(super) fn restore(conn: &Connection, path: &str) -> Result<Restored, StoreError> {
    let sql = |source| StoreError::Sqlite { path: path.to_string(), source };
    let mut out = Restored::default();
    let mut stmt = conn.prepare("SELECT stream, body FROM questions ORDER BY stream, cluster").map_err(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(sql)?;
    for row in rows {
        let (stream, body) = row.map_err(sql)?;
        let q: Question =
            serde_json::from_str(&body).map_err(|source| StoreError::Row { path: path.to_string(), source })?;
        out.streams.entry(stream).or_default().questions.push(q);
    }
    let mut stmt = conn.prepare("SELECT stream, product, catalog, reserved FROM streams").map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql)?;
    for row in rows {
        let (stream, product, catalog, reserved) = row.map_err(sql)?;
        let st = out.streams.entry(stream).or_default();
        st.product = product;
        st.reserved = u32::try_from(reserved.max(0)).unwrap_or(u32::MAX);
        if let Some(c) = catalog {
            st.catalog =
                Some(serde_json::from_str(&c).map_err(|source| StoreError::Row { path: path.to_string(), source })?);
        }
    }
    Ok(out)
}
