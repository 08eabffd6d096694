//! Tests of the dedupe stage.

use super::*;

fn sig(concepts: &[&str], slots: &[(&str, &str)], words: &[&str]) -> Frame {
    let mut s = Frame {
        concepts: concepts.iter().map(|c| hash_str(c)).collect(),
        slots: slots.iter().map(|(f, v)| [hash_str(f), hash_str(v)]).collect(),
        nouns: words.iter().map(|w| hash_str(w)).collect(),
        ..Frame::default()
    };
    super::super::frame::finish(&mut s);
    s
}

fn dedupe(config: &DedupeConfig) -> Dedupe {
    Dedupe::new(config, Arc::new(IdentityModel::default()))
}

fn ask<'a>(user: &'a str, scope: u64, frame: &'a Frame) -> DedupeInput<'a> {
    DedupeInput { user: Some(user), scope, frame: Some(frame), is_question: true, ..Default::default() }
}

#[test]
fn a_question_never_joins_a_cluster_of_another_scope() {
    let mut d = dedupe(&DedupeConfig::default());
    let price = sig(&["price_q"], &[], &["値段"]);
    let p1 = d.process(&ask("a", 11, &price)).cluster.unwrap();
    let p2 = d.process(&ask("b", 22, &price)).cluster.unwrap();
    let p1_again = d.process(&ask("c", 11, &price)).cluster.unwrap();
    assert_ne!(p1.id, p2.id, "the same words about two products are two questions");
    assert_eq!(p1.id, p1_again.id);
}

#[test]
fn slot_disagreement_separates() {
    let mut d = dedupe(&DedupeConfig::default());
    let black = sig(&["stock"], &[("color", "black"), ("size", "m")], &[]);
    let white = sig(&["stock"], &[("color", "white"), ("size", "m")], &[]);
    let a = d.process(&ask("a", 1, &black)).cluster.unwrap();
    let b = d.process(&ask("b", 1, &white)).cluster.unwrap();
    let c = d.process(&ask("c", 1, &black)).cluster.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.id, c.id);
}

#[test]
fn repeats_by_one_user_flood_but_questions_do_not() {
    let mut d = dedupe(&DedupeConfig::default());
    let input = DedupeInput { user: Some("u1"), ts: 0, key_hash: 7, key_chars: 4, ..Default::default() };
    let outs: Vec<_> = (0..3).map(|_| d.process(&input)).collect();
    assert_eq!(outs.iter().map(|o| o.repeats).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(outs[2].repeat_flood && !outs[1].repeat_flood);
    let q = DedupeInput { is_question: true, key_hash: 8, ..input };
    assert!((0..4).all(|_| !d.process(&q).repeat_flood));
}

#[test]
fn copypasta_needs_distinct_users() {
    let mut d = dedupe(&DedupeConfig::default());
    let mut last = DedupeOutcome::default();
    for (i, user) in ["a", "b", "c"].iter().enumerate() {
        last = d.process(&DedupeInput {
            user: Some(user),
            ts: i as u64,
            key_hash: 99,
            key_chars: 20,
            ..Default::default()
        });
    }
    assert!(last.copypasta);
}

#[test]
fn same_asker_counts_once_in_a_cluster() {
    let mut d = dedupe(&DedupeConfig::default());
    let s = sig(&["shipping"], &[], &["送料"]);
    let a = d.process(&DedupeInput { user: Some("a"), frame: Some(&s), is_question: true, ..Default::default() });
    let b = d.process(&DedupeInput { user: Some("a"), frame: Some(&s), is_question: true, ..Default::default() });
    let c = d.process(&DedupeInput { user: Some("b"), frame: Some(&s), is_question: true, ..Default::default() });
    assert!(a.cluster.unwrap().opened);
    assert_eq!(b.cluster.unwrap().askers, 1);
    assert_eq!(c.cluster.unwrap().askers, 2);
    assert_eq!(a.cluster.unwrap().id, c.cluster.unwrap().id);
}

#[test]
fn packed_members_read_back_as_pushed() {
    let a = sig(&["stock", "size"], &[("color", "black")], &["ワンピース"]);
    let mut b = sig(&[], &[("num", "3"), ("size", "m")], &[]);
    b.preds = vec![5, 6];
    b.grams = vec![1, 2, 3];
    b.ask = super::super::frame::Ask::Show;
    b.attribute = crate::pipeline::attribute::Attribute { id: 41, p: 0.83, ..Default::default() };
    let mut c = a.clone();
    c.assoc = vec![7, 9];
    let mut d = c.clone();
    d.attribute = crate::pipeline::attribute::Attribute { id: 3, p: 0.5, second: 12, second_p: 0.25 };
    let mut members = Members::default();
    members.push(a.view());
    members.push(Frame::default().view());
    members.push(b.view());
    members.push(c.view());
    members.push(d.view());
    members.push(a.view());
    let back: Vec<FrameView<'_>> = members.iter().collect();
    assert_eq!(back, [a.view(), Frame::default().view(), b.view(), c.view(), d.view(), a.view()]);
    // Without an attribute a member packs as before attributes were (no word for it), so a
    // packing written then reads the same now; with one, it takes one word more.
    let words = |f: &Frame| {
        let mut m = Members::default();
        m.push(f.view());
        m.words().len()
    };
    let mut plain = b.clone();
    plain.attribute = Default::default();
    assert_eq!(words(&plain), 1 + 2 + 3 + 2 * 2);
    assert_eq!(words(&b), words(&plain) + 1);
    assert_eq!(words(&c), words(&a) + 1 + 2);
    // A runner-up attribute takes one word more again.
    assert_eq!(words(&d), words(&c) + 1);
}

#[test]
fn a_busy_stream_keeps_at_most_window_messages_and_counts_what_left_early() {
    let cap = 100;
    let config = DedupeConfig { window_messages: NonZeroUsize::new(cap).unwrap(), ..Default::default() };
    let mut d = dedupe(&config);
    let messages = 20_000u64;
    for i in 0..messages {
        let user = format!("u{}", i % 700);
        // All within window_ms: only the count bounds the window.
        let input = DedupeInput { user: Some(&user), ts: i, key_hash: i % 3000, key_chars: 20, ..Default::default() };
        d.process(&input);
        let size = d.window_size();
        // The log holds the bound; users and texts also those of the last purge interval.
        let most = cap + cap / 4 + 1;
        assert!(size.messages <= cap, "{size:?} after {i}");
        assert!(size.users <= most && size.texts <= most && size.sightings <= most, "{size:?} after {i}");
    }
    assert_eq!(d.take_evictions(), Evictions { window: messages - cap as u64, clusters: 0 });
    assert_eq!(d.take_evictions(), Evictions::default(), "taken once");
}

#[test]
fn a_repeat_beyond_window_messages_is_forgotten() {
    let run = |window_messages: usize| {
        let config =
            DedupeConfig { window_messages: NonZeroUsize::new(window_messages).unwrap(), ..Default::default() };
        let mut d = dedupe(&config);
        let says =
            |user, key_hash, ts| DedupeInput { user: Some(user), ts, key_hash, key_chars: 20, ..Default::default() };
        d.process(&says("a", 1, 0));
        d.process(&says("b", 2, 1));
        d.process(&says("c", 3, 2));
        let again = d.process(&says("a", 1, 3));
        (again.repeats, d.take_evictions().window)
    };
    // Each message leaves the log once `window_messages` newer ones were seen, and is counted.
    assert_eq!(run(3), (2, 1), "three messages back is inside a window of three");
    assert_eq!(run(2), (1, 2), "and outside a window of two");
}

#[test]
fn clusters_over_max_clusters_are_forgotten_and_counted() {
    let config = DedupeConfig { max_clusters: 2, ..Default::default() };
    let mut d = dedupe(&config);
    for (i, topic) in ["shipping", "price", "stock"].into_iter().enumerate() {
        let s = sig(&[topic], &[], &[]);
        let q = DedupeInput { user: Some("a"), ts: i as u64, frame: Some(&s), is_question: true, ..Default::default() };
        assert!(d.process(&q).cluster.unwrap().opened);
    }
    assert_eq!(d.cluster_count(), 2);
    assert_eq!(d.take_evictions().clusters, 1);
}

#[test]
fn at_max_clusters_the_least_recently_asked_is_forgotten() {
    // Twelve questions on different topics asked over and over in a scrambled order, times
    // sometimes repeated and sometimes going back, against a stream that remembers five: the
    // cluster forgotten is always the one asked least recently (of two asked at the same time,
    // the older), as a scan of them all would pick.
    let config = DedupeConfig { max_clusters: 5, ..Default::default() };
    let mut d = dedupe(&config);
    let topics: Vec<String> = (0..12).map(|i| format!("topic{i}")).collect();
    let frames: Vec<Frame> = topics.iter().map(|t| sig(&[t.as_str()], &[], &[])).collect();
    let mut expected: std::collections::BTreeMap<u32, (usize, u64)> = Default::default();
    let (mut x, mut ts, mut evicted) = (7u64, 1_000u64, 0u64);
    for _ in 0..2_000 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let topic = (x >> 33) as usize % frames.len();
        ts = match (x >> 20) % 8 {
            0 => ts,
            1 => ts - 3,
            _ => ts + 1 + (x >> 40) % 5,
        };
        let joined = expected.iter().find(|(_, (t, _))| *t == topic).map(|(id, _)| *id);
        if joined.is_none() && expected.len() == config.max_clusters {
            let (&oldest, _) = expected.iter().min_by_key(|(id, (_, at))| (*at, **id)).unwrap();
            expected.remove(&oldest);
            evicted += 1;
        }
        let got = d.process(&DedupeInput { ts, ..ask("a", 1, &frames[topic]) }).cluster.unwrap();
        assert_eq!(got.opened, joined.is_none());
        if let Some(id) = joined {
            assert_eq!(got.id, id);
        }
        expected.insert(got.id, (topic, ts));
        let mut ids: Vec<u32> = d.clusters.keys().copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, expected.keys().copied().collect::<Vec<_>>());
    }
    assert!(evicted > 100, "the bound was reached often ({evicted})");
    assert_eq!(d.take_evictions().clusters, evicted);
    assert!(d.by_age.len() <= 2 * config.max_clusters + 64, "outdated entries are dropped");
}

/// A frame naming `word` whose learned vector points along dimension `dim` (of 64).
fn along(word: &str, dim: usize) -> Frame {
    let mut f = sig(&[], &[], &[word]);
    f.vector = vec![0; 8];
    f.vector[dim / 8] = 127 << (8 * (dim % 8));
    f
}

/// A pair model that takes two questions reading alike for one, whatever else they share.
fn trusting_vectors() -> Arc<IdentityModel> {
    let mut m = IdentityModel::default();
    let similar = super::super::identity::FEATURES.iter().position(|f| *f == "similar").unwrap();
    m.weights[similar] = 8.0;
    Arc::new(m)
}

#[test]
fn a_recent_cluster_that_reads_alike_is_compared_though_it_shares_no_word() {
    let mut d = Dedupe::new(&DedupeConfig::default(), trusting_vectors());
    let (leak, leaks, colors) = (along("汁もれ", 0), along("漏れる", 0), along("色", 9));
    let first = d.process(&ask("a", 1, &leak)).cluster.unwrap();
    let alike = d.process(&ask("b", 1, &leaks)).cluster.unwrap();
    assert_eq!(alike.id, first.id, "no key in common, the same reading: one question");
    assert!(!alike.opened);
    let other = d.process(&ask("c", 1, &colors)).cluster.unwrap();
    assert!(other.opened, "a question reading otherwise is not compared");
    let elsewhere = d.process(&ask("d", 2, &leaks)).cluster.unwrap();
    assert!(elsewhere.opened, "nor is a cluster of another scope");
}

#[test]
fn only_the_latest_clusters_of_a_scope_are_looked_at_by_reading() {
    let mut d = Dedupe::new(&DedupeConfig::default(), trusting_vectors());
    let leak = along("汁もれ", 0);
    let first = d.process(&ask("a", 1, &leak)).cluster.unwrap();
    // RECENT questions about other things since: the first is no longer among the latest.
    for i in 0..RECENT {
        let f = along(&format!("w{i}"), 10 + i);
        assert!(d.process(&ask("b", 1, &f)).cluster.unwrap().opened);
    }
    let late = d.process(&ask("c", 1, &along("漏れる", 0))).cluster.unwrap();
    assert_ne!(late.id, first.id);
    // A question naming what it named still finds it through the index.
    assert_eq!(d.process(&ask("d", 1, &leak)).cluster.unwrap().id, first.id);
}

#[test]
fn the_recent_clusters_survive_a_snapshot_and_are_rebuilt_from_an_older_one() {
    let mut d = Dedupe::new(&DedupeConfig::default(), trusting_vectors());
    let first = d.process(&ask("a", 1, &along("汁もれ", 0))).cluster.unwrap();
    d.process(&ask("b", 1, &along("色", 9)));
    let state = d.export();
    let mut older = serde_json::to_value(&state).unwrap();
    older.as_object_mut().unwrap().remove("recent");
    for state in [state, serde_json::from_value(older).unwrap()] {
        let mut back = Dedupe::new(&DedupeConfig::default(), trusting_vectors());
        back.import(state);
        assert_eq!(back.export().recent, d.export().recent);
        assert_eq!(back.process(&ask("c", 1, &along("漏れる", 0))).cluster.unwrap().id, first.id);
    }
}
