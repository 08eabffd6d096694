//! The attribute model's training input: cluster sets with their tags beside them, read with
//! every problem named by file and line.

use std::path::Path;
use std::sync::Arc;

use kotae::commands::train_attributes::{self, Fit};
use kotae::pipeline::{Engine, PipelineConfig};

fn engine() -> Arc<Engine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = PipelineConfig { dictionaries: Some(root.join("dictionaries/ja")), ..PipelineConfig::default() };
    Engine::new(config).expect("engine")
}

fn set(dir: &Path, name: &str, clusters: &[(&str, &[&str])], tags: &str) -> std::path::PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let lines: Vec<String> = clusters
        .iter()
        .map(|(id, texts)| serde_json::json!({"cluster": id, "product": null, "texts": texts}).to_string())
        .collect();
    std::fs::write(d.join("clusters.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(d.join("attributes.jsonl"), tags).unwrap();
    d.join("clusters.jsonl")
}

#[test]
fn tags_are_checked_against_the_clusters_and_a_fit_reads_new_wordings() {
    let e = engine();
    let dir = tempfile::tempdir().unwrap();
    let clusters: &[(&str, &[&str])] = &[
        ("c1", &["送料いくらですか", "送料かかる？", "配送料は？"]),
        ("c2", &["洗濯機で洗えますか", "おうちで洗える？", "手洗いですか"]),
    ];
    let tags = "{\"cluster\":\"c1\",\"attribute\":\"shipping_fee\"}\n{\"cluster\":\"c2\",\"attribute\":\"washing\"}\n";
    let a = set(dir.path(), "a", clusters, tags);
    let b = set(dir.path(), "b", clusters, tags);

    let missing = set(dir.path(), "missing", clusters, "{\"cluster\":\"c1\",\"attribute\":\"shipping_fee\"}\n");
    let e1 = train_attributes::load(&e, &missing).err().unwrap();
    assert!(e1.contains("cluster 'c2' has no tag"), "{e1}");
    let unknown =
        set(dir.path(), "unknown", clusters, &format!("{tags}{{\"cluster\":\"c9\",\"attribute\":\"price\"}}\n"));
    let e2 = train_attributes::load(&e, &unknown).err().unwrap();
    assert!(e2.contains("attributes.jsonl:3: no cluster 'c9'"), "{e2}");

    let sets = vec![train_attributes::load(&e, &a).unwrap(), train_attributes::load(&e, &b).unwrap()];
    let classes = train_attributes::classes(&sets);
    assert_eq!(classes, ["shipping_fee", "washing"]);
    let fit = Fit { l2: 0.0001, epochs: 30, prune: 0.01 };
    let (report, accuracy) = train_attributes::cross_validate(&classes, &sets, fit);
    assert!(accuracy > 0.9, "{report}");
    let model = train_attributes::fit(&classes, &sets, fit);
    let names = |t: &str| {
        let (_, n) = e.analyzer().named_frame_of(t).unwrap();
        kotae::pipeline::attribute::feature_names(&n)
    };
    let p = model.probabilities(&names("送料って無料？"));
    assert!(p[0] > p[1], "{p:?}");
}
