//! Quality gates on the held-out test split (never used for tuning or training): the F1 floors
//! the product promises, and the clustering rates measured on the paraphrase fixtures.

use std::path::Path;

use kotae::commands::eval::{evaluate, read_labelled};
use kotae::pipeline::{Engine, Meta, PipelineConfig};

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

/// Clustering rates on a paraphrase file (one stream, clusters interleaved round-robin as in a
/// live chat) and a near-miss file (each pair its own stream): (pairs together, pairs apart).
fn clustering_rates(paraphrases: &str, near_misses: &str) -> (f64, f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = engine();
    let read = |p: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(root.join(p)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let para = read(paraphrases);
    let near = read(near_misses);
    let cluster_of =
        |state: &mut kotae::pipeline::StreamState, a: &mut kotae::pipeline::Analyzer, text: &str, user: &str| {
            a.analyze(text)
                .ok()
                .and_then(|x| state.process(Meta { user: Some(user), ts: 0, product: None }, x).cluster.map(|c| c.id))
        };
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    let mut order: Vec<usize> = (0..para.len()).collect();
    order.sort_by_key(|&i| (para[..i].iter().filter(|p| p["cluster"] == para[i]["cluster"]).count(), i));
    let mut ids = vec![None; para.len()];
    for &i in &order {
        ids[i] = cluster_of(&mut state, &mut analyzer, para[i]["text"].as_str().unwrap(), &format!("u{i}"));
    }
    let (mut same, mut together) = (0, 0);
    for i in 0..para.len() {
        for j in i + 1..para.len() {
            if para[i]["cluster"] == para[j]["cluster"] {
                same += 1;
                together += usize::from(ids[i].is_some() && ids[i] == ids[j]);
            }
        }
    }
    let apart = near
        .iter()
        .filter(|n| {
            let mut state = engine.stream_state();
            let a = cluster_of(&mut state, &mut analyzer, n["a"].as_str().unwrap(), "a");
            let b = cluster_of(&mut state, &mut analyzer, n["b"].as_str().unwrap(), "b");
            a.is_none() || a != b
        })
        .count();
    let rates = (together as f64 / same as f64, apart as f64 / near.len() as f64);
    println!(
        "{paraphrases}: pairs together {together}/{same} = {:.3}; near-miss apart {apart}/{} = {:.3}",
        rates.0,
        near.len(),
        rates.1
    );
    rates
}

/// The development cluster fixtures (used while writing the concept dictionaries): the targets.
#[test]
fn clustering_meets_the_targets_on_the_development_clusters() {
    let (together, apart) =
        clustering_rates("fixtures/clusters/paraphrases.jsonl", "fixtures/clusters/near_miss.jsonl");
    assert!(together >= 0.90, "paraphrase pairs together {together:.3}");
    assert!(apart >= 0.98, "near-miss pairs apart {apart:.3}");
}

/// Held-out clusters written afterwards and never used for tuning. Regression floors at today's
/// measured rates, far below the targets: clustering relies on the concept dictionary and does
/// not yet generalize to wordings it has not seen (see README).
#[test]
fn clustering_on_held_out_clusters_does_not_regress() {
    let (together, apart) =
        clustering_rates("fixtures/clusters/heldout_paraphrases.jsonl", "fixtures/clusters/heldout_near_miss.jsonl");
    assert!(together >= 0.40, "held-out paraphrase pairs together {together:.3}");
    assert!(apart >= 0.88, "held-out near-miss pairs apart {apart:.3}");
}
