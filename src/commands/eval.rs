//! `kotae eval FILE...`: per-label precision, recall, F1 and support against labelled lines,
//! how often abusive lines get their category right, and with `--by writer` the same per writer
//! with the worst writer of each label.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::label::{Label, LabelSet};
use crate::pipeline::classify::AbuseCategory;
use crate::pipeline::{Engine, Meta};

/// One labelled line.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    /// The message text.
    pub text: String,
    /// The labels a person gave it (empty, or `other` alone, for a line with none of the four).
    pub labels: Vec<Label>,
    /// The viewer who sent it, for the per-user rules (repeats, slow mode) of the stateful stage.
    #[serde(default)]
    pub user: Option<String>,
    /// When it was sent, Unix milliseconds; read as 0 when absent.
    #[serde(default)]
    pub ts: Option<u64>,
    /// Who wrote the line (`w-apparel`); the file's name when the line does not say.
    #[serde(default)]
    pub writer: Option<String>,
    /// The kind of abuse, on abuse lines that name it.
    #[serde(default)]
    pub abuse: Option<AbuseCategory>,
    /// Which of the files read the line came from (one stream each).
    #[serde(skip)]
    pub file: usize,
}

impl Labelled {
    /// The writer, or `"unknown"`.
    pub fn writer(&self) -> &str {
        self.writer.as_deref().unwrap_or("unknown")
    }
}

/// Reads a labelled JSON Lines file; problems name their line.
pub fn read_labelled(path: &Path) -> Result<Vec<Labelled>, String> {
    read_labelled_files(&[path.to_path_buf()])
}

/// Reads labelled JSON Lines files in order. A line without a `writer` is credited to its
/// file's name (`dev` for `dev.jsonl`); problems name their file and line.
pub fn read_labelled_files(paths: &[PathBuf]) -> Result<Vec<Labelled>, String> {
    let mut out = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("unknown").to_string();
        for (n, line) in io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut row: Labelled =
                serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
            row.writer.get_or_insert_with(|| stem.clone());
            row.file = index;
            out.push(row);
        }
    }
    Ok(out)
}

/// What the engine said about one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prediction {
    /// The labels of the verdict.
    pub labels: LabelSet,
    /// The abuse category of the verdict, when it is abuse.
    pub category: Option<AbuseCategory>,
}

/// Metrics of one label.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct LabelMetrics {
    /// Of the lines predicted with the label, the share that have it (0 when none were predicted).
    pub precision: f64,
    /// Of the lines that have the label, the share predicted with it (0 when none have it).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Lines that have the label.
    pub support: usize,
    #[serde(skip)]
    tp: usize,
    #[serde(skip)]
    fp: usize,
    #[serde(skip)]
    fn_: usize,
}

/// How the abuse lines of one category fared.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct CategoryMetrics {
    /// Abuse lines of this category.
    pub support: usize,
    /// The share of them labelled abuse.
    pub recall: f64,
    /// Of those labelled abuse, the share given this category.
    pub category_accuracy: f64,
    #[serde(skip)]
    detected: usize,
    #[serde(skip)]
    right: usize,
}

/// A wrong prediction worth reading.
#[derive(Debug, Clone, Serialize)]
pub struct Confusion {
    /// The line's text.
    pub text: String,
    /// The labels it has (`other` when none of the four).
    pub expected: Vec<Label>,
    /// The labels the engine gave it.
    pub predicted: Vec<Label>,
    /// Who wrote the line.
    pub writer: String,
}

/// One writer's figures.
#[derive(Debug, Clone, Serialize)]
pub struct WriterReport {
    /// The writer's lines.
    pub lines: usize,
    /// Per label, over the writer's lines.
    pub labels: BTreeMap<String, LabelMetrics>,
    /// Micro-averaged F1 over question, purchase_intent, spam and abuse, over the writer's lines.
    pub micro_f1: f64,
}

/// The writer with the lowest F1 for one label.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Worst {
    /// The writer's name.
    pub writer: String,
    /// Their F1 for the label.
    pub f1: f64,
}

/// The evaluation report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Per label, `other` included: precision, recall, F1 and support.
    pub labels: BTreeMap<String, LabelMetrics>,
    /// Micro-averaged F1 over question, purchase_intent, spam and abuse.
    pub micro_f1: f64,
    /// Macro-averaged F1 over question, purchase_intent, spam and abuse.
    pub macro_f1: f64,
    /// Lines scored.
    pub lines: usize,
    /// Abuse lines that name their category, by category.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, CategoryMetrics>,
    /// With `--by writer`: the same per writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writers: Option<BTreeMap<String, WriterReport>>,
    /// With `--by writer`: per scored label, the writer with the lowest F1 (writers with no line
    /// of that label left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<BTreeMap<String, Worst>>,
    /// Every line whose predicted labels differ from its labels, in file order (the table prints
    /// the first few).
    pub confusions: Vec<Confusion>,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Predicts every line, each file as one stream in its order, and scores the predictions.
pub fn evaluate(engine: &Arc<Engine>, rows: &[Labelled]) -> Report {
    score(rows, &predictions(engine, rows))
}

/// Predicts every line, each file as one stream in its order.
pub fn predictions(engine: &Arc<Engine>, rows: &[Labelled]) -> Vec<Prediction> {
    let mut analyzer = engine.analyzer();
    let mut state = engine.stream_state();
    let mut file = rows.first().map_or(0, |r| r.file);
    rows.iter()
        .map(|row| {
            if row.file != file {
                file = row.file;
                state = engine.stream_state();
            }
            match analyzer.analyze(&row.text) {
                Ok(a) => {
                    let v =
                        state.process(Meta { user: row.user.as_deref(), ts: row.ts.unwrap_or(0), product: None }, a);
                    Prediction { labels: v.labels, category: v.category }
                }
                Err(_) => Prediction::default(),
            }
        })
        .collect()
}

/// Per-label metrics and micro/macro F1 of some rows.
fn label_metrics<'a>(
    rows: impl Iterator<Item = (&'a Labelled, &'a Prediction)>,
) -> (BTreeMap<String, LabelMetrics>, f64, f64, usize) {
    let mut metrics: Vec<LabelMetrics> = vec![LabelMetrics::default(); Label::ALL.len()];
    let mut lines = 0;
    for (row, pred) in rows {
        lines += 1;
        let expected: LabelSet = row.labels.iter().copied().collect();
        for label in Label::ALL {
            let (e, p) = (expected.iter().any(|l| l == label), pred.labels.iter().any(|l| l == label));
            let m = &mut metrics[label.index()];
            match (e, p) {
                (true, true) => m.tp += 1,
                (false, true) => m.fp += 1,
                (true, false) => m.fn_ += 1,
                _ => {}
            }
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
    let labels = Label::ALL.iter().map(|l| (l.as_str().to_string(), metrics[l.index()])).collect();
    (labels, f1(ratio(tp, tp + fp), ratio(tp, tp + fn_)), macro_sum / Label::SCORED.len() as f64, lines)
}

/// Scores predictions against the expected labels (and categories, where lines name one).
pub fn score(rows: &[Labelled], predictions: &[Prediction]) -> Report {
    let (labels, micro_f1, macro_f1, lines) = label_metrics(rows.iter().zip(predictions));
    let mut categories: BTreeMap<String, CategoryMetrics> = BTreeMap::new();
    let mut confusions = Vec::new();
    for (row, pred) in rows.iter().zip(predictions) {
        if let Some(c) = row.abuse.filter(|_| row.labels.contains(&Label::Abuse)) {
            let m = categories.entry(c.as_str().to_string()).or_default();
            m.support += 1;
            if pred.labels.contains(Label::Abuse) {
                m.detected += 1;
                m.right += usize::from(pred.category == Some(c));
            }
        }
        let expected: LabelSet = row.labels.iter().copied().collect();
        if expected != pred.labels {
            confusions.push(Confusion {
                text: row.text.clone(),
                expected: expected.iter().collect(),
                predicted: pred.labels.iter().collect(),
                writer: row.writer().to_string(),
            });
        }
    }
    for m in categories.values_mut() {
        m.recall = ratio(m.detected, m.support);
        m.category_accuracy = ratio(m.right, m.detected);
    }
    Report { labels, micro_f1, macro_f1, lines, categories, writers: None, worst: None, confusions }
}

impl Report {
    /// Adds the figures of each writer and the worst writer of each scored label.
    pub fn by_writer(mut self, rows: &[Labelled], predictions: &[Prediction]) -> Self {
        let mut names: Vec<&str> = rows.iter().map(Labelled::writer).collect();
        names.sort_unstable();
        names.dedup();
        let mut writers = BTreeMap::new();
        for name in names {
            let mine = rows.iter().zip(predictions).filter(|(r, _)| r.writer() == name);
            let (labels, micro_f1, _, lines) = label_metrics(mine);
            writers.insert(name.to_string(), WriterReport { lines, labels, micro_f1 });
        }
        let mut worst = BTreeMap::new();
        for label in Label::SCORED {
            let low = writers
                .iter()
                .filter(|(_, w)| w.labels[label.as_str()].support > 0)
                .min_by(|a, b| a.1.labels[label.as_str()].f1.total_cmp(&b.1.labels[label.as_str()].f1));
            if let Some((name, w)) = low {
                worst.insert(
                    label.as_str().to_string(),
                    Worst { writer: name.clone(), f1: w.labels[label.as_str()].f1 },
                );
            }
        }
        self.writers = Some(writers);
        self.worst = Some(worst);
        self
    }

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
        if !self.categories.is_empty() {
            s += &format!("\n{:<16} {:>9} {:>9} {:>9}\n", "abuse category", "support", "recall", "category");
            for c in AbuseCategory::ALL {
                if let Some(m) = self.categories.get(c.as_str()) {
                    s += &format!(
                        "{:<16} {:>9} {:>9.3} {:>9.3}\n",
                        c.as_str(),
                        m.support,
                        m.recall,
                        m.category_accuracy
                    );
                }
            }
        }
        if let (Some(writers), Some(worst)) = (&self.writers, &self.worst) {
            s += &format!(
                "\n{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}\n",
                "F1 by writer", "question", "purchase", "spam", "abuse", "other", "lines"
            );
            for (name, w) in writers {
                s += &format!("{name:<16}");
                for label in Label::ALL {
                    s += &format!(" {:>9.3}", w.labels[label.as_str()].f1);
                }
                s += &format!(" {:>6}\n", w.lines);
            }
            s += &format!("{:<16}", "worst writer");
            for label in Label::SCORED {
                match worst.get(label.as_str()) {
                    Some(w) => s += &format!(" {:>9.3}", w.f1),
                    None => s += &format!(" {:>9}", "-"),
                }
            }
            s += "\n";
            for label in Label::SCORED {
                if let Some(w) = worst.get(label.as_str()) {
                    s += &format!("  {:<16} {} ({:.3})\n", label.as_str(), w.writer, w.f1);
                }
            }
        }
        if max_confusions > 0 && !self.confusions.is_empty() {
            s += &format!(
                "\nconfusions ({} lines wrong; first {}):\n",
                self.confusions.len(),
                max_confusions.min(self.confusions.len())
            );
            for c in self.confusions.iter().take(max_confusions) {
                let list = |v: &[Label]| v.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(",");
                s += &format!(
                    "  {:<12} expected {:<28} got {:<28} {}\n",
                    c.writer,
                    list(&c.expected),
                    list(&c.predicted),
                    c.text
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str, labels: &[Label], writer: &str) -> Labelled {
        Labelled {
            text: text.into(),
            labels: labels.to_vec(),
            user: None,
            ts: None,
            writer: Some(writer.into()),
            abuse: None,
            file: 0,
        }
    }

    fn predicted(labels: &[Label]) -> Prediction {
        Prediction { labels: labels.iter().copied().collect(), category: None }
    }

    #[test]
    fn the_worst_writer_of_each_label_is_named() {
        let q = Label::Question;
        let rows = [row("a", &[q], "w-a"), row("b", &[q], "w-a"), row("c", &[q], "w-b"), row("d", &[q], "w-b")];
        let preds = [predicted(&[q]), predicted(&[q]), predicted(&[q]), predicted(&[])];
        let report = score(&rows, &preds).by_writer(&rows, &preds);
        let writers = report.writers.as_ref().unwrap();
        assert_eq!(writers["w-a"].labels["question"].f1, 1.0);
        assert!((writers["w-b"].labels["question"].f1 - 2.0 / 3.0).abs() < 1e-9);
        let worst = report.worst.as_ref().unwrap();
        assert_eq!(worst["question"].writer, "w-b");
        assert!(!worst.contains_key("spam"), "no writer has spam lines");
        let table = report.to_table(0);
        assert!(table.contains("worst writer") && table.contains("w-b (0.667)"), "{table}");
    }

    #[test]
    fn categories_count_only_abuse_lines_that_name_one() {
        let a = Label::Abuse;
        let mut threat = row("殺す", &[a], "w");
        threat.abuse = Some(AbuseCategory::Threat);
        let mut missed = row("x", &[a], "w");
        missed.abuse = Some(AbuseCategory::Threat);
        let rows = [threat, missed, row("バカ", &[a], "w")];
        let preds = [
            Prediction { labels: [a].into_iter().collect(), category: Some(AbuseCategory::Insult) },
            predicted(&[]),
            Prediction { labels: [a].into_iter().collect(), category: Some(AbuseCategory::Insult) },
        ];
        let report = score(&rows, &preds);
        let m = report.categories["threat"];
        assert_eq!((m.support, m.recall, m.category_accuracy), (2, 0.5, 0.0));
        assert_eq!(report.categories.len(), 1);
    }
}
