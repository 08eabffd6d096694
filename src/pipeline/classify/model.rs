//! The linear model: a bias and one row of weights per feature, toward each scored label and
//! each abuse category, kept as a reviewable TSV file written by `kotae train`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::abuse::{AbuseCategory, CATEGORIES};
use super::ngram;
use crate::label::{Label, LabelSet};

/// A model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("model {path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

/// Linear model weights: a bias and a weight per feature, for each scored label and each abuse
/// category.
#[derive(Debug, Clone)]
pub struct Model {
    /// Bias toward question, purchase_intent, spam, abuse.
    pub bias: [f32; 4],
    /// Bias toward each abuse category ([`AbuseCategory::ALL`] order).
    pub category_bias: [f32; CATEGORIES],
    index: FxHashMap<String, u32>,
    /// Character n-gram features by the hash of their characters ([`ngram`]).
    ngrams: FxHashMap<u64, u32>,
    /// The longest n-gram the model has, in units.
    max_ngram: usize,
    pub(super) names: Vec<Arc<str>>,
    pub(super) weights: Vec<[f32; 4]>,
    pub(super) category: Vec<[f32; CATEGORIES]>,
}

/// Bias of a model with no trained weights: one declared rule (+[`DEFAULT_RULE_WEIGHT`]) is
/// enough for its label, nothing else is.
///
/// [`DEFAULT_RULE_WEIGHT`]: crate::dictionary::DEFAULT_RULE_WEIGHT
pub(super) const UNTRAINED_BIAS: f32 = -2.0;

impl Default for Model {
    fn default() -> Self {
        Self {
            bias: [UNTRAINED_BIAS; 4],
            category_bias: [0.0; CATEGORIES],
            index: FxHashMap::default(),
            ngrams: FxHashMap::default(),
            max_ngram: 0,
            names: Vec::new(),
            weights: Vec::new(),
            category: Vec::new(),
        }
    }
}

/// The column names after the feature name.
fn columns() -> Vec<&'static str> {
    Label::SCORED.iter().map(|l| l.as_str()).chain(AbuseCategory::ALL.iter().map(|c| c.as_str())).collect()
}

impl Model {
    /// Reads a TSV model: `feature`, then weights toward question, purchase_intent, spam, abuse
    /// and (optionally) the six abuse categories; `#` comments; one `bias` row. Every problem names
    /// its line; a feature listed twice is one.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let file = std::fs::File::open(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let mut model = Model::default();
        let mut seen_bias = false;
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| ModelError::Io { path: path.into(), source })?;
            let parse = |message: String| ModelError::Parse { path: path.into(), line: n + 1, message };
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let name = cols.next().unwrap_or_default();
            let values: Vec<&str> = cols.collect();
            if values.len() != 4 && values.len() != 4 + CATEGORIES {
                return Err(parse(format!("expected {} or {} tab-separated columns", 5, 5 + CATEGORIES)));
            }
            let mut w = [0f32; 4 + CATEGORIES];
            for (slot, col) in w.iter_mut().zip(&values) {
                *slot = col.trim().parse().map_err(|e| parse(format!("bad weight '{col}': {e}")))?;
                if !slot.is_finite() {
                    return Err(parse(format!("weight '{col}' is not finite")));
                }
            }
            let (labels, categories) = split(&w);
            if name == "bias" {
                if seen_bias {
                    return Err(parse("a second bias row".into()));
                }
                seen_bias = true;
                model.bias = labels;
                model.category_bias = categories;
            } else {
                if name.is_empty() {
                    return Err(parse("empty feature name".into()));
                }
                if model.index.contains_key(name) {
                    return Err(parse(format!("feature '{name}' is listed twice")));
                }
                if name.starts_with(ngram::PREFIX) && ngram::parse(name).is_none() {
                    return Err(parse(format!("'{name}' is no character n-gram (letters, ^ first, $ last)")));
                }
                model.insert(name, labels, categories);
            }
        }
        Ok(model)
    }

    pub(super) fn insert(&mut self, name: &str, w: [f32; 4], c: [f32; CATEGORIES]) {
        let id = self.names.len() as u32;
        self.index.insert(name.to_string(), id);
        if let Some((hash, len)) = ngram::parse(name) {
            self.ngrams.insert(hash, id);
            self.max_ngram = self.max_ngram.max(len);
        }
        self.names.push(name.into());
        self.weights.push(w);
        self.category.push(c);
    }

    /// Writes the model as TSV, features sorted by name.
    pub fn save(&self, path: &Path, header: &str) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in header.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "# feature\t{}", columns().join("\t"))?;
        let row = |w: &[f32; 4], c: &[f32; CATEGORIES]| {
            w.iter().chain(c).map(|x| format!("{:.3}", x + 0.0)).collect::<Vec<_>>().join("\t")
        };
        writeln!(out, "bias\t{}", row(&self.bias, &self.category_bias))?;
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        for i in order {
            writeln!(out, "{}\t{}", self.names[i], row(&self.weights[i], &self.category[i]))?;
        }
        out.flush()
    }

    /// Number of features with weights.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the model has no features.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of character n-gram features.
    pub fn ngram_count(&self) -> usize {
        self.ngrams.len()
    }

    /// The longest character n-gram the model has (0 without any).
    pub fn max_ngram(&self) -> usize {
        self.max_ngram
    }

    /// The weights of a feature toward the four labels, if the model has it.
    pub fn weights_of(&self, name: &str) -> Option<[f32; 4]> {
        self.feature(name).map(|id| self.weights[id as usize])
    }

    /// The weights of a feature toward the six abuse categories, if the model has it.
    pub fn category_weights_of(&self, name: &str) -> Option<[f32; CATEGORIES]> {
        self.feature(name).map(|id| self.category[id as usize])
    }

    /// Every feature name, in the model's order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }

    pub(super) fn feature(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub(super) fn ngram(&self, hash: u64) -> Option<u32> {
        self.ngrams.get(&hash).copied()
    }

    /// Trains a model by L2-regularized logistic regression (full-batch AdaGrad): one per label
    /// over every example, and one per abuse category over the examples that name a category.
    /// The model learns the residual on top of each example's fixed prior (its declared rules),
    /// so a rule seen rarely in training keeps its declared strength. Deterministic for the same
    /// input.
    pub fn train(examples: &[Example], options: &TrainOptions) -> Model {
        let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
        for Example { features: feats, .. } in examples {
            for f in feats {
                *counts.entry(f.as_str()).or_default() += 1;
            }
        }
        let keep = |name: &str, count: usize| match ngram::parse(name) {
            Some((_, len)) => options.ngrams.0 <= len && len <= options.ngrams.1 && count >= options.min_ngram_count,
            None => count >= options.min_count || name.starts_with("ja."),
        };
        let mut names: Vec<&str> = counts.iter().filter(|(name, c)| keep(name, **c)).map(|(n, _)| *n).collect();
        names.sort_unstable();
        let index: FxHashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let rows: Vec<Vec<usize>> = examples
            .iter()
            .map(|Example { features: feats, .. }| {
                let mut r: Vec<usize> = feats.iter().filter_map(|f| index.get(f.as_str()).copied()).collect();
                r.sort_unstable();
                r.dedup();
                r
            })
            .collect();
        let mut model = Model::default();
        let mut weights = vec![[0f32; 4]; names.len()];
        let mut category = vec![[0f32; CATEGORIES]; names.len()];
        let all: Vec<usize> = (0..examples.len()).collect();
        for (li, label) in Label::SCORED.into_iter().enumerate() {
            let y: Vec<f32> = examples.iter().map(|e| f32::from(u8::from(e.labels.contains(label)))).collect();
            let prior: Vec<f32> = examples.iter().map(|e| e.prior[li]).collect();
            let (w, b) = fit(&rows, &all, &y, &prior, names.len(), options);
            model.bias[li] = b;
            for (j, wj) in w.into_iter().enumerate() {
                weights[j][li] = wj;
            }
        }
        let abusive: Vec<usize> = (0..examples.len()).filter(|&i| examples[i].category.is_some()).collect();
        if !abusive.is_empty() {
            for c in AbuseCategory::ALL {
                let y: Vec<f32> = examples.iter().map(|e| f32::from(u8::from(e.category == Some(c)))).collect();
                let prior: Vec<f32> = examples.iter().map(|e| e.category_prior[c.index()]).collect();
                let (w, b) = fit(&rows, &abusive, &y, &prior, names.len(), options);
                model.category_bias[c.index()] = b;
                for (j, wj) in w.into_iter().enumerate() {
                    category[j][c.index()] = wj;
                }
            }
        }
        for ((name, w), c) in names.iter().zip(weights).zip(category) {
            if w.iter().chain(&c).any(|x| x.abs() >= options.min_weight) {
                model.insert(name, w, c);
            }
        }
        model
    }
}

fn split(w: &[f32; 4 + CATEGORIES]) -> ([f32; 4], [f32; CATEGORIES]) {
    let mut labels = [0f32; 4];
    let mut categories = [0f32; CATEGORIES];
    labels.copy_from_slice(&w[..4]);
    categories.copy_from_slice(&w[4..]);
    (labels, categories)
}

/// One binary logistic regression over the examples `which`: weights and bias.
fn fit(
    rows: &[Vec<usize>],
    which: &[usize],
    y: &[f32],
    prior: &[f32],
    features: usize,
    options: &TrainOptions,
) -> (Vec<f32>, f32) {
    let mut w = vec![0f32; features];
    let mut b = 0f32;
    let mut gw = vec![0f32; features];
    let mut hw = vec![1e-8f32; features];
    let (mut hb, lr) = (1e-8f32, 0.5f32);
    let n = which.len().max(1) as f32;
    for _ in 0..options.epochs {
        gw.iter_mut().for_each(|g| *g = 0.0);
        let mut gb = 0f32;
        for &i in which {
            let row = &rows[i];
            let z = prior[i] + b + row.iter().map(|&j| w[j]).sum::<f32>();
            let err = sigmoid(z) - y[i];
            gb += err;
            for &j in row {
                gw[j] += err;
            }
        }
        for j in 0..w.len() {
            let g = gw[j] / n + options.l2 * w[j];
            hw[j] += g * g;
            w[j] -= lr * g / hw[j].sqrt();
        }
        let g = gb / n;
        hb += g * g;
        b -= lr * g / hb.sqrt();
    }
    (w, b)
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    /// Word and cue features seen in fewer examples than this are dropped (dictionary rules are
    /// always kept).
    pub min_count: usize,
    /// Character n-grams seen in fewer examples than this are dropped.
    pub min_ngram_count: usize,
    /// The n-gram lengths kept, in units (a start or end mark counts as one).
    pub ngrams: (usize, usize),
    /// L2 penalty.
    pub l2: f32,
    pub epochs: usize,
    /// Features whose every weight is smaller than this are left out of the file.
    pub min_weight: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { min_count: 2, min_ngram_count: 3, ngrams: (2, 3), l2: 0.0001, epochs: 300, min_weight: 0.02 }
    }
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Vec<String>,
    pub labels: LabelSet,
    /// Sum of declared-rule priors, per scored label.
    pub prior: [f32; 4],
    /// The abuse category, on abusive examples that name one.
    pub category: Option<AbuseCategory>,
    /// Sum of category-section priors, per category.
    pub category_prior: [f32; CATEGORIES],
}

pub(super) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(features: &[&str], labels: &[Label], category: Option<AbuseCategory>) -> Example {
        Example {
            features: features.iter().map(|s| s.to_string()).collect(),
            labels: labels.iter().copied().collect(),
            prior: [0.0; 4],
            category,
            category_prior: [0.0; CATEGORIES],
        }
    }

    #[test]
    fn a_saved_model_loads_back_with_its_ngrams() {
        let examples: Vec<Example> = (0..6)
            .flat_map(|_| {
                [
                    example(&["w:殺す", "c:ころ"], &[Label::Abuse], Some(AbuseCategory::Threat)),
                    example(&["w:ブス", "c:ぶす"], &[Label::Abuse], Some(AbuseCategory::Appearance)),
                    example(&["w:在庫", "c:ざい"], &[Label::Question], None),
                ]
            })
            .collect();
        let model = Model::train(&examples, &TrainOptions { min_ngram_count: 2, ..TrainOptions::default() });
        assert!(model.weights_of("w:殺す").unwrap()[3] > 0.5);
        assert!(model.category_weights_of("c:ころ").unwrap()[AbuseCategory::Threat.index()] > 0.1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tsv");
        model.save(&path, "test").unwrap();
        let back = Model::load(&path).unwrap();
        assert_eq!(back.len(), model.len());
        assert_eq!(back.ngram_count(), 3);
        assert_eq!(back.max_ngram(), 2);
        let (hash, _) = ngram::parse("c:ぶす").unwrap();
        assert_eq!(back.ngram(hash), back.feature("c:ぶす"));
    }

    #[test]
    fn broken_rows_are_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tsv");
        for (body, line, what) in [
            ("# c\nbias\t0\t0\t0\t0\nw:a\t1\t2\n", 3, "columns"),
            ("w:a\t1\t2\t3\tx\n", 1, "bad weight"),
            ("w:a\t1\t2\t3\t4\nw:a\t1\t2\t3\t4\n", 2, "twice"),
            ("c:a!\t1\t2\t3\t4\n", 1, "n-gram"),
            ("w:a\t1\t2\t3\tinf\n", 1, "finite"),
        ] {
            std::fs::write(&path, body).unwrap();
            let err = Model::load(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("m.tsv:{line}:")) && err.contains(what), "{err}");
        }
        std::fs::write(&path, "bias\t0\t0\t0\t0\nw:a\t1\t2\t3\t4\n").unwrap();
        let old = Model::load(&path).unwrap();
        assert_eq!(old.category_weights_of("w:a"), Some([0.0; CATEGORIES]), "four columns still load");
    }
}
