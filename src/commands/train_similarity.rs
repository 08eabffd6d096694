//! `kotae train-similarity`: learns the vectors that say how alike two questions read, from
//! the training writers' paraphrase clusters, and measures them on writers held out.
//!
//! Each cluster set is one writer's (`fixtures/clusters/train/tN/clusters.jsonl`). A cluster's
//! texts are one question; each side of a near-miss pair is a question of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::pipeline::Engine;
use crate::pipeline::attribute;
use crate::pipeline::similarity::{self, Example, Fit, SimilarityModel};

use super::eval_stream::ClusterSet;

/// One writer's texts, each with its cluster.
pub struct WriterSet {
    /// The cluster file, naming the writer.
    pub source: PathBuf,
    /// Its texts.
    pub examples: Vec<Example>,
}

/// Reads a cluster set and frames every text; cluster numbers start at `*next` and move it on.
pub fn load(engine: &Arc<Engine>, path: &Path, next: &mut u32) -> Result<WriterSet, String> {
    let set = ClusterSet::load(path, None)?;
    let mut analyzer = engine.analyzer();
    let mut examples = Vec::new();
    let mut push = |cluster: u32, text: &str, examples: &mut Vec<Example>| {
        if let Some((_, names)) = analyzer.named_frame_of(text) {
            examples.push(Example { cluster, features: attribute::feature_names(&names) });
        }
    };
    for c in &set.clusters {
        for t in &c.texts {
            push(*next, t, &mut examples);
        }
        *next += 1;
    }
    for pair in &set.near {
        for (text, _) in [&pair.a, &pair.b] {
            push(*next, text, &mut examples);
            *next += 1;
        }
    }
    Ok(WriterSet { source: path.to_path_buf(), examples })
}

/// Fits on every set.
pub fn fit(sets: &[WriterSet], fit: Fit) -> SimilarityModel {
    let all: Vec<Vec<Example>> = sets.iter().map(|s| s.examples.clone()).collect();
    similarity::train(&all, fit)
}

/// Every `every`-th writer held out in turn with the writers of its fold: the pair AUC of each
/// held-out writer's texts under vectors fitted without its fold. Returns the report and the
/// mean AUC.
pub fn cross_validate(sets: &[WriterSet], fit: Fit, folds: usize) -> (String, f64) {
    let mut report = String::new();
    let mut aucs = Vec::new();
    let mut worst = (f64::MAX, String::new());
    for fold in 0..folds {
        let train: Vec<Vec<Example>> =
            sets.iter().enumerate().filter(|(i, _)| i % folds != fold).map(|(_, s)| s.examples.clone()).collect();
        let model = similarity::train(&train, fit);
        for held in sets.iter().enumerate().filter(|(i, _)| i % folds == fold).map(|(_, s)| s) {
            let auc = similarity::pair_auc(&model, &held.examples);
            let _ = writeln!(report, "{}: pair AUC {auc:.3} of {} texts", held.source.display(), held.examples.len());
            if auc < worst.0 {
                worst = (auc, held.source.display().to_string());
            }
            aucs.push(auc);
        }
    }
    let mean = aucs.iter().sum::<f64>() / aucs.len().max(1) as f64;
    let _ =
        writeln!(report, "held-out writers ({folds} folds): pair AUC {mean:.3}, worst {:.3} ({})", worst.0, worst.1);
    (report, mean)
}
