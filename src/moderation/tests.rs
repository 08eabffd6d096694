//! Unit tests of `src/moderation.rs`.

use std::path::{Path, PathBuf};

use super::*;
use crate::pipeline::Verdict;
use crate::pipeline::classify::AbuseCategory;

fn verdict(labels: &[Label], scores: [f32; 4], action: Action) -> Verdict {
    let mut set = LabelSet::default();
    for l in labels {
        set.insert(*l);
    }
    Verdict {
        labels: set,
        action,
        scores,
        cluster: None,
        reasons: Vec::new(),
        repeats: 0,
        topics: Vec::new(),
        about: Default::default(),
        category: None,
    }
}

#[test]
fn a_fraud_accusation_waits_for_a_person_whatever_the_stream_blocks_at() {
    let mut m = StreamModeration::default();
    let c = ClassifyConfig::default();
    m.settings.block_at = Some(0.5);
    let mut fraud = verdict(&[Label::Abuse], [0.0, 0.0, 0.0, 0.99], Action::Hold);
    fraud.category = Some(AbuseCategory::Fraud);
    m.observe("f", Some("a"), "詐欺", 1000, None, &mut fraud, &c);
    assert_eq!(fraud.action, Action::Hold, "low severity is never blocked automatically");
    assert!(m.held(false)[0].why.starts_with("abuse 0.99 fraud"), "{}", m.held(false)[0].why);
    assert_eq!(m.held(false)[0].category, Some(AbuseCategory::Fraud));
    let mut threat = verdict(&[Label::Abuse], [0.0, 0.0, 0.0, 0.6], Action::Block);
    threat.category = Some(AbuseCategory::Threat);
    m.observe("t", Some("a"), "殺す", 1000, None, &mut threat, &c);
    assert_eq!(threat.action, Action::Block);
}

#[test]
fn stream_thresholds_turn_blocks_into_holds_and_back() {
    let mut m = StreamModeration::default();
    let c = ClassifyConfig::default();
    m.settings.block_at = Some(0.95);
    let mut v = verdict(&[Label::Abuse], [0.0, 0.0, 0.0, 0.9], Action::Block);
    m.observe("m1", Some("a"), "ブス", 1000, None, &mut v, &c);
    assert_eq!(v.action, Action::Hold);
    assert_eq!(m.held(false).len(), 1);
    assert!(m.held(false)[0].why.starts_with("abuse 0.90"), "{}", m.held(false)[0].why);
    m.settings = StreamSettings { hold_at: Some(0.3), ..Default::default() };
    let mut v = verdict(&[], [0.0, 0.0, 0.35, 0.0], Action::Allow);
    m.observe("m2", Some("a"), "x", 2000, None, &mut v, &c);
    assert_eq!(v.action, Action::Hold, "below the label threshold but over the stream's hold_at");
}

#[test]
fn slow_mode_blocks_a_second_message_within_the_window() {
    let mut m = StreamModeration::default();
    let c = ClassifyConfig::default();
    m.settings.slow_mode_seconds = 10;
    for (id, ts, want) in [("1", 0, Action::Allow), ("2", 5_000, Action::Block), ("3", 10_000, Action::Allow)] {
        let mut v = verdict(&[], [0.0; 4], Action::Allow);
        m.observe(id, Some("u"), "hi", ts, None, &mut v, &c);
        assert_eq!(v.action, want, "message {id}");
    }
    assert_eq!(m.summary("s").blocked_by.get("slow_mode"), Some(&1));
}

#[test]
fn degraded_verdicts_are_counted_per_stream_with_the_time_of_the_last() {
    let mut m = StreamModeration::default();
    assert_eq!(m.degraded(), Degraded::default());
    m.over_budget("a", None, "text", 5, Action::Allow);
    m.over_budget("b", None, "text", 6, Action::Hold);
    let d = m.summary("s").degraded;
    assert_eq!(d.total, 2);
    assert!(d.last_at.is_some_and(|t| t > 0));
    assert_eq!(m.held(false).len(), 1, "only the fail-closed one is held");
}

#[test]
fn purchase_intents_are_counted_per_product_and_minute() {
    let mut m = StreamModeration::default();
    let c = ClassifyConfig::default();
    for (ts, p) in [(60_000, Some("p1")), (61_000, Some("p1")), (125_000, Some("p2")), (126_000, None)] {
        let mut v = verdict(&[Label::PurchaseIntent], [0.0, 0.9, 0.0, 0.0], Action::Allow);
        m.observe("x", None, "ポチった", ts, p, &mut v, &c);
    }
    let s = m.summary("s");
    assert_eq!(s.intents.get("p1"), Some(&2));
    assert_eq!(s.ticker.len(), 2);
    assert_eq!(s.ticker[1].products.get(""), Some(&1));
}

#[test]
fn held_messages_are_decided_once_and_recorded() {
    let mut m = StreamModeration::default();
    m.over_budget("m9", None, "text", 5, Action::Hold);
    let h = m.decide("m9", true, "alice", 10).unwrap();
    assert_eq!((h.state, h.decided_by.as_deref()), (HeldState::Approved, Some("alice")));
    assert!(m.held(false).is_empty());
    assert!(m.decide("nope", true, "alice", 10).is_none());
}

#[test]
fn the_audit_log_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.audit.jsonl");
    let a = Audit::open(Some(path.clone()));
    a.record(AuditEntry {
        at: 1,
        who: "alice".into(),
        action: "dictionary.add".into(),
        stream: None,
        detail: serde_json::json!({"term": "x"}),
    })
    .unwrap();
    let b = Audit::open(Some(path));
    assert_eq!(b.last(10)[0].who, "alice");
    assert_eq!(audit_path_for(Path::new("/d/kotae.db")), Some(PathBuf::from("/d/kotae.audit.jsonl")));
}

#[test]
fn idle_streams_are_forgotten_unless_a_moderator_needs_them() {
    let m = Moderation::new(Audit::open(None));
    m.stream("kept").lock().unwrap().settings.slow_mode_seconds = 5;
    for i in 0..MAX_STREAMS - 1 {
        m.stream(&format!("s{i}")).lock().unwrap().touched = 0;
    }
    m.stream("new");
    assert_eq!(m.streams().len(), 2, "{:?}", m.streams());
    assert!(m.streams().contains(&"kept".to_string()));
}

#[test]
fn reads_do_not_create_streams_and_changes_stop_at_the_cap() {
    let m = Moderation::new(Audit::open(None));
    for i in 0..5000 {
        assert!(m.get(&format!("r{i}")).is_none());
    }
    assert!(m.streams().is_empty(), "reads leave nothing behind");
    for i in 0..MAX_STREAMS {
        assert!(m.stream_for_change(&format!("s{i}")).is_some());
    }
    assert!(m.stream_for_change("one-more").is_none(), "no room: recently used and kept");
    for i in 0..3 * MAX_STREAMS {
        m.stream(&format!("t{i}"));
    }
    assert_eq!(m.streams().len(), HARD_MAX_STREAMS, "messages' streams are bounded too");
}

#[test]
fn settings_reject_impossible_values() {
    let s = StreamSettings { hold_at: Some(0.9), block_at: Some(0.5), slow_mode_seconds: 7200, ..Default::default() };
    assert_eq!(s.problems().len(), 2);
    let s = StreamSettings { hold_at: Some(1.5), ..Default::default() };
    assert_eq!(s.problems().len(), 1);
}
