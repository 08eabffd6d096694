//! Quality gates on the held-out test split (never used for tuning or training): the F1 floors
//! the product promises, and the clustering rates measured on the paraphrase fixtures.

use std::path::Path;

use kotae::commands::eval::{evaluate, read_labelled};
use kotae::commands::eval_stream::{ClusterSet, GoldStream, score_clusters, score_stream};
use kotae::pipeline::{Engine, PipelineConfig};

fn engine() -> std::sync::Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: root.join("dictionaries/ja"), ..PipelineConfig::default() };
    Engine::new(config).expect("engine")
}

#[test]
fn f1_on_the_held_out_test_split_meets_the_floors() {
    let rows = read_labelled(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/labelled/test.jsonl")).unwrap();
    assert!(rows.len() >= 600);
    let report = evaluate(&engine(), &rows);
    let f1 = |l: &str| report.labels[l].f1;
    println!("{}", report.to_table(0));
    assert!(f1("question") >= 0.92, "question F1 {}", f1("question"));
    assert!(f1("purchase_intent") >= 0.90, "purchase_intent F1 {}", f1("purchase_intent"));
    assert!(f1("spam") >= 0.90, "spam F1 {}", f1("spam"));
    assert!(f1("abuse") >= 0.90, "abuse F1 {}", f1("abuse"));
}

#[test]
fn fixtures_are_distinct_and_large_enough() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dev = read_labelled(&root.join("fixtures/labelled/dev.jsonl")).unwrap();
    let test = read_labelled(&root.join("fixtures/labelled/test.jsonl")).unwrap();
    let mut texts: Vec<&str> = dev.iter().chain(&test).map(|r| r.text.as_str()).collect();
    assert!(texts.len() >= 1500);
    texts.sort_unstable();
    let before = texts.len();
    texts.dedup();
    assert_eq!(texts.len(), before, "every labelled line differs");
}

/// Scores a gold stream of `fixtures/streams/eval` through the stateful pipeline.
fn stream_score(name: &str) -> kotae::commands::eval_stream::StreamScore {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gold = GoldStream::load(&root.join(format!("fixtures/streams/eval/{name}.jsonl"))).unwrap();
    let (score, _) = score_stream(&engine(), &kotae::rank::RankConfig::default(), &gold);
    println!("{}", kotae::commands::eval_stream::format_score(&score));
    score
}

/// Scores a cluster set: (paraphrase pairs together, near-miss pairs apart).
fn cluster_score(path: &str) -> (f64, f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let set = ClusterSet::load(&root.join(path), None).unwrap();
    let s = score_clusters(&engine(), &set, false);
    println!("{path}: together {:.3}, apart {:.3}", s.together, s.apart);
    (s.together, s.apart)
}

/// Regression floors for question identity, a little under the figures measured when they were
/// set (the README has the figures and the targets, which are higher). Streams and cluster sets
/// by writers who never saw the training data; the report-only ones were never tuned on.
#[test]
fn question_identity_on_streams_does_not_regress() {
    for (name, floor) in [("apparel", 0.50), ("kids", 0.40), ("food", 0.45), ("cosmetics", 0.45), ("appliance", 0.45)] {
        let s = stream_score(name);
        assert!(s.answered_once >= floor, "{name}: answered once {} under {floor}", s.answered_once);
        assert_eq!(s.on_screen_top3, 1.0, "{name}: the on-screen product's most-asked question is in the first three");
        assert!(s.items_per_question <= 1.6, "{name}: {} items per question", s.items_per_question);
    }
}

#[test]
fn question_identity_on_cluster_sets_does_not_regress() {
    for (path, together, apart) in [
        ("fixtures/clusters/eval/a/clusters.jsonl", 0.35, 0.80),
        ("fixtures/clusters/eval/b/clusters.jsonl", 0.35, 0.60),
        ("fixtures/clusters/eval/c/clusters.jsonl", 0.30, 0.60),
        ("fixtures/clusters/paraphrases.jsonl", 0.90, 0.75),
    ] {
        let (t, a) = cluster_score(path);
        assert!(t >= together, "{path}: paraphrase pairs together {t} under {together}");
        assert!(a >= apart, "{path}: near-miss pairs apart {a} under {apart}");
    }
}
