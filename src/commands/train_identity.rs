//! `kotae train-identity`: fits the question-identity model on labelled pairs.
//!
//! Pairs come from gold streams (two question lines of one scope are the same question when they
//! carry the same key) and cluster sets (two texts of one cluster are; texts of different
//! clusters, and each near-miss pair, are not). Only pairs within one scope count: questions
//! about different products never meet in the queue, so the model never has to tell them apart.

use std::collections::HashMap;
use std::sync::Arc;

use crate::catalog::Catalog;
use crate::pipeline::dedupe::hash_str;
use crate::pipeline::frame::FrameNames;
use crate::pipeline::frame::fold_hash;
use crate::pipeline::identity::{self, Associations, IdentityModel, Pair};
use crate::pipeline::{Engine, frame::Frame};

use super::eval_stream::{ClusterSet, GoldStream};
use std::fmt::Write as _;

/// A question text with its frame and the scope its cluster is found in
/// ([`crate::pipeline::About::cluster_scope`]: questions of different scopes never meet in the
/// queue), and, for learning associations, the frame's names.
struct Framed {
    text: String,
    group: String,
    scope: u64,
    frame: Frame,
    names: FrameNames,
}

fn frames(
    engine: &Arc<Engine>,
    catalog: Option<&Arc<Catalog>>,
    texts: impl Iterator<Item = (String, String, Option<String>)>,
    named: bool,
) -> Vec<Framed> {
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    if let Some(c) = catalog {
        state.set_catalog(c.clone());
    }
    let mut out = Vec::new();
    for (group, text, on_screen) in texts {
        let found = if named {
            analyzer.named_frame_of(&text)
        } else {
            analyzer.frame_of(&text).map(|a| (a, FrameNames::default()))
        };
        let Some((mut a, names)) = found else { continue };
        let about = state.scope(&mut a, on_screen.as_deref());
        if let Some(frame) = a.frame {
            let scope = about.cluster_scope(Some(&frame));
            out.push(Framed { text, group, scope, frame, names });
        }
    }
    out
}

/// How much a near-miss pair counts against an ordinary pair of different questions.
const NEAR_MISS_WEIGHT: f32 = 20.0;

fn pairs_of(items: &[Framed], weight: f32, assoc: &Associations, out: &mut Vec<Pair>) {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if a.scope != b.scope {
                continue;
            }
            if let Some(features) = identity::features(a.frame.view(), b.frame.view(), assoc) {
                let texts = Some(Box::new((a.text.clone(), b.text.clone())));
                out.push(Pair { features, same: a.group == b.group, weight, texts });
            }
        }
    }
}

/// Labelled pairs from gold streams.
pub fn stream_pairs(engine: &Arc<Engine>, gold: &GoldStream, assoc: &Associations, out: &mut Vec<Pair>) {
    let catalog = Catalog::compile(gold.catalog(), &engine.config.normalize).ok().map(Arc::new);
    let texts = gold
        .lines
        .iter()
        .filter_map(|l| Some((l.q.clone()?, l.text.clone(), gold.on_screen(l.ts).map(str::to_string))));
    pairs_of(&frames(engine, catalog.as_ref(), texts, false), 1.0, assoc, out);
}

/// Labelled pairs from a cluster set: within clusters, across clusters, and near misses.
pub fn cluster_pairs(engine: &Arc<Engine>, set: &ClusterSet, assoc: &Associations, out: &mut Vec<Pair>) {
    let catalog = set.catalog.clone().and_then(|c| Catalog::compile(c, &engine.config.normalize).ok()).map(Arc::new);
    let texts =
        set.clusters.iter().flat_map(|c| c.texts.iter().map(move |t| (c.id.clone(), t.clone(), c.on_screen.clone())));
    pairs_of(&frames(engine, catalog.as_ref(), texts, false), 1.0, assoc, out);
    for (i, n) in set.near.iter().enumerate() {
        let texts = [(format!("a{i}"), n.a.0.clone(), n.a.1.clone()), (format!("b{i}"), n.b.0.clone(), n.b.1.clone())];
        pairs_of(&frames(engine, catalog.as_ref(), texts.into_iter(), false), NEAR_MISS_WEIGHT, assoc, out);
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

/// The chance that a pair of one question gets a higher probability than a pair of different
/// questions (ties count half): how well the model tells them apart, whatever the threshold.
pub fn auc(model: &IdentityModel, pairs: &[Pair]) -> f64 {
    let mut scored: Vec<(f32, bool)> = pairs.iter().map(|p| (model.probability_of(&p.features), p.same)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut below, mut wins, mut i) = (0f64, 0f64, 0);
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    while i < scored.len() {
        // A run of equal probabilities: its different-question pairs count half for its same ones.
        let j = scored[i..].iter().position(|s| s.0 != scored[i].0).map_or(scored.len(), |k| i + k);
        let (same, diff) =
            scored[i..j].iter().fold((0f64, 0f64), |(s, d), x| if x.1 { (s + 1.0, d) } else { (s, d + 1.0) });
        wins += same * (below + diff / 2.0);
        below += diff;
        i = j;
    }
    if positives == 0.0 || negatives == 0.0 { 0.5 } else { wins / (positives * negatives) }
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
        "{} pairs ({} same): same pairs kept together {:.3}, different pairs kept apart {:.3}, threshold {:.2}; AUC {:.3}",
        pairs.len(),
        tp + fneg,
        tp as f64 / (tp + fneg).max(1) as f64,
        tn as f64 / (tn + fp).max(1) as f64,
        model.threshold,
        auc(&model, pairs)
    );
    (model, summary)
}

/// A question text's units (`c:concept`, `w:word`) as its scoped frame holds them.
struct Units {
    group: String,
    scope: u64,
    units: Vec<String>,
}

fn units_of(
    engine: &Arc<Engine>,
    catalog: Option<&Arc<Catalog>>,
    texts: impl Iterator<Item = (String, String, Option<String>)>,
) -> Vec<Units> {
    let units = |f: &Framed| {
        // What the scope left in the frame (a word naming the product is taken out).
        let (frame, names) = (&f.frame, &f.names);
        let mut units: Vec<String> = Vec::new();
        let concepts = names.concepts.iter().chain(&names.weak);
        units.extend(
            concepts
                .filter(|c| frame.concepts.contains(&hash_str(c)) || frame.weak.contains(&hash_str(c)))
                .map(|c| format!("c:{c}")),
        );
        let words = names.nouns.iter().chain(&names.preds);
        units.extend(
            words
                .filter(|w| frame.nouns.contains(&fold_hash(w)) || frame.preds.contains(&fold_hash(w)))
                .map(|w| format!("w:{w}")),
        );
        // A kaomoji's pieces are no words; a unit must also survive the model file's syntax.
        units.retain(|u| u[2..].chars().any(char::is_alphabetic) && !u.contains(['#', '\t', '\n']));
        units.sort();
        units.dedup();
        units
    };
    frames(engine, catalog, texts, true)
        .iter()
        .map(|f| Units { group: f.group.clone(), scope: f.scope, units: units(f) })
        .collect()
}

/// How much a near-miss pair counts against an association, against an ordinary pair of
/// different questions.
const NEAR_MISS_AGAINST: f64 = 5.0;

/// Counts of one candidate association.
#[derive(Default)]
struct Tally {
    same: f64,
    different: f64,
    writers: std::collections::BTreeSet<usize>,
}

fn tally_pairs(items: &[Units], writer: usize, weight: f64, tallies: &mut HashMap<(String, String), Tally>) {
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            if a.scope != b.scope {
                continue;
            }
            let same = a.group == b.group;
            let only_a = a.units.iter().filter(|u| b.units.binary_search(u).is_err());
            for x in only_a {
                for y in b.units.iter().filter(|u| a.units.binary_search(u).is_err()) {
                    let key = if x < y { (x.clone(), y.clone()) } else { (y.clone(), x.clone()) };
                    let t = tallies.entry(key).or_default();
                    if same {
                        t.same += 1.0;
                        t.writers.insert(writer);
                    } else {
                        t.different += weight;
                    }
                }
            }
        }
    }
}

/// Learns associations from cluster sets, each by its own writer: two units that one frame
/// names and the other does not, in wordings of one cluster, by at least `min_writers`
/// writers; strength = same-question pairs / (all pairs setting them side by side + 1), kept
/// from `min_strength`. Returns them with a summary line.
pub fn learn_associations(
    engine: &Arc<Engine>,
    sets: &[ClusterSet],
    min_writers: usize,
    min_strength: f32,
) -> (Associations, String) {
    let mut tallies: HashMap<(String, String), Tally> = HashMap::new();
    for (writer, set) in sets.iter().enumerate() {
        let catalog =
            set.catalog.clone().and_then(|c| Catalog::compile(c, &engine.config.normalize).ok()).map(Arc::new);
        let texts = set
            .clusters
            .iter()
            .flat_map(|c| c.texts.iter().map(move |t| (c.id.clone(), t.clone(), c.on_screen.clone())));
        tally_pairs(&units_of(engine, catalog.as_ref(), texts), writer, 1.0, &mut tallies);
        for (i, n) in set.near.iter().enumerate() {
            let texts =
                [(format!("a{i}"), n.a.0.clone(), n.a.1.clone()), (format!("b{i}"), n.b.0.clone(), n.b.1.clone())];
            tally_pairs(
                &units_of(engine, catalog.as_ref(), texts.into_iter()),
                writer,
                NEAR_MISS_AGAINST,
                &mut tallies,
            );
        }
    }
    let mut kept: Vec<(String, String, f32)> = tallies
        .into_iter()
        .filter(|(_, t)| t.writers.len() >= min_writers)
        .map(|((a, b), t)| (a, b, (t.same / (t.same + t.different + 1.0)) as f32))
        .filter(|(_, _, s)| *s >= min_strength)
        .collect();
    kept.sort_by(|x, y| y.2.total_cmp(&x.2).then_with(|| (&x.0, &x.1).cmp(&(&y.0, &y.1))));
    let mut assoc = Associations::default();
    for (a, b, s) in kept {
        // Rounded, so that the file reads well and a retrained file differs only where it must.
        let s = (s * 1000.0).round() / 1000.0;
        if let Err(e) = assoc.insert(&a, &b, s) {
            tracing::warn!(error = %e, "association left out");
        }
    }
    let summary = format!(
        "{} associations from {} cluster sets (used by at least {min_writers} writers, strength at least {min_strength})",
        assoc.entries.len(),
        sets.len()
    );
    (assoc, summary)
}
