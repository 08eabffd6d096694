//! `kotae train FILE`: fits the linear model on labelled lines and writes its weights file.
//! `--cv K` instead reports K-fold cross-validated F1 on FILE, to tune without a test set.

use std::sync::Arc;

use crate::commands::eval::{Labelled, Report, score};
use crate::label::{Label, LabelSet};
use crate::pipeline::Engine;
use crate::pipeline::classify::{Example, Model};

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainParams {
    /// Word features seen fewer times than this are dropped (rule features are always kept).
    pub min_count: usize,
    pub l2: f32,
    pub epochs: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self { min_count: 2, l2: 0.0001, epochs: 300 }
    }
}

/// Feature names of every row.
pub fn featurize(engine: &Arc<Engine>, rows: &[Labelled]) -> Vec<Example> {
    let mut analyzer = engine.analyzer();
    rows.iter()
        .map(|r| {
            let (features, prior) = analyzer.feature_names(&r.text);
            Example { features, labels: r.labels.iter().copied().collect(), prior }
        })
        .collect()
}

/// Fits a model on all rows.
pub fn train(examples: &[Example], params: TrainParams) -> Model {
    Model::train(examples, params.min_count, params.l2, params.epochs)
}

/// K-fold cross-validation: every row is predicted by a model that did not see it.
pub fn cross_validate(
    engine: &Arc<Engine>,
    rows: &[Labelled],
    examples: &[Example],
    k: usize,
    params: TrainParams,
) -> Report {
    let k = k.max(2);
    let mut predictions = vec![LabelSet::default(); rows.len()];
    for fold in 0..k {
        let train_set: Vec<_> =
            examples.iter().enumerate().filter(|(i, _)| i % k != fold).map(|(_, e)| e.clone()).collect();
        let model = Arc::new(train(&train_set, params));
        let classifier = crate::pipeline::classify::Classifier::new(
            engine.classifier().dictionaries.clone(),
            model,
            engine.config.classify.clone(),
        );
        let mut analyzer = engine.analyzer();
        for (i, row) in rows.iter().enumerate().filter(|(i, _)| i % k == fold) {
            predictions[i] = analyzer.labels_with(&classifier, &row.text);
        }
    }
    score(rows, &predictions)
}

/// The header written at the top of a trained weights file.
pub fn header(source: &str, rows: usize, params: TrainParams) -> String {
    format!(
        "kotae linear model: one row per feature, weights toward {}.\n\
         trained by `kotae train {source}` on {rows} labelled lines (min_count {}, l2 {}, epochs {}).\n\
         ja.* rows are dictionary rules and token cues; w:/e:/e2: rows are base-form words (any, last, last two).\n\
         Edit the dictionaries, not this file: re-run `kotae train` after changing them.",
        Label::SCORED.map(|l| l.as_str()).join(", "),
        params.min_count,
        params.l2,
        params.epochs
    )
}
