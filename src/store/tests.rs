//! Unit tests of `src/store/mod.rs`.

use super::*;
use crate::queue::QuestionState;

fn question(cluster: u32, state: QuestionState) -> Question {
    Question {
        cluster,
        state,
        first_ts: 1,
        last_ts: 2,
        askers: 3,
        wordings: Vec::new(),
        topics: vec!["size".into()],
        topic_counts: vec![1],
        product: None,
        shop: false,
        paid: 0,
        paid_amounts: Vec::new(),
        intent: false,
        asked_after_answer: 0,
        answer: None,
    }
}

#[test]
fn questions_come_back_in_their_latest_state_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { path: dir.path().join("j.db"), ..JournalConfig::default() };
    let metrics = Arc::new(Metrics::new());
    let (journal, restored) = Journal::open(&config, metrics.clone()).unwrap();
    assert!(restored.streams.is_empty());
    let s: Arc<str> = Arc::from("s1");
    let tx = journal.sender();
    tx.send(Record::Question { stream: s.clone(), question: question(1, QuestionState::Open) });
    tx.send(Record::Question { stream: s.clone(), question: question(1, QuestionState::Pinned) });
    tx.send(Record::Question { stream: s.clone(), question: question(2, QuestionState::Open) });
    tx.send(Record::QuestionRemoved { stream: s.clone(), cluster: 2 });
    tx.send(Record::Product { stream: s.clone(), product: Some("p2".into()) });
    drop(tx);
    journal.close();
    assert_eq!(metrics.journal_lag.get(), 0);
    let (_journal, restored) = Journal::open(&config, metrics).unwrap();
    let st = &restored.streams["s1"];
    assert_eq!(st.questions, vec![question(1, QuestionState::Pinned)]);
    assert_eq!(st.product.as_deref(), Some("p2"));
}

#[test]
fn a_batch_is_due_by_its_oldest_record_not_by_when_the_writer_took_it() {
    let sent = Instant::now();
    let interval = Duration::from_millis(10);
    // A record that waited 8 ms for the writer (it was committing) is due 2 ms after it is
    // taken, not 10 ms: the crash window is the interval from when the verdict went out.
    assert_eq!(commit_due(sent, interval, Duration::ZERO), sent + interval);
    assert_eq!(commit_due(sent, interval, Duration::from_millis(3)), sent + Duration::from_millis(7));
    assert_eq!(commit_due(sent, interval, Duration::from_secs(1)), sent + Duration::from_millis(5));
}

#[test]
fn reservations_are_restored_and_raise_the_durable_mark_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { path: dir.path().join("j.db"), ..JournalConfig::default() };
    let (journal, _) = Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    let durable = Arc::new(tokio::sync::watch::channel(0u32).0);
    let tx = journal.sender();
    assert!(tx.send(Record::Reserve { stream: Arc::from("s"), upto: 1024, durable: durable.clone() }));
    assert!(tx.send(Record::Reserve { stream: Arc::from("s"), upto: 600, durable: durable.clone() }));
    tx.send(Record::Product { stream: Arc::from("s"), product: Some("p".into()) });
    tx.flush();
    assert_eq!(*durable.borrow(), 1024, "raised once committed, never lowered");
    drop(tx);
    journal.close();
    let (_journal, restored) = Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    assert_eq!(restored.streams["s"].reserved, 1024);
    assert_eq!(restored.streams["s"].product.as_deref(), Some("p"));
}

/// A closed journal in `dir` keeping at most `max_messages`, holding `n` messages `s`/0.. (as
/// many as retention left of them).
fn journal_of(dir: &std::path::Path, max_messages: u64, n: u64) -> JournalConfig {
    let config = JournalConfig {
        path: dir.join("j.db"),
        max_messages: std::num::NonZeroU64::new(max_messages).unwrap(),
        ..JournalConfig::default()
    };
    let (journal, _) = Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    let tx = journal.sender();
    for i in 0..n {
        tx.send(Record::Message {
            stream: Arc::from("s"),
            id: i.to_string(),
            ts: i,
            user: None,
            text: "x".into(),
            action: Action::Allow,
            labels: LabelSet::default(),
            cluster: None,
            product: None,
        });
    }
    drop(tx);
    journal.close();
    config
}

#[test]
fn retention_deletes_in_bounded_steps_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = journal_of(dir.path(), 1000, 1500);
    // The oldest 700 rows are past `retention_hours`: more than the 500 over `max_messages`.
    let conn = Connection::open(&config.path).unwrap();
    conn.execute("UPDATE messages SET written_at = 0 WHERE rowid <= 700", []).unwrap();
    let mut w = Writer::new(conn, config.clone(), Arc::new(Metrics::new()), Instant::now());
    w.retention_rows = 64;
    w.start_retention();
    let count = |w: &Writer| -> i64 { w.conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap() };
    let mut steps = 0;
    let mut before = count(&w);
    while w.retention != Retention::Idle {
        w.retention_step();
        let now = count(&w);
        assert!(before - now <= 64, "a step deleted {} rows", before - now);
        before = now;
        steps += 1;
        assert!(steps < 100, "retention did not finish");
    }
    // 700 rows to delete, 64 a step: 11 steps, the last one short, then the vacuum.
    assert!(steps >= 11, "{steps} steps");
    assert_eq!(count(&w), 800);
    let oldest: String =
        w.conn.query_row("SELECT msg_id FROM messages ORDER BY rowid LIMIT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(oldest, "700");
}

#[test]
fn retention_ends_on_a_journal_that_cannot_give_pages_back() {
    // A journal created without incremental auto-vacuum (as an early version did): its free
    // pages stay for reuse, and the pass must still end.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    Connection::open(&path).unwrap().execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE t (x);").unwrap();
    let config =
        JournalConfig { path, max_messages: std::num::NonZeroU64::new(10).unwrap(), ..JournalConfig::default() };
    let (journal, _) = Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    journal.close();
    let conn = Connection::open(&config.path).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO messages (stream, msg_id, ts, text, action, labels, written_at)
         SELECT 's', i, i, 'x', 'allow', '', 0 FROM n;",
    )
    .unwrap();
    let mut w = Writer::new(conn, config.clone(), Arc::new(Metrics::new()), Instant::now());
    w.start_retention();
    let mut steps = 0;
    while w.retention != Retention::Idle {
        w.retention_step();
        steps += 1;
        assert!(steps < 100, "retention did not finish");
    }
    let free: i64 = w.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
    assert!(free > 0, "the deleted rows' pages stay free for reuse");
    let n: i64 = w.conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0, "every row was past retention_hours");
}

#[test]
fn retention_keeps_at_most_max_messages() {
    let dir = tempfile::tempdir().unwrap();
    let config = journal_of(dir.path(), 10, 50);
    retention_now(&config.path, &config).unwrap();
    let conn = Connection::open(&config.path).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 10);
}

#[test]
fn sqlite_is_built_without_memory_statistics() {
    // Set in .cargo/config.toml; a LIBSQLITE3_FLAGS already in the environment wins over it.
    let conn = Connection::open_in_memory().unwrap();
    let used: bool =
        conn.query_row("SELECT sqlite_compileoption_used('DEFAULT_MEMSTATUS=0')", [], |r| r.get(0)).unwrap();
    assert!(used, "SQLite was built without .cargo/config.toml's LIBSQLITE3_FLAGS (is LIBSQLITE3_FLAGS set?)");
}

#[test]
fn a_journal_at_its_cap_keeps_the_pages_it_frees_for_the_next_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        path: dir.path().join("j.db"),
        max_messages: std::num::NonZeroU64::new(1000).unwrap(),
        ..JournalConfig::default()
    };
    Journal::open(&config, Arc::new(Metrics::new())).unwrap().0.close();
    let mut w =
        Writer::new(Connection::open(&config.path).unwrap(), config.clone(), Arc::new(Metrics::new()), Instant::now());
    let insert = |w: &Writer, from: i64| {
        w.conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 + 2999)
                 INSERT INTO messages (stream, msg_id, ts, text, action, labels, written_at)
                 SELECT 's', i, i, 'Mサイズまだありますか', 'allow', 'question', ?2 FROM n",
                params![from, unix_ms()],
            )
            .unwrap();
    };
    let free = |w: &Writer| -> i64 { w.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap() };
    let rows = |w: &Writer| -> i64 { w.conn.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)).unwrap() };

    // A minute of rows past the cap: the pass deletes 2,000 of them, and their pages stay free
    // for the next minute's rows instead of being moved out of the file and grown back.
    insert(&w, 0);
    w.retention_pass();
    assert_eq!(rows(&w), 1000);
    let kept = free(&w);
    assert!(kept > 0, "the freed pages are kept for the next rows");

    // The next minute's rows take them: the file does not grow.
    let pages = |w: &Writer| -> i64 { w.conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap() };
    let before = pages(&w);
    insert(&w, 3000);
    assert!(pages(&w) < before + kept, "the new rows went into the kept pages");
    w.retention_pass();
    assert_eq!(rows(&w), 1000);

    // Streams gone quiet: a pass with no new rows since the last gives every free page back.
    w.retention_pass();
    assert_eq!(free(&w), 0);
}

#[cfg(target_os = "linux")]
#[test]
fn the_writer_thread_runs_at_the_configured_lower_priority() {
    // Field 19 of /proc/…/stat is the nice value (after the command name, which may hold spaces).
    let nice_of = |stat: &str| -> Option<i32> { stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok() };
    let base = nice_of(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig { path: dir.path().join("j.db"), nice: 7, ..JournalConfig::default() };
    let (journal, _) = Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    let wanted = (base + 7).min(19);
    let found = (0..200).any(|_| {
        let seen = std::fs::read_dir("/proc/self/task").unwrap().flatten().any(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            comm.trim() == "kotae-journal" && nice_of(&stat) == Some(wanted)
        });
        if !seen {
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    });
    journal.close();
    assert!(found, "no journal thread at nice {wanted}");
    let bad = JournalConfig { nice: 20, ..JournalConfig::default() };
    assert!(bad.problems().iter().any(|p| p.contains("server.journal.nice")), "{:?}", bad.problems());
}
