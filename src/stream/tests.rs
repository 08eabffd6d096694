//! The per-stream core driven directly, without threads: ids, eviction, journaling, limits.

use super::*;
use crate::queue::Question;
use crate::runtime::clock::{Clock, unix_ms};

#[test]
fn answered_times_are_shown_in_local_time() {
    // 2026-11-22 03:03 UTC is 12:03 in Japan.
    let ms = 1_795_316_580_000;
    assert_eq!(clock(ms, 540), "12:03");
    assert_eq!(clock(ms, 0), "03:03");
    assert_eq!(clock(ms, -240), "23:03");
}

fn shard(idle: std::time::Duration) -> (Streams, crate::pipeline::Analyzer) {
    shard_at(idle, Clock::system())
}

fn shard_at(idle: std::time::Duration, clock: Clock) -> (Streams, crate::pipeline::Analyzer) {
    let engine = Engine::new(crate::pipeline::PipelineConfig::default()).expect("engine");
    let metrics = Arc::new(Metrics::new());
    let settings = Settings {
        rank: RankConfig::default(),
        locale: Locale::Ja,
        policy: FailPolicy::Open,
        max_questions: 10,
        utc_offset: 540,
        record_messages: false,
        stream_idle: idle,
        question_interval: std::time::Duration::from_millis(250),
        max_streams: 4,
        live_streams: Arc::default(),
        max_ts_skew: 300_000,
    };
    let shard = Streams::new(
        engine.clone(),
        Arc::new(settings),
        JournalSender::disabled(metrics.clone()),
        metrics,
        Arc::new(Moderation::new(crate::moderation::Audit::open(None))),
        clock,
    );
    (shard, engine.analyzer())
}

/// A shard that journals into `dir/j.db`, with the journal's configuration and writer.
fn journaled_shard(
    dir: &std::path::Path,
) -> (Streams, crate::pipeline::Analyzer, crate::server::config::JournalConfig, crate::store::Journal) {
    let config = crate::server::config::JournalConfig {
        path: dir.join("j.db"),
        ..crate::server::config::JournalConfig::default()
    };
    let (mut shard, analyzer) = shard(std::time::Duration::from_secs(3600));
    let (journal, _) = crate::store::Journal::open(&config, shard.metrics.clone()).unwrap();
    shard.journal = journal.sender();
    (shard, analyzer, config, journal)
}

fn ask(shard: &mut Streams, analyzer: &mut crate::pipeline::Analyzer, stream: &Arc<str>, text: &str) -> String {
    let m = crate::message::InMessage {
        text: text.into(),
        id: Some(serde_json::Value::String("m".into())),
        stream: None,
        user: Some("u".into()),
        ts: Some(1_000),
        paid: None,
        product: None,
        paid_currency: None,
        paid_exponent: None,
    };
    let a = analyzer.analyze(text).expect("analyzed");
    match &shard.process(stream.clone(), vec![Item::Analyzed(m, Box::new(a))]).outs[0] {
        Out::Verdict(v) => v.verdict.cluster.clone().expect("a question"),
        Out::Error(e, _) => panic!("{}", e.error),
    }
}

#[test]
fn idle_streams_without_open_questions_are_forgotten_and_continue_their_ids() {
    let (mut shard, mut analyzer) = shard(std::time::Duration::ZERO);
    let s: Arc<str> = Arc::from("s");
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
    shard.sweep();
    assert_eq!(shard.streams.len(), 1, "an open question keeps the stream");
    assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Keep).is_some());
    shard.sweep();
    assert!(shard.streams.is_empty(), "nothing open, nobody watching: forgotten");
    let next = ask(&mut shard, &mut analyzer, &s, "送料いくらですか");
    let n: u32 = next.trim_start_matches('q').parse().unwrap();
    assert!(n > ID_BLOCK, "ids continue above everything reserved after eviction: {next}");
}

#[test]
fn questions_are_journaled_once_per_interval_in_their_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let (mut shard, mut analyzer, config, journal) = journaled_shard(dir.path());
    let s: Arc<str> = Arc::from("s");
    let stored = || -> Vec<(u32, u32)> {
        let conn = rusqlite::Connection::open(&config.path).unwrap();
        let mut stmt = conn.prepare("SELECT cluster, body FROM questions").unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(|r| {
                let (cluster, body) = r.unwrap();
                let q: Question = serde_json::from_str(&body).unwrap();
                (cluster, q.askers)
            })
            .collect()
    };
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？"), "q1");
    journal.sender().flush();
    assert_eq!(shard.metrics.journal_lag.get(), 1, "one question waits, counted as lag");
    journal.sender().flush();
    assert!(stored().is_empty(), "not before its interval");
    shard.journal_questions(false);
    journal.sender().flush();
    assert!(stored().is_empty(), "still not before its interval");
    shard.journal_questions(true);
    journal.sender().flush();
    assert_eq!(shard.metrics.journal_lag.get(), 0);
    assert_eq!(stored(), vec![(1, 1)], "once, in its state after both asks (one asker)");
    drop(shard);
    journal.close();
}

fn ask_at(
    shard: &mut Streams,
    analyzer: &mut crate::pipeline::Analyzer,
    stream: &Arc<str>,
    text: &str,
    ts: u64,
) -> Processed {
    let m = crate::message::InMessage {
        text: text.into(),
        id: Some(serde_json::Value::String("m".into())),
        stream: None,
        user: Some(format!("u{ts}")),
        ts: Some(ts),
        paid: None,
        product: None,
        paid_currency: None,
        paid_exponent: None,
    };
    let a = analyzer.analyze(text).expect("analyzed");
    shard.process(stream.clone(), vec![Item::Analyzed(m, Box::new(a))])
}

fn cluster_of(p: &Processed) -> String {
    match &p.outs[0] {
        Out::Verdict(v) => v.verdict.cluster.clone().unwrap_or_default(),
        Out::Error(e, _) => e.error.clone(),
    }
}

#[test]
fn a_wild_timestamp_is_clamped_and_neither_wraps_the_clock_nor_splits_a_question() {
    let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
    let s: Arc<str> = Arc::from("s");
    let now = unix_ms();
    let a = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか", now);
    let b = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？", u64::MAX);
    let c = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも大丈夫ですか", now + 1000);
    assert_eq!(cluster_of(&a), cluster_of(&b), "one question");
    assert_eq!(cluster_of(&a), cluster_of(&c), "still one question after the wild one");
    let clock = shard.streams[&s].now(&shard.clock);
    assert!(clock >= now && clock <= unix_ms() + 300_000 + 1000, "the clock stays near the wall clock: {clock}");
    assert_eq!(shard.metrics.refused_total(Refusal::Timestamp), 1);
    let list = shard.list(s.clone());
    let q = &list.questions[0];
    assert!(!q.why.contains("waiting") || q.why.len() < 40, "no endless waiting time: {}", q.why);
}

#[test]
fn reads_do_not_create_streams_and_new_streams_stop_at_the_cap() {
    let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
    for i in 0..1000 {
        let list = shard.list(Arc::from(format!("read-{i}")));
        assert!(list.questions.is_empty());
        assert!(shard.act(Arc::from(format!("act-{i}")), 1, HostAction::Answered, AnswerText::Keep).is_none());
    }
    assert!(shard.streams.is_empty(), "reads and acts on unknown streams leave nothing");
    for i in 0..4 {
        let s: Arc<str> = Arc::from(format!("s{i}"));
        assert!(cluster_of(&ask_at(&mut shard, &mut analyzer, &s, "送料いくらですか", 1_000)).starts_with('q'));
    }
    let fifth = ask_at(&mut shard, &mut analyzer, &Arc::from("s5"), "送料いくらですか", 1_000);
    assert!(matches!(&fifth.outs[0], Out::Error(e, RejectReason::TooManyStreams) if e.error == "too many streams"));
    assert_eq!(shard.streams.len(), 4);
    assert_eq!(shard.metrics.refused_total(Refusal::Streams), 1);
}

#[test]
fn a_new_question_id_goes_out_only_once_its_reservation_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut shard, mut analyzer, config, journal) = journaled_shard(dir.path());
    let s: Arc<str> = Arc::from("s");
    let first = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか", 1_000);
    let (mut durable, id) = first.durable.expect("a new id waits for its reservation");
    assert_eq!(id, 1);
    journal.sender().flush();
    assert!(*durable.borrow_and_update() >= id, "committed");
    let again = ask_at(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか？", 2_000);
    assert!(again.durable.is_none(), "an id already covered does not wait");
    drop(shard);
    journal.close();
    let (_j, restored) = crate::store::Journal::open(&config, Arc::new(Metrics::new())).unwrap();
    assert!(restored.streams["s"].reserved >= 1, "new ids continue above it after a restart");
}

#[test]
fn the_faq_lists_answers_with_their_text_and_never_creates_a_stream() {
    let (mut shard, mut analyzer) = shard(std::time::Duration::from_secs(3600));
    let nobody: Arc<str> = Arc::from("nobody");
    assert!(shard.faq(nobody).answered.is_empty());
    assert!(shard.streams.is_empty(), "a FAQ request (public) keeps no state for an unknown stream");
    let s: Arc<str> = Arc::from("s");
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "送料いくらですか"), "q2");
    let text = AnswerText::Set("低刺激なので使えます".into());
    assert!(shard.act(s.clone(), 1, HostAction::Answered, text).is_some());
    let faq = shard.faq(s.clone());
    assert_eq!(faq.answered.len(), 1, "only answered questions");
    assert_eq!((faq.answered[0].id.as_str(), faq.answered[0].answer.as_deref()), ("q1", Some("低刺激なので使えます")));
    // Answered again without a text: the text stays; with "": it goes.
    assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Keep).is_some());
    assert_eq!(shard.faq(s.clone()).answered[0].answer.as_deref(), Some("低刺激なので使えます"));
    assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Clear).is_some());
    assert_eq!(shard.faq(s).answered[0].answer, None);
}

#[test]
fn host_actions_parse_from_their_path_segment() {
    assert_eq!(HostAction::parse("answered"), Some(HostAction::Answered));
    assert_eq!(HostAction::parse("pin"), Some(HostAction::Pin));
    assert_eq!(HostAction::parse("delete"), None);
}

#[test]
fn idle_eviction_and_question_journaling_follow_the_injected_clock() {
    let clock = Clock::manual(1_795_316_580_000);
    let (mut shard, mut analyzer) = shard_at(std::time::Duration::from_secs(60), clock.clone());
    let s: Arc<str> = Arc::from("s");
    assert_eq!(ask(&mut shard, &mut analyzer, &s, "敏感肌でも使えますか"), "q1");
    assert!(shard.act(s.clone(), 1, HostAction::Answered, AnswerText::Keep).is_some());
    assert_eq!(shard.metrics.journal_lag.get(), 1, "the question waits for its interval");
    shard.tick();
    assert_eq!(shard.metrics.journal_lag.get(), 1, "time has not moved: still waiting");
    clock.advance(std::time::Duration::from_millis(250));
    shard.tick();
    assert_eq!(shard.metrics.journal_lag.get(), 0, "journaled once its interval passed");
    clock.advance(std::time::Duration::from_secs(59));
    shard.sweep();
    assert_eq!(shard.streams.len(), 1, "not idle for a minute yet");
    clock.advance(std::time::Duration::from_secs(1));
    shard.sweep();
    assert!(shard.streams.is_empty(), "idle for a minute by the clock: forgotten");
}

#[test]
fn a_stream_taken_from_a_snapshot_goes_on_exactly_as_the_original() {
    let (mut a, mut analyzer) = shard(std::time::Duration::from_secs(3600));
    let s: Arc<str> = Arc::from("s");
    for t in ["Mサイズありますか", "送料いくらですか", "黒はありますか"] {
        ask(&mut a, &mut analyzer, &s, t);
    }
    a.set_product(s.clone(), Some("p1".into())).unwrap();
    let snap = a.export(&|_| true);
    assert_eq!(snap.len(), 1);
    let json = serde_json::to_string(&snap).unwrap();
    let back: Vec<StreamSnapshot> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap, "a snapshot reads back as it was written");
    let (mut b, _) = shard(std::time::Duration::from_secs(3600));
    for st in back {
        b.import(st);
    }
    assert_eq!(b.export(&|_| true), snap, "an imported stream exports the same state");
    // Later questions, a repeat of an earlier one among them, get the same ids on both.
    for t in ["Mサイズありますか", "返品できますか", "送料いくらですか", "白もありますか"]
    {
        assert_eq!(ask(&mut a, &mut analyzer, &s, t), ask(&mut b, &mut analyzer, &s, t), "{t}");
    }
    assert_eq!(a.export(&|_| true), b.export(&|_| true));
    b.forget(&|n| n == "s");
    assert!(b.export(&|_| true).is_empty());
    assert_eq!(b.settings.live_streams.load(std::sync::atomic::Ordering::Relaxed), 0);
}
