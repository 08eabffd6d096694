//! `kotae train-identity`: fits the question-identity model on labelled pairs.
//!
//! Pairs come from gold streams (two question lines of one scope are the same question when they
//! carry the same key) and cluster sets (two texts of one cluster are; texts of different
//! clusters, and each near-miss pair, are not). Only pairs within one scope count: questions
//! about different products never meet in the queue, so the model never has to tell them apart.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::pipeline::identity::{self, IdentityModel, Pair};
use crate::pipeline::{About, Engine, frame::Frame};

use super::eval_stream::{ClusterSet, GoldStream};
use std::fmt::Write as _;

/// A question text with its frame and scope.
struct Framed {
    text: String,
    group: String,
    scope: About,
    frame: Frame,
}

fn frames(
    engine: &Arc<Engine>,
    catalog: Option<&Arc<Catalog>>,
    texts: impl Iterator<Item = (String, String, Option<String>)>,
) -> Vec<Framed> {
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    if let Some(c) = catalog {
        state.set_catalog(c.clone());
    }
    let mut out = Vec::new();
    for (group, text, on_screen) in texts {
        let Some(mut a) = analyzer.frame_of(&text) else { continue };
        let scope = state.scope(&mut a, on_screen.as_deref());
        if let Some(frame) = a.frame {
            out.push(Framed { text, group, scope, frame });
        }
    }
    out
}

/// How much a near-miss pair counts against an ordinary pair of different questions.
const NEAR_MISS_WEIGHT: f32 = 20.0;

fn pairs_of(items: &[Framed], weight: f32, out: &mut Vec<Pair>) {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if a.scope != b.scope {
                continue;
            }
            if let Some(features) = identity::features(a.frame.view(), b.frame.view()) {
                let texts = Some(Box::new((a.text.clone(), b.text.clone())));
                out.push(Pair { features, same: a.group == b.group, weight, texts });
            }
        }
    }
}

/// Labelled pairs from gold streams.
pub fn stream_pairs(engine: &Arc<Engine>, gold: &GoldStream, out: &mut Vec<Pair>) {
    let catalog = Catalog::compile(gold.catalog(), &engine.config.normalize).ok().map(Arc::new);
    let texts = gold
        .lines
        .iter()
        .filter_map(|l| Some((l.q.clone()?, l.text.clone(), gold.on_screen(l.ts).map(str::to_string))));
    pairs_of(&frames(engine, catalog.as_ref(), texts), 1.0, out);
}

/// Labelled pairs from a cluster set: within clusters, across clusters, and near misses.
pub fn cluster_pairs(engine: &Arc<Engine>, set: &ClusterSet, out: &mut Vec<Pair>) {
    let catalog = set.catalog.clone().and_then(|c| Catalog::compile(c, &engine.config.normalize).ok()).map(Arc::new);
    let texts =
        set.clusters.iter().flat_map(|c| c.texts.iter().map(move |t| (c.id.clone(), t.clone(), c.on_screen.clone())));
    pairs_of(&frames(engine, catalog.as_ref(), texts), 1.0, out);
    for (i, n) in set.near.iter().enumerate() {
        let texts = [(format!("a{i}"), n.a.0.clone(), n.a.1.clone()), (format!("b{i}"), n.b.0.clone(), n.b.1.clone())];
        pairs_of(&frames(engine, catalog.as_ref(), texts.into_iter()), NEAR_MISS_WEIGHT, out);
    }
}

/// The `n` pairs the model gets most wrong on each side, for reading.
pub fn misses(model: &IdentityModel, pairs: &[Pair], n: usize) -> String {
    let mut wrong: Vec<(f32, &Pair)> = pairs
        .iter()
        .map(|p| (model.probability_of(&p.features), p))
        .filter(|(prob, p)| (*prob > model.threshold) != p.same)
        .collect();
    wrong.sort_by(|a, b| {
        (a.0 - if a.1.same { 0.0 } else { 1.0 })
            .abs()
            .total_cmp(&(b.0 - if b.1.same { 0.0 } else { 1.0 }).abs())
            .reverse()
    });
    let mut out = String::new();
    for same in [true, false] {
        out += if same { "one question, kept apart:\n" } else { "different questions, taken for one:\n" };
        for (prob, p) in wrong.iter().filter(|(_, p)| p.same == same).take(n) {
            if let Some(t) = &p.texts {
                out += &format!("  {prob:.2}  {}  /  {}\n", t.0, t.1);
            }
        }
    }
    out
}

/// The threshold under which the gold streams' questions reach the host queue best: the one
/// with the highest mean share of questions answered once (ties: the higher, which merges
/// less). Returns it with a line per threshold tried.
pub fn stream_threshold(engine: &Arc<Engine>, model: &IdentityModel, streams: &[GoldStream]) -> (f32, String) {
    let mut best = (f64::MIN, model.threshold);
    let mut report = String::new();
    for step in 6..=18 {
        let t = step as f32 * 0.05;
        engine.set_identity(IdentityModel { threshold: t, ..model.clone() });
        let scores: Vec<f64> = streams
            .iter()
            .map(|g| super::eval_stream::score_stream(engine, &crate::queue::RankConfig::default(), g).0.answered_once)
            .collect();
        let mean = scores.iter().sum::<f64>() / scores.len().max(1) as f64;
        let _ = writeln!(report, "threshold {t:.2}: answered once {mean:.3}");
        if mean >= best.0 {
            best = (mean, t);
        }
    }
    (best.1, report)
}

/// Fits the model; returns it with a summary line.
pub fn fit(pairs: &[Pair], l2: f32, epochs: usize) -> (IdentityModel, String) {
    let model = identity::train(pairs, l2, epochs);
    let (mut tp, mut fp, mut fneg, mut tn) = (0, 0, 0, 0);
    for p in pairs {
        match (model.probability_of(&p.features) > model.threshold, p.same) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => tn += 1,
        }
    }
    let summary = format!(
        "{} pairs ({} same): same pairs kept together {:.3}, different pairs kept apart {:.3}, threshold {:.2}",
        pairs.len(),
        tp + fneg,
        tp as f64 / (tp + fneg).max(1) as f64,
        tn as f64 / (tn + fp).max(1) as f64,
        model.threshold
    );
    (model, summary)
}
