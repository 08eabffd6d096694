//! Quality gates: leave-one-writer-out F1 on the independent writers' lines, the held-out test
//! split (never used for tuning or training, but written by the same writers as the dev split),
//! and the clustering rates measured on the paraphrase fixtures.

use std::path::Path;

use kotae::commands::eval::{evaluate, read_labelled};
use kotae::pipeline::{Engine, Meta, PipelineConfig};

fn engine() -> std::sync::Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: root.join("dictionaries/ja"), ..PipelineConfig::default() };
    Engine::new(config).expect("engine")
}

/// The labelled files of the independent writers (`fixtures/labelled/writers/w-*.jsonl`).
fn writer_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/labelled/writers");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Leave-one-writer-out on the independent writers and the project's dev split: each writer's
/// lines predicted by a model trained on the others, as `kotae train --cv-by writer` reports it.
#[test]
fn leave_one_writer_out_meets_the_targets() {
    use kotae::commands::train::{cross_validate_by_writer, featurize};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("fixtures/labelled/dev.jsonl")];
    files.extend(writer_files());
    let rows = kotae::commands::eval::read_labelled_files(&files).unwrap();
    let config = PipelineConfig { dictionaries: root.join("dictionaries/ja"), ..PipelineConfig::default() };
    let engine = Engine::without_model(config).expect("engine");
    let examples = featurize(&engine, &rows);
    let report = cross_validate_by_writer(&engine, &rows, &examples, &Default::default());
    println!("{}", report.to_table(0));
    for label in ["question", "purchase_intent", "spam", "abuse"] {
        let f1 = report.labels[label].f1;
        let worst = &report.worst.as_ref().unwrap()[label];
        assert!(f1 >= 0.92, "{label}: leave-one-writer-out F1 {f1:.3}");
        assert!(worst.f1 >= 0.85, "{label}: worst writer {} at {:.3}", worst.writer, worst.f1);
    }
}

#[test]
fn the_independent_writers_are_enough_and_each_wrote_hard_negatives() {
    let rows = kotae::commands::eval::read_labelled_files(&writer_files()).unwrap();
    assert!(rows.len() >= 5000, "{} lines", rows.len());
    let mut writers: Vec<&str> = rows.iter().map(|r| r.writer()).collect();
    writers.sort_unstable();
    writers.dedup();
    assert!(writers.len() >= 6, "{writers:?}");
    for w in writers {
        let mine: Vec<_> = rows.iter().filter(|r| r.writer() == w).collect();
        let mut texts: Vec<&str> = mine.iter().map(|r| r.text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), mine.len(), "{w}: every line differs");
        let categories: std::collections::BTreeSet<_> = mine.iter().filter_map(|r| r.abuse).collect();
        assert_eq!(categories.len(), 6, "{w}: abuse of every category");
    }
    let body: String = writer_files().iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let hard = body.lines().filter(|l| l.contains("\"hard\":")).count();
    assert!(hard >= 700, "{hard} hard negatives");
}

/// The old test split: written by the same writers as the dev split the model also learns from,
/// so it measures less than leave-one-writer-out does.
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
            a.analyze(text).ok().and_then(|x| state.process(Meta { user: Some(user), ts: 0 }, x).cluster.map(|c| c.id))
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
