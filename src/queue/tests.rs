//! The host queue's ranking, trimming and answered-again behaviour.

use super::*;

fn ask(q: &mut Queue, cluster: u32, askers: u32, topics: &[String], ts: u64) {
    q.observe(&Asked {
        cluster,
        askers,
        user: None,
        text: "?",
        ts,
        topics,
        product: None,
        shop: false,
        paid: None,
        intent: false,
    });
}

#[test]
fn more_askers_and_blocking_topics_rank_higher() {
    let mut q = Queue::new(&RankConfig::default());
    ask(&mut q, 1, 1, &[], 0);
    ask(&mut q, 2, 5, &[], 0);
    ask(&mut q, 3, 1, &["size".to_string()], 0);
    let ids: Vec<String> = q.ranked(0).into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["q2", "q3", "q1"]);
}

#[test]
fn answered_questions_leave_and_are_noticed_when_asked_again() {
    let mut q = Queue::new(&RankConfig::default());
    ask(&mut q, 1, 1, &[], 0);
    assert!(q.set_state(1, QuestionState::Answered(10)));
    assert!(q.ranked(20).is_empty());
    ask(&mut q, 1, 2, &[], 30);
    assert_eq!(q.get(1).unwrap().asked_after_answer, 1);
    assert!(q.ranked(40).is_empty());
}

#[test]
fn a_full_queue_drops_closed_questions_before_open_ones() {
    let mut q = Queue::new(&RankConfig::default());
    ask(&mut q, 1, 1, &[], 0);
    ask(&mut q, 2, 5, &[], 0);
    ask(&mut q, 3, 1, &["size".to_string()], 0);
    assert_eq!(q.trim_candidate(0, 0), Some(1), "lowest-ranked open question");
    assert_eq!(q.trim_candidate(0, 1), Some(3), "the question just asked stays");
    q.set_state(2, QuestionState::Answered(5));
    assert_eq!(q.trim_candidate(0, 0), Some(2), "closed questions go first");
    q.set_state(2, QuestionState::Pinned);
    q.set_state(1, QuestionState::Pinned);
    q.set_state(3, QuestionState::Pinned);
    assert_eq!(q.trim_candidate(0, 0), None, "pinned questions stay");
    q.set_state(1, QuestionState::Open);
    q.set_state(3, QuestionState::Dismissed(1));
    assert_eq!(q.trim_candidates(0, 0, 5), [3, 1], "closed first, then open, never pinned");
}

#[test]
fn the_why_names_the_topic_most_asks_named() {
    let mut q = Queue::new(&RankConfig::default());
    let (price, skin) = (["price".to_string()], ["skin".to_string()]);
    ask(&mut q, 1, 1, &price, 0);
    ask(&mut q, 1, 2, &skin, 0);
    ask(&mut q, 1, 3, &price, 0);
    assert!(q.ranked(0)[0].why.starts_with("×3人・価格"), "{}", q.ranked(0)[0].why);
}

#[test]
fn paid_asks_rank_by_their_value_in_yen_and_show_their_own_currency() {
    let mut q = Queue::new(&RankConfig::default());
    let usd = Money::new(100, crate::money::Currency::new("USD").unwrap(), 2).unwrap();
    let ask = |q: &mut Queue, cluster, paid| {
        q.observe(&Asked {
            cluster,
            askers: 1,
            user: None,
            text: "?",
            ts: 0,
            topics: &[],
            product: None,
            shop: false,
            paid,
            intent: false,
        });
    };
    ask(&mut q, 1, Some(Money::yen(100)));
    ask(&mut q, 2, Some(usd));
    ask(&mut q, 2, Some(Money::yen(500)));
    ask(&mut q, 3, None);
    let ranked = q.ranked(0);
    let ids: Vec<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["q2", "q1", "q3"], "US$1.00 + ¥500 ≈ ¥650 > ¥100 > nothing");
    assert_eq!(ranked[0].why, "×1人・投げ銭 US$1.00＋¥500・0秒待ち");
    assert_eq!(ranked[0].question.paid, 650);
    assert_eq!(ranked[1].why, "×1人・投げ銭 ¥100・0秒待ち");
    q.set_locale(Locale::En);
    let ranked = q.ranked(0);
    assert_eq!(ranked[0].why, "×1 asked · paid US$1.00 + ¥500 · waiting 0s");
    assert_eq!(ranked[1].why, "×1 asked · paid ¥100 · waiting 0s");
}

#[test]
fn the_on_screen_products_most_asked_question_is_always_in_the_first_three() {
    let mut q = Queue::new(&RankConfig::default());
    let on = |q: &mut Queue, cluster: u32, askers: u32, product: &str, topics: &[String]| {
        q.observe(&Asked {
            cluster,
            askers,
            user: None,
            text: "?",
            ts: 0,
            topics,
            product: Some(product),
            shop: false,
            paid: None,
            intent: false,
        });
    };
    let size = ["size".to_string()];
    for c in 1..=5 {
        on(&mut q, c, 6, "p1", &size);
    }
    on(&mut q, 6, 1, "p5", &[]);
    on(&mut q, 7, 2, "p5", &[]);
    q.current_product = Some("p5".into());
    let ranked = q.ranked(0);
    let ids: Vec<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids[2], "q7", "the most asked about p5, moved up: {ids:?}");
    assert!(ranked[2].why.starts_with("紹介中で最多"), "{}", ranked[2].why);
    assert_eq!(&ids[..2], ["q1", "q2"], "the others keep their order");
    q.current_product = Some("p1".into());
    let ranked = q.ranked(0);
    let ids: Vec<&str> = ranked.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(&ids[..3], ["q1", "q2", "q3"], "already in view: nothing moves");
    assert!(!ranked[0].why.starts_with("紹介中で最多"), "{}", ranked[0].why);
}

#[test]
fn why_names_the_terms_in_the_locale() {
    let mut q = Queue::new(&RankConfig::default());
    ask(&mut q, 1, 7, &["size".to_string()], 0);
    q.current_product = Some("p1".into());
    q.get_mut(1).unwrap().product = Some("p1".into());
    assert_eq!(q.ranked(120_000)[0].why, "×7人・サイズ・紹介中・2分待ち");
    q.set_state(1, QuestionState::Pinned);
    assert_eq!(q.ranked(30_000)[0].why, "ピン留め・×7人・サイズ・紹介中・30秒待ち");
    q.set_locale(Locale::En);
    assert_eq!(q.ranked(120_000)[0].why, "pinned · ×7 asked · size · on screen · waiting 2m");
}
