//! `kotae eval FILE`: per-label precision, recall, F1 and support against labelled lines.

use std::io::{self, BufRead};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::label::{Label, LabelSet};
use crate::pipeline::{Engine, Meta};

/// One labelled line.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub text: String,
    pub labels: Vec<Label>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub ts: Option<u64>,
}

/// Reads a labelled JSON Lines file; problems name their line.
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?);
    }
    Ok(out)
}

/// Metrics of one label.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LabelMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
    #[serde(skip)]
    tp: usize,
    #[serde(skip)]
    fp: usize,
    #[serde(skip)]
    fn_: usize,
}

/// A wrong prediction worth reading.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    pub text: String,
    pub expected: Vec<Label>,
    pub predicted: Vec<Label>,
}

/// The evaluation report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub labels: std::collections::BTreeMap<String, LabelMetrics>,
    /// Micro-averaged F1 over question, purchase_intent, spam and abuse.
    pub micro_f1: f64,
    /// Macro-averaged F1 over question, purchase_intent, spam and abuse.
    pub macro_f1: f64,
    pub lines: usize,
    pub confusions: Vec<Confusion>,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Predicts every line (one stream, in order) and scores the predictions.
pub fn evaluate(engine: &Arc<Engine>, rows: &[Labelled]) -> Report {
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    let predictions: Vec<LabelSet> = rows
        .iter()
        .map(|row| match analyzer.analyze(&row.text) {
            Ok(a) => {
                state.process(Meta { user: row.user.as_deref(), ts: row.ts.unwrap_or(0), product: None }, a).labels
            }
            Err(_) => LabelSet::default(),
        })
        .collect();
    score(rows, &predictions)
}

/// Scores predictions against the expected labels.
pub fn score(rows: &[Labelled], predictions: &[LabelSet]) -> Report {
    let mut metrics: Vec<LabelMetrics> = vec![LabelMetrics::default(); Label::ALL.len()];
    let mut confusions = Vec::new();
    for (row, pred) in rows.iter().zip(predictions) {
        let expected: LabelSet = row.labels.iter().copied().collect();
        for label in Label::ALL {
            let (e, p) = (expected.iter().any(|l| l == label), pred.iter().any(|l| l == label));
            let m = &mut metrics[label.index()];
            match (e, p) {
                (true, true) => m.tp += 1,
                (false, true) => m.fp += 1,
                (true, false) => m.fn_ += 1,
                _ => {}
            }
        }
        if expected != *pred {
            confusions.push(Confusion {
                text: row.text.clone(),
                expected: expected.iter().collect(),
                predicted: pred.iter().collect(),
            });
        }
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    let mut macro_sum = 0.0;
    for m in metrics.iter_mut() {
        m.precision = ratio(m.tp, m.tp + m.fp);
        m.recall = ratio(m.tp, m.tp + m.fn_);
        m.f1 = f1(m.precision, m.recall);
        m.support = m.tp + m.fn_;
    }
    for label in Label::SCORED {
        let m = &metrics[label.index()];
        tp += m.tp;
        fp += m.fp;
        fn_ += m.fn_;
        macro_sum += m.f1;
    }
    Report {
        labels: Label::ALL.iter().map(|l| (l.as_str().to_string(), metrics[l.index()])).collect(),
        micro_f1: f1(ratio(tp, tp + fp), ratio(tp, tp + fn_)),
        macro_f1: macro_sum / Label::SCORED.len() as f64,
        lines: rows.len(),
        confusions,
    }
}

impl Report {
    /// The human-readable table, followed by up to `max_confusions` wrong lines.
    pub fn to_table(&self, max_confusions: usize) -> String {
        let mut s = format!("{:<16} {:>9} {:>9} {:>9} {:>8}\n", "label", "precision", "recall", "f1", "support");
        for label in Label::ALL {
            let m = &self.labels[label.as_str()];
            s += &format!(
                "{:<16} {:>9.3} {:>9.3} {:>9.3} {:>8}\n",
                label.as_str(),
                m.precision,
                m.recall,
                m.f1,
                m.support
            );
        }
        s += &format!(
            "\nmicro F1 {:.3}   macro F1 {:.3}   (over question, purchase_intent, spam, abuse; {} lines)\n",
            self.micro_f1, self.macro_f1, self.lines
        );
        if max_confusions > 0 && !self.confusions.is_empty() {
            s += &format!(
                "\nconfusions ({} lines wrong; first {}):\n",
                self.confusions.len(),
                max_confusions.min(self.confusions.len())
            );
            for c in self.confusions.iter().take(max_confusions) {
                let list = |v: &[Label]| v.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(",");
                s += &format!("  expected {:<28} got {:<28} {}\n", list(&c.expected), list(&c.predicted), c.text);
            }
        }
        s
    }
}
