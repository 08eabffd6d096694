//! Quality gates: leave-one-writer-out F1 on the independent writers' lines, the held-out test
//! split (never used for tuning or training, but written by the same writers as the dev split),
//! and the clustering rates measured on the paraphrase fixtures.

use std::path::Path;

use kotae::commands::eval::{evaluate, read_labelled};
use kotae::commands::eval_stream::{ClusterSet, GoldStream, score_clusters, score_stream};
use kotae::pipeline::{Engine, PipelineConfig};

fn engine() -> std::sync::Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
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
    let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
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

/// Scores a gold stream of `fixtures/streams/eval` through the stateful pipeline.
fn stream_score(name: &str) -> kotae::commands::eval_stream::StreamScore {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gold = GoldStream::load(&root.join(format!("fixtures/streams/eval/{name}.jsonl"))).unwrap();
    let (score, _) = score_stream(&engine(), &kotae::queue::RankConfig::default(), &gold);
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
    let floors = [
        ("apparel", 0.66),
        ("kids", 0.58),
        ("interior", 0.55),
        ("outdoor", 0.64),
        ("food", 0.42),
        ("cosmetics", 0.70),
        ("appliance", 0.56),
        ("jewelry", 0.58),
    ];
    for (name, floor) in floors {
        let s = stream_score(name);
        assert!(s.answered_once >= floor, "{name}: answered once {} under {floor}", s.answered_once);
        assert_eq!(s.on_screen_top3, 1.0, "{name}: the on-screen product's most-asked question is in the first three");
        assert!(s.items_per_question <= 1.6, "{name}: {} items per question", s.items_per_question);
        assert!(s.noise_share <= 0.12, "{name}: {} of the items hold no question", s.noise_share);
    }
}

#[test]
fn question_identity_on_cluster_sets_does_not_regress() {
    for (path, together, apart) in [
        ("fixtures/clusters/eval/a/clusters.jsonl", 0.50, 0.80),
        // Apart 0.717 before a question naming nothing any cluster names could find its
        // cluster by what it asks about (0.696: one more of the 46 pairs merges; together
        // 0.549 → 0.629), and 0.674 with the attribute model and associations learned from 47
        // writers rather than 31 (one more pair merges; together 0.615 → 0.630).
        ("fixtures/clusters/eval/b/clusters.jsonl", 0.60, 0.67),
        ("fixtures/clusters/eval/c/clusters.jsonl", 0.48, 0.66),
        // Apart 0.857 → 0.821 with the models learned from 47 writers (two of the 56 pairs),
        // and 0.804 once a question is also compared with the recent clusters that read like
        // it (one more pair; together on sets a–c 0.540–0.614 → 0.551–0.663).
        ("fixtures/clusters/paraphrases.jsonl", 0.90, 0.80),
    ] {
        let (t, a) = cluster_score(path);
        assert!(t >= together, "{path}: paraphrase pairs together {t} under {together}");
        assert!(a >= apart, "{path}: near-miss pairs apart {a} under {apart}");
    }
}

/// The gold streams that have a second writer's file `NAME{suffix}` beside them: (name, path, gold).
fn streams_with(suffix: &str) -> Vec<(String, std::path::PathBuf, GoldStream)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join("fixtures/streams/eval")).unwrap() {
        let path = entry.unwrap().path();
        if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(suffix)) {
            let stream = path.with_file_name(format!("{name}.jsonl"));
            let gold = GoldStream::load(&stream).unwrap();
            found.push((name.to_string(), stream, gold));
        }
    }
    found
}

/// The second writers' keys (`fixtures/streams/eval/NAME.second.tsv`, the agreement between two
/// people that `kotae eval-stream --second-writer` reports) key every question line of their stream
/// once, and nothing else.
#[test]
fn second_writers_key_every_question_line_once() {
    use kotae::commands::eval_stream::{agreement, load_second_keys};
    let streams = streams_with(".second.tsv");
    assert!(streams.len() >= 7, "{} streams have a second writer's keys", streams.len());
    for (name, stream, gold) in streams {
        let second = load_second_keys(&stream, None).unwrap();
        let questions: std::collections::HashSet<&str> =
            gold.lines.iter().filter(|l| l.q.is_some()).map(|l| l.id.as_str()).collect();
        assert_eq!(second.len(), questions.len(), "{name}: one key per question line");
        assert!(second.keys().all(|id| questions.contains(id.as_str())), "{name}: keys only question lines");
        assert!(
            second.values().all(|k| k.split_once('.').is_some_and(|(s, n)| !s.is_empty() && !n.is_empty())),
            "{name}: every key is SCOPE.name"
        );
        let (s, _) = agreement(&gold, &second).unwrap();
        println!("{name}: second writer's keys as the queue, answered once {}", s.answered_once);
    }
}

/// The second writers' question marks (`NAME.second-questions.tsv`) mark every line of their
/// stream once, yes or no.
#[test]
fn second_writers_mark_every_line_once() {
    use kotae::commands::eval_stream::{load_second_questions, question_lines};
    let streams = streams_with(".second-questions.tsv");
    assert!(streams.len() >= 8, "{} streams have a second writer's question marks", streams.len());
    for (name, stream, gold) in streams {
        let marks = load_second_questions(&stream, None).unwrap().expect("the file is there");
        assert_eq!(marks.len(), gold.lines.len(), "{name}: one mark per line");
        let (taken, right, all) = question_lines(&gold, &marks).unwrap();
        println!("{name}: marked {taken}, {right} of {all} question lines");
    }
}

/// The second writers' files for the two outside streams (kept in `../shared`, not here) read
/// back whole: a key for each of their question lines, a mark for each of their lines.
#[test]
fn second_writers_of_the_outside_streams_read_back_whole() {
    use kotae::commands::eval_stream::{load_second_keys, load_second_questions};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/streams/validation");
    // The streams themselves need not be here: only their names are used.
    for (name, questions, lines) in [("s4", 140, 514), ("s5", 113, 502)] {
        let stream = Path::new("../shared/validation/streams").join(format!("{name}.jsonl"));
        let keys = load_second_keys(&stream, Some(&dir)).unwrap();
        assert_eq!(keys.len(), questions, "{name}: keys");
        let marks = load_second_questions(&stream, Some(&dir)).unwrap().expect("the marks are there");
        assert_eq!(marks.len(), lines, "{name}: marks");
    }
}

/// `kotae eval-stream --second-writer` on one stream: the joint count adds up to the stream's
/// questions, and the question lines counted are the stream's.
#[test]
fn the_second_writer_report_adds_up() {
    use kotae::commands::eval_stream::second_writer_report;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = root.join("fixtures/streams/eval/kids.jsonl");
    let (engine, rank) = (engine(), kotae::queue::RankConfig::default());
    let json: serde_json::Value =
        serde_json::from_str(&second_writer_report(&engine, &rank, &file, None, true).unwrap()).unwrap();
    let by = &json["answered_once_by"];
    let sum: u64 =
        ["both", "queue_only", "second_writer_only", "neither"].iter().map(|k| by[k].as_u64().unwrap()).sum();
    assert_eq!(sum, json["queue"]["distinct_questions"].as_u64().unwrap());
    let gold = GoldStream::load(&file).unwrap();
    let questions = gold.lines.iter().filter(|l| l.q.is_some()).count() as u64;
    for who in ["queue", "second_writer"] {
        assert_eq!(json["question_lines"][who]["of"].as_u64(), Some(questions), "{who}");
    }
    let text = second_writer_report(&engine, &rank, &file, None, false).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("the second writer marked"), "{text}");
}
