//! The linear model: a bias and one row of weights per feature, toward each scored label and
//! each abuse category, kept as a reviewable TSV file written by `kotae train`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::abuse::{AbuseCategory, CATEGORIES};
use super::ngram;
use crate::label::{Label, LabelSet};

/// A model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file could not be read.
    #[error("model {path}: {source}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed: wrong column count, a weight that is not a finite number, a second
    /// bias row, or a feature name empty, listed twice or not a valid n-gram.
    #[error("model {path}:{line}: {message}")]
    Parse {
        /// The model file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Linear model weights: a bias and a weight per feature, for each scored label and each abuse
/// category.
#[derive(Debug, Clone)]
pub struct Model {
    /// Bias toward question, purchase_intent, spam, abuse.
    pub bias: [f32; 4],
    /// Bias toward each abuse category ([`AbuseCategory::ALL`] order).
    pub category_bias: [f32; CATEGORIES],
    index: FxHashMap<Arc<str>, u32>,
    /// Character n-gram features by the hash of their characters ([`ngram`]).
    ngrams: NgramTable,
    /// The shortest and longest n-gram the model has, in units.
    min_ngram: usize,
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
            ngrams: NgramTable::default(),
            min_ngram: 0,
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
    /// and (when any is not zero) the six abuse categories; `#` comments; one `bias` row. Every
    /// problem names its line; a feature listed twice is one.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let mut model = Model::default();
        let mut seen_bias = false;
        for (n, line) in text.lines().enumerate() {
            let parse = |message: String| ModelError::Parse { path: path.into(), line: n + 1, message };
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = tab_fields(line);
            let name = cols.next().unwrap_or_default();
            let mut w = [0f32; 4 + CATEGORIES];
            let mut n = 0;
            for col in cols {
                let Some(slot) = w.get_mut(n) else {
                    n += 1;
                    break;
                };
                *slot = parse_weight(col).map_err(|e| parse(format!("bad weight '{col}': {e}")))?;
                if !slot.is_finite() {
                    return Err(parse(format!("weight '{col}' is not finite")));
                }
                n += 1;
            }
            if n != 4 && n != 4 + CATEGORIES {
                return Err(parse(format!("expected {} or {} tab-separated columns", 5, 5 + CATEGORIES)));
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
        model.seal();
        Ok(model)
    }

    pub(super) fn insert(&mut self, name: &str, w: [f32; 4], c: [f32; CATEGORIES]) {
        let id = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.index.insert(name.clone(), id);
        if let Some((hash, len)) = ngram::parse(&name) {
            self.ngrams.pending.push((hash, id));
            self.max_ngram = self.max_ngram.max(len);
            self.min_ngram = if self.min_ngram == 0 { len } else { self.min_ngram.min(len) };
        }
        self.names.push(name);
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
        // Category columns only where one is not zero (most features say nothing about them).
        let row = |w: &[f32; 4], c: &[f32; CATEGORIES]| {
            let shown = |x: &f32| format!("{:.3}", x + 0.0);
            let c = if c.iter().all(|x| shown(x) == "0.000") { &[][..] } else { &c[..] };
            w.iter().chain(c).map(shown).collect::<Vec<_>>().join("\t")
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
        self.ngrams.pending.len()
    }

    /// The longest character n-gram the model has (0 without any).
    pub fn max_ngram(&self) -> usize {
        self.max_ngram
    }

    /// The shortest character n-gram the model has (0 without any).
    pub fn min_ngram(&self) -> usize {
        self.min_ngram
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

    /// The id and weights of the n-gram with this hash, once [`Model::seal`]ed.
    pub(super) fn ngram(&self, hash: u64) -> Option<(u32, [f32; 4])> {
        self.ngrams.get(hash)
    }

    /// Builds the n-gram lookup table from the features inserted so far.
    pub(super) fn seal(&mut self) {
        let weights = &self.weights;
        self.ngrams.build(|id| weights[id as usize]);
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
        model.seal();
        model
    }
}

/// Bits of the filter in front of the n-gram table: 32 KB, which stays in the first-level cache,
/// so that most n-grams of a message (those the model lacks) cost no trip to memory.
const FILTER_BITS: u32 = 18;

/// The character n-grams of a model by hash: an open-addressing table with each n-gram's id and
/// weights in its 16-byte slot (one memory access per n-gram found, where a map to ids and an
/// array of weights took two, and a quarter of a megabyte for ten thousand n-grams), behind a
/// bit filter. Weights are kept in thousandths, as the model file writes them. Built once by
/// [`NgramTable::build`].
#[derive(Debug, Clone, Default)]
struct NgramTable {
    /// `(hash, id)` of every n-gram inserted, in order.
    pending: Vec<(u64, u32)>,
    filter: Vec<u64>,
    /// Power-of-two many, at most 70% full; a slot with tag 0 is empty.
    slots: Vec<Slot>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The low half of the hash (0 stored as 1); the high half chose the slot.
    tag: u32,
    id: u32,
    /// Weights in thousandths.
    weights: [i16; 4],
}

impl NgramTable {
    fn tag(hash: u64) -> u32 {
        (hash as u32).max(1)
    }

    fn filter_bit(hash: u64) -> usize {
        (hash >> 20) as usize & ((1 << FILTER_BITS) - 1)
    }

    fn build(&mut self, weights: impl Fn(u32) -> [f32; 4]) {
        let capacity = (self.pending.len() * 10 / 7 + 1).next_power_of_two().max(16);
        self.slots = vec![Slot::default(); capacity];
        self.filter = vec![0; (1 << FILTER_BITS) / 64];
        let mask = capacity - 1;
        for &(hash, id) in &self.pending {
            let bit = Self::filter_bit(hash);
            self.filter[bit / 64] |= 1 << (bit % 64);
            let tag = Self::tag(hash);
            let mut i = (hash >> 32) as usize & mask;
            while self.slots[i].tag != 0 && self.slots[i].tag != tag {
                i = (i + 1) & mask;
            }
            let thousandths = weights(id).map(|w| (w * 1000.0).round().clamp(-32767.0, 32767.0) as i16);
            self.slots[i] = Slot { tag, id, weights: thousandths };
        }
    }

    fn get(&self, hash: u64) -> Option<(u32, [f32; 4])> {
        let bit = Self::filter_bit(hash);
        if self.filter.get(bit / 64).is_none_or(|w| w & (1 << (bit % 64)) == 0) {
            return None;
        }
        let mask = self.slots.len().checked_sub(1)?;
        let tag = Self::tag(hash);
        let mut i = (hash >> 32) as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.tag == tag {
                return Some((slot.id, slot.weights.map(|w| f32::from(w) / 1000.0)));
            }
            if slot.tag == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

/// A weight as the file writes them (`-0.123`), read without the general float parser (a model
/// has tens of thousands); anything else goes through it.
fn parse_weight(col: &str) -> Result<f32, std::num::ParseFloatError> {
    let t = col.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t),
    };
    let dot = digits.bytes().position(|b| b == b'.');
    if let Some((int, frac)) = dot.map(|d| (&digits[..d], &digits[d + 1..]))
        && (1..=4).contains(&int.len())
        && frac.len() == 3
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        let whole = int.bytes().chain(frac.bytes()).fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
        let v = whole as f32 / 1000.0;
        return Ok(if negative { -v } else { v });
    }
    t.parse()
}

/// The tab-separated fields of a line, found byte by byte: rows are short, and a model has
/// tens of thousands of them.
fn tab_fields(line: &str) -> impl Iterator<Item = &str> {
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        match line.as_bytes()[from..].iter().position(|&b| b == b'\t') {
            Some(i) => {
                start = Some(from + i + 1);
                line.get(from..from + i)
            }
            None => {
                start = None;
                line.get(from..)
            }
        }
    })
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
    /// Passes of full-batch gradient descent over every example, per label and per category.
    pub epochs: usize,
    /// Features whose every weight is smaller than this are left out of the file.
    pub min_weight: f32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { min_count: 2, min_ngram_count: 3, ngrams: (2, 2), l2: 0.0001, epochs: 300, min_weight: 0.02 }
    }
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its feature names, as [`Classifier::features`](super::Classifier::features) spells them.
    pub features: Vec<String>,
    /// The labels it has (empty for `other`).
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
        assert_eq!(back.ngram(hash).map(|(id, _)| id), back.feature("c:ぶす"));
        assert_eq!(back.ngram(hash).map(|(_, w)| w), back.weights_of("c:ぶす"));
        let (other, _) = ngram::parse("c:ぶた").unwrap();
        assert_eq!(back.ngram(other), None);
    }

    #[test]
    fn broken_rows_are_named_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.tsv");
        for (text, want) in [("0.000", 0.0f32), ("-1.250", -1.25), ("12.5", 12.5), ("3e-2", 0.03), ("-0.007", -0.007)] {
            assert_eq!(parse_weight(text), Ok(want), "{text}");
        }
        assert_eq!(tab_fields("a\tb\t\tc").collect::<Vec<_>>(), ["a", "b", "", "c"]);
        assert_eq!(tab_fields("c:ぶす").collect::<Vec<_>>(), ["c:ぶす"]);
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
