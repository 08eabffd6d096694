//! `kotae train FILE...`: fits the linear model on labelled lines and writes its weights file.
//! `--cv K` instead reports K-fold cross-validated F1, and `--cv-by writer` leave-one-writer-out
//! F1: every writer's lines are predicted by a model trained on the other writers only. On a
//! terminal, a progress line counts the folds done ([`progress`](super::progress)).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::commands::eval::{Labelled, Prediction, Report, score};
use crate::label::Label;
use crate::pipeline::Engine;
use crate::pipeline::classify::{Classifier, Example, Model, TrainOptions};

/// Feature names of every row.
pub fn featurize(engine: &Arc<Engine>, rows: &[Labelled]) -> Vec<Example> {
    let mut analyzer = engine.analyzer();
    rows.iter()
        .map(|r| {
            let (features, prior, category_prior) = analyzer.feature_names(&r.text);
            Example {
                features,
                labels: r.labels.iter().copied().collect(),
                prior,
                category: r.abuse.filter(|_| r.labels.contains(&Label::Abuse)),
                category_prior,
            }
        })
        .collect()
}

/// Fits a model on all rows.
pub fn train(examples: &[Example], options: &TrainOptions) -> Model {
    Model::train(examples, options)
}

/// K-fold cross-validation: every row is predicted by a model that did not see it.
pub fn cross_validate(
    engine: &Arc<Engine>,
    rows: &[Labelled],
    examples: &[Example],
    k: usize,
    options: &TrainOptions,
) -> Report {
    let k = k.max(2);
    let folds: Vec<Vec<usize>> = (0..k).map(|f| (0..rows.len()).filter(|i| i % k == f).collect()).collect();
    let predictions = held_out(engine, rows, examples, &folds, options);
    score(rows, &predictions)
}

/// Leave-one-writer-out cross-validation: each writer's lines are predicted by a model trained
/// on every other writer's lines, less any line whose text the held-out writer also wrote.
/// Reported overall and per writer.
pub fn cross_validate_by_writer(
    engine: &Arc<Engine>,
    rows: &[Labelled],
    examples: &[Example],
    options: &TrainOptions,
) -> Report {
    let mut writers: Vec<&str> = rows.iter().map(Labelled::writer).collect();
    writers.sort_unstable();
    writers.dedup();
    let folds: Vec<Vec<usize>> =
        writers.iter().map(|w| (0..rows.len()).filter(|&i| rows[i].writer() == *w).collect()).collect();
    let predictions = held_out(engine, rows, examples, &folds, options);
    score(rows, &predictions).by_writer(rows, &predictions)
}

/// Predicts the rows of each fold with a model trained on the rows outside it whose text is not
/// in it. Folds run in parallel, one per core.
fn held_out(
    engine: &Arc<Engine>,
    rows: &[Labelled],
    examples: &[Example],
    folds: &[Vec<usize>],
    options: &TrainOptions,
) -> Vec<Prediction> {
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(folds.len()).max(1);
    let mut predictions = vec![Prediction::default(); rows.len()];
    let progress = super::progress::counter(folds.len() as u64, "train --cv", "folds");
    let results: Vec<Vec<(usize, Prediction)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    let mut analyzer = engine.analyzer();
                    loop {
                        let f = next.fetch_add(1, Ordering::Relaxed);
                        let Some(fold) = folds.get(f) else { break };
                        let inside: HashSet<usize> = fold.iter().copied().collect();
                        let texts: HashSet<&str> = fold.iter().map(|&i| rows[i].text.as_str()).collect();
                        let train_set: Vec<Example> = (0..rows.len())
                            .filter(|i| !inside.contains(i) && !texts.contains(rows[*i].text.as_str()))
                            .map(|i| examples[i].clone())
                            .collect();
                        let model = Arc::new(train(&train_set, options));
                        let classifier = Classifier::new(
                            engine.classifier().dictionaries.clone(),
                            model,
                            engine.config.classify.clone(),
                        );
                        for &i in fold {
                            let c = analyzer.classify_with(&classifier, &rows[i].text);
                            out.push((i, Prediction { labels: c.labels, category: c.category }));
                        }
                        progress.inc(1);
                    }
                    out
                })
            })
            .collect();
        // A fold's thread only panics on a bug; its lines then count as predicted `other`.
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    progress.finish_and_clear();
    for (i, p) in results.into_iter().flatten() {
        predictions[i] = p;
    }
    predictions
}

/// The header written at the top of a trained weights file.
pub fn header(sources: &[String], rows: usize, options: &TrainOptions) -> String {
    format!(
        "kotae linear model: one row per feature, weights toward {} and the abuse categories.\n\
         trained by `kotae train {}` on {rows} labelled lines\n\
         (min_count {}, min_ngram_count {}, ngrams {}-{}, l2 {}, epochs {}).\n\
         ja.* rows are dictionary rules and token cues; w:/e:/e2: rows are base-form words (any, last,\n\
         last two); c: rows are character n-grams of the matching key (^ start, $ end of the message).\n\
         Edit the dictionaries, not this file: re-run `kotae train` after changing them.",
        Label::SCORED.map(|l| l.as_str()).join(", "),
        sources.join(" "),
        options.min_count,
        options.min_ngram_count,
        options.ngrams.0,
        options.ngrams.1,
        options.l2,
        options.epochs
    )
}
