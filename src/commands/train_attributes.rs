//! `kotae train-attributes`: fits the attribute model (what a question asks about) on
//! paraphrase clusters tagged by hand, and measures it leave-one-writer-out.
//!
//! Each cluster set is one writer's (`fixtures/clusters/train/tN/clusters.jsonl`), with
//! `attributes.jsonl` beside it tagging every cluster (`{"cluster","attribute"}`) from the
//! taxonomy of `fixtures/clusters/train/ATTRIBUTES.md`. Every text of a cluster is an example of
//! its attribute.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pipeline::Engine;
use crate::pipeline::attribute::{self, AttributeModel, Example};

use super::eval_stream::ClusterSet;

/// One writer's tagged texts.
pub struct Tagged {
    /// The cluster file, naming the writer.
    pub source: PathBuf,
    /// The attribute name and the feature names of every text.
    pub texts: Vec<(String, Vec<String>)>,
}

#[derive(serde::Deserialize)]
struct Tag {
    cluster: String,
    attribute: String,
}

/// Reads a cluster set and its `attributes.jsonl`, and frames every text. A cluster without a
/// tag, or a tag of a cluster the set does not have, is an error naming the file and line.
pub fn load(engine: &Arc<Engine>, path: &Path) -> Result<Tagged, String> {
    let set = ClusterSet::load(path, None)?;
    let tags_path = path.with_file_name("attributes.jsonl");
    let text = std::fs::read_to_string(&tags_path).map_err(|e| format!("{}: {e}", tags_path.display()))?;
    let mut tags: HashMap<String, String> = HashMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let tag: Tag = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", tags_path.display(), n + 1))?;
        if !set.clusters.iter().any(|c| c.id == tag.cluster) {
            return Err(format!(
                "{}:{}: no cluster '{}' in {}",
                tags_path.display(),
                n + 1,
                tag.cluster,
                path.display()
            ));
        }
        tags.insert(tag.cluster, tag.attribute);
    }
    let mut analyzer = engine.analyzer();
    let mut texts = Vec::new();
    for c in &set.clusters {
        let attribute =
            tags.get(&c.id).ok_or_else(|| format!("{}: cluster '{}' has no tag", tags_path.display(), c.id))?;
        for t in &c.texts {
            if let Some((_, names)) = analyzer.named_frame_of(t) {
                texts.push((attribute.clone(), attribute::feature_names(&names)));
            }
        }
    }
    Ok(Tagged { source: path.to_path_buf(), texts })
}

/// The classes: every attribute tagged, in name order.
pub fn classes(sets: &[Tagged]) -> Vec<String> {
    let all: BTreeSet<&String> = sets.iter().flat_map(|s| s.texts.iter().map(|(a, _)| a)).collect();
    all.into_iter().cloned().collect()
}

fn examples<'a>(classes: &[String], sets: impl Iterator<Item = &'a Tagged>) -> Vec<Example> {
    sets.flat_map(|s| s.texts.iter())
        .filter_map(|(a, f)| Some(Example { features: f.clone(), class: classes.iter().position(|c| c == a)? }))
        .collect()
}

/// Settings of a fit.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// L2 regularization.
    pub l2: f32,
    /// Passes over the examples.
    pub epochs: usize,
    /// Weights smaller than this are left out of the file.
    pub prune: f32,
}

/// Fits the model on every set.
pub fn fit(classes: &[String], sets: &[Tagged], fit: Fit) -> AttributeModel {
    attribute::train(classes, &examples(classes, sets.iter()), fit.l2, fit.epochs, fit.prune)
}

/// Leave-one-writer-out: each set's texts predicted by a model fitted on the others. Returns
/// the report and the mean accuracy.
pub fn cross_validate(classes: &[String], sets: &[Tagged], fit: Fit) -> (String, f64) {
    let mut report = String::new();
    let (mut right, mut total) = (0usize, 0usize);
    let mut worst = (f64::MAX, String::new());
    for (i, held) in sets.iter().enumerate() {
        let others = sets.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s);
        let model = attribute::train(classes, &examples(classes, others), fit.l2, fit.epochs, fit.prune);
        let test = examples(classes, std::iter::once(held));
        let ok = test
            .iter()
            .filter(|e| {
                let p = model.probabilities(&e.features);
                p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(c, _)| c) == Some(e.class)
            })
            .count();
        let acc = ok as f64 / test.len().max(1) as f64;
        let _ = writeln!(report, "{}: {acc:.3} of {}", held.source.display(), test.len());
        if acc < worst.0 {
            worst = (acc, held.source.display().to_string());
        }
        right += ok;
        total += test.len();
    }
    let mean = right as f64 / total.max(1) as f64;
    let _ = writeln!(
        report,
        "leave-one-writer-out accuracy {mean:.3} of {total} texts, worst {:.3} ({})",
        worst.0, worst.1
    );
    (report, mean)
}
