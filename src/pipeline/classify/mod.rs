//! Multi-label classification: question, purchase intent, spam, abuse (else other).
//!
//! Every message is described by sparse binary features, each with a rule id and a span:
//! dictionary rules (`ja.question.masuka`), token and part-of-speech cues (`ja.tok.final.か`,
//! `ja.tok.te_end`), structural cues (`ja.struct.url`, `ja.struct.mention`) and base-form words
//! (`w:在庫`, `e:ある`). A linear model per label, kept as a reviewable TSV file and trained by
//! `kotae train` on the development fixtures, turns them into scores. The features that pushed a
//! label up are its reasons. Floods (one unit repeated 8+ times) are spam by rule.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::dictionary::{DEFAULT_RULE_WEIGHT, Dictionaries, Hit, ListKind, Rule};
use crate::label::{Action, Label, LabelSet};
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Conj, Pos, Sub, Token, Tokens};

/// Configuration of the classify stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Linear model weights (TSV written by `kotae train`), relative to the dictionary directory
    /// when not absolute.
    #[serde(default = "ClassifyConfig::default_model")]
    pub model: PathBuf,
    /// Score at or above which a label is given, per label: question, purchase_intent, spam, abuse.
    #[serde(default = "ClassifyConfig::default_thresholds")]
    pub thresholds: [f32; 4],
    /// Spam or abuse scoring at least this is blocked; between the label threshold and this, held.
    #[serde(default = "ClassifyConfig::default_block_at")]
    pub block_at: f32,
}

impl ClassifyConfig {
    fn default_model() -> PathBuf {
        PathBuf::from("model/ja.tsv")
    }
    fn default_thresholds() -> [f32; 4] {
        [0.5, 0.5, 0.5, 0.5]
    }
    fn default_block_at() -> f32 {
        0.8
    }
}

impl Default for ClassifyConfig {
    fn default() -> Self {
        Self {
            model: Self::default_model(),
            thresholds: Self::default_thresholds(),
            block_at: Self::default_block_at(),
        }
    }
}

/// A model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("model {path}:{line}: {message}")]
    Parse { path: PathBuf, line: usize, message: String },
}

/// Why a label was given: the rule (feature) and the byte span of the original text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    pub label: Label,
    pub rule: Arc<str>,
    pub span: [u32; 2],
}

/// The output of the classify stage for one message.
#[derive(Debug, Clone, Default)]
pub struct Classification {
    /// Scores for question, purchase_intent, spam, abuse.
    pub scores: [f32; 4],
    pub labels: LabelSet,
    pub reasons: Vec<Reason>,
    /// Whether the message is a flood (one unit repeated 8+ times).
    pub flood: bool,
}

impl Classification {
    /// The default action for these labels and scores.
    pub fn action(&self, config: &ClassifyConfig) -> Action {
        let bad = [Label::Spam, Label::Abuse]
            .into_iter()
            .filter(|l| self.labels.contains(*l))
            .map(|l| self.scores[l.index()])
            .fold(None, |m: Option<f32>, s| Some(m.map_or(s, |m| m.max(s))));
        match bad {
            Some(s) if s >= config.block_at => Action::Block,
            Some(_) => Action::Hold,
            None => Action::Allow,
        }
    }
}

/// Linear model weights: a bias and a weight per feature, for each scored label.
#[derive(Debug, Clone)]
pub struct Model {
    pub bias: [f32; 4],
    index: FxHashMap<String, u32>,
    names: Vec<Arc<str>>,
    weights: Vec<[f32; 4]>,
}

/// Bias of a model with no trained weights: one declared rule (+[`DEFAULT_RULE_WEIGHT`]) is
/// enough for its label, nothing else is.
const UNTRAINED_BIAS: f32 = -2.0;

impl Default for Model {
    fn default() -> Self {
        Self { bias: [UNTRAINED_BIAS; 4], index: FxHashMap::default(), names: Vec::new(), weights: Vec::new() }
    }
}

impl Model {
    /// Reads a TSV model: `feature<TAB>w_question<TAB>w_purchase<TAB>w_spam<TAB>w_abuse`, `#` comments,
    /// and one `bias` row.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let file = std::fs::File::open(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let mut model = Model::default();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| ModelError::Io { path: path.into(), source })?;
            let parse = |message: String| ModelError::Parse { path: path.into(), line: n + 1, message };
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut cols = line.split('\t');
            let name = cols.next().unwrap_or_default();
            let mut w = [0f32; 4];
            for slot in &mut w {
                let col = cols.next().ok_or_else(|| parse("expected 5 tab-separated columns".into()))?;
                *slot = col.trim().parse().map_err(|e| parse(format!("bad weight '{col}': {e}")))?;
            }
            if name == "bias" {
                model.bias = w;
            } else {
                model.insert(name, w);
            }
        }
        Ok(model)
    }

    fn insert(&mut self, name: &str, w: [f32; 4]) {
        let id = self.names.len() as u32;
        self.index.insert(name.to_string(), id);
        self.names.push(name.into());
        self.weights.push(w);
    }

    /// Writes the model as TSV, features sorted by name.
    pub fn save(&self, path: &Path, header: &str) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in header.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "# feature\tquestion\tpurchase_intent\tspam\tabuse")?;
        let row = |w: &[f32; 4]| w.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join("\t");
        writeln!(out, "bias\t{}", row(&self.bias))?;
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].cmp(&self.names[b]));
        for i in order {
            writeln!(out, "{}\t{}", self.names[i], row(&self.weights[i]))?;
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

    /// The weights of a feature, if the model has it.
    pub fn weights_of(&self, name: &str) -> Option<[f32; 4]> {
        self.feature(name).map(|id| self.weights[id as usize])
    }

    fn feature(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// Trains a model by L2-regularized logistic regression (full-batch AdaGrad), one per label.
    /// `examples` are feature-name sets, labels, and the fixed prior of their declared rules: the
    /// model learns the residual on top of that prior, so a rule seen rarely in training keeps its
    /// declared strength. Deterministic for the same input.
    pub fn train(examples: &[Example], min_count: usize, l2: f32, epochs: usize) -> Model {
        let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
        for Example { features: feats, .. } in examples {
            for f in feats {
                *counts.entry(f.as_str()).or_default() += 1;
            }
        }
        let mut names: Vec<&str> =
            counts.iter().filter(|(name, c)| **c >= min_count || name.starts_with("ja.")).map(|(n, _)| *n).collect();
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
        for (li, label) in Label::SCORED.into_iter().enumerate() {
            let y: Vec<f32> = examples.iter().map(|e| if e.labels.contains(label) { 1.0 } else { 0.0 }).collect();
            let mut w = vec![0f32; names.len()];
            let mut b = 0f32;
            let mut gw = vec![0f32; names.len()];
            let mut hw = vec![1e-8f32; names.len()];
            let (mut hb, lr) = (1e-8f32, 0.5f32);
            let n = examples.len().max(1) as f32;
            for _ in 0..epochs {
                gw.iter_mut().for_each(|g| *g = 0.0);
                let mut gb = 0f32;
                for ((row, &yi), ex) in rows.iter().zip(&y).zip(examples) {
                    let z = ex.prior[li] + b + row.iter().map(|&j| w[j]).sum::<f32>();
                    let err = sigmoid(z) - yi;
                    gb += err;
                    for &j in row {
                        gw[j] += err;
                    }
                }
                for j in 0..w.len() {
                    let g = gw[j] / n + l2 * w[j];
                    hw[j] += g * g;
                    w[j] -= lr * g / hw[j].sqrt();
                }
                let g = gb / n;
                hb += g * g;
                b -= lr * g / hb.sqrt();
            }
            model.bias[li] = b;
            for j in 0..w.len() {
                weights[j][li] = w[j];
            }
        }
        for (name, w) in names.iter().zip(weights) {
            if w.iter().any(|x| x.abs() >= 0.005) {
                model.insert(name, w);
            }
        }
        model
    }
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Vec<String>,
    pub labels: LabelSet,
    /// Sum of declared-rule priors, per scored label.
    pub prior: [f32; 4],
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// A feature occurrence: its name, the dictionary rule it came from (if any), its original span.
#[derive(Debug, Clone, Copy)]
pub struct Feature<'a> {
    pub name: &'a str,
    pub rule: Option<u16>,
    pub span: (u32, u32),
}

/// A feature occurrence as extracted, before its name is spelled out.
#[derive(Debug, Clone, Copy)]
struct Cue<'a> {
    key: Key<'a>,
    rule: Option<u16>,
    span: (u32, u32),
}

/// What names a feature. Names made of a prefix and a word are kept in parts: spelling them costs
/// a copy, and [`Classifier::classify`] finds the model ids of dictionary words without it.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    /// A rule id or a fixed cue name.
    Name(&'a str),
    /// A fixed prefix followed by a variable part (`ja.tok.end_pos.` and a part of speech).
    Prefixed(&'static str, &'a str),
    /// A feature of one word: its kind's prefix followed by the word's base form. `word` is the
    /// dictionary word ([`Token::word`]), by which the classifier keeps the feature's model id.
    Word { kind: WordFeature, base: &'a str, word: Option<u32> },
    /// The last two words, `e2:<previous base>|<last base>`: too many pairs to keep by word.
    Pair(&'a str, &'a str),
}

impl<'a> Key<'a> {
    /// The feature name; spelled in `buf` unless it is a fixed one.
    fn spell<'s>(self, buf: &'s mut String) -> &'s str
    where
        'a: 's,
    {
        let parts = match self {
            Key::Name(name) => return name,
            Key::Prefixed(prefix, rest) => [prefix, rest, "", ""],
            Key::Word { kind, base, .. } => [kind.prefix(), base, "", ""],
            Key::Pair(prev, last) => ["e2:", prev, "|", last],
        };
        buf.clear();
        parts.iter().for_each(|p| buf.push_str(p));
        buf
    }
}

/// The features named after one word's base form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordFeature {
    /// `w:<base>`: every word of the message.
    Word,
    /// `e:<base>`: the last word.
    End,
    /// `ja.tok.final.<base>`: the last word when it is a particle (or の).
    Final,
}

impl WordFeature {
    const COUNT: usize = 3;

    fn prefix(self) -> &'static str {
        match self {
            WordFeature::Word => "w:",
            WordFeature::End => "e:",
            WordFeature::Final => "ja.tok.final.",
        }
    }
}

/// Dictionaries and model joined: what the classify stage reads. Immutable, swapped whole.
#[derive(Debug)]
pub struct Classifier {
    pub dictionaries: Arc<Dictionaries>,
    pub model: Arc<Model>,
    pub config: ClassifyConfig,
    /// For each dictionary rule, its feature in the model.
    rule_feature: Vec<Option<u32>>,
    host_rule: Vec<bool>,
    /// For synonym rules whose family (`color` of `color_black`) has several values, its hash.
    slot_family: Vec<Option<u64>>,
}

impl Classifier {
    /// Joins dictionaries and model.
    pub fn new(dictionaries: Arc<Dictionaries>, model: Arc<Model>, config: ClassifyConfig) -> Self {
        let rule_feature = dictionaries.rules().iter().map(|r| model.feature(&r.id)).collect();
        let host_rule = dictionaries.rules().iter().map(|r| &*r.id == "ja.addressee.host").collect();
        let rules = dictionaries.rules();
        // The family of a synonym rule (`color` of `color_black`), counted over all synonym rules
        // first: a family with one rule in it is no choice between values.
        fn family(r: &Rule) -> Option<&str> {
            match r.kind {
                ListKind::Synonym => r.section.split_once('_').map(|(f, _)| f),
                _ => None,
            }
        }
        let mut siblings: FxHashMap<&str, usize> = FxHashMap::default();
        for f in rules.iter().filter_map(family) {
            *siblings.entry(f).or_default() += 1;
        }
        let slot_family = rules
            .iter()
            .map(|r| family(r).filter(|f| siblings[f] > 1).map(crate::pipeline::dedupe::hash_str))
            .collect();
        Self { dictionaries, model, config, rule_feature, host_rule, slot_family }
    }

    /// Whether a slot family describes the product itself (size, colour, number), so that asking
    /// whether it exists is asking about stock.
    pub fn is_attribute_family(&self, family: u64) -> bool {
        ["size", "color", "num"].iter().any(|f| crate::pipeline::dedupe::hash_str(f) == family)
    }

    /// The slot family of a synonym rule, if its values exclude each other.
    pub fn slot_family(&self, rule: u16) -> Option<u64> {
        self.slot_family[rule as usize]
    }

    /// Extracts features of one message, calling `emit` for each with its name (spelled in
    /// `scratch` when not fixed).
    pub fn features(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &Tokens,
        hits: &[Hit],
        scratch: &mut String,
        emit: &mut dyn FnMut(Feature<'_>),
    ) {
        self.cues(text, norm, tokens, hits, |c| {
            emit(Feature { name: c.key.spell(scratch), rule: c.rule, span: c.span })
        });
    }

    /// Extracts features of one message, calling `emit` for each, unspelled: [`Classifier::classify`]
    /// resolves per-word features by word, [`Classifier::features`] spells every name.
    fn cues<'a>(
        &'a self,
        text: &str,
        norm: &Normalized,
        tokens: &'a Tokens,
        hits: &[Hit],
        mut emit: impl FnMut(Cue<'a>),
    ) {
        let whole = (0, text.len() as u32);
        let rules = self.dictionaries.rules();
        for h in hits {
            let r = &rules[h.rule as usize];
            if matches!(r.kind, ListKind::Synonym | ListKind::Allow) {
                continue;
            }
            let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
            emit(Cue { key: Key::Name(&r.id), rule: Some(h.rule), span: (s as u32, e as u32) });
        }
        let surface = norm.surface.as_str();
        let span_of = |t: &Token| {
            let (s, e) = norm.surface.original_span(t.start as usize, t.end as usize);
            (s as u32, e as u32)
        };
        // Structural cues.
        let trimmed = surface.trim_start();
        if trimmed.starts_with('@') {
            let to_host = hits.iter().any(|h| self.host_rule[h.rule as usize] && h.start < 24);
            if !to_host {
                emit(Cue { key: Key::Name("ja.struct.mention"), rule: None, span: whole });
            }
        }
        let chars = surface.chars().filter(|c| !c.is_whitespace()).count();
        let len = match chars {
            0..=3 => "ja.struct.len.1_3",
            4..=8 => "ja.struct.len.4_8",
            9..=20 => "ja.struct.len.9_20",
            _ => "ja.struct.len.21_",
        };
        emit(Cue { key: Key::Name(len), rule: None, span: whole });
        if let Some(span) = find_url(surface) {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.url"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = find_phone(surface) {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.phone"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = find_handle(surface) {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.handle"), rule: None, span: (s as u32, e as u32) });
        }
        if surface.bytes().any(|b| b.is_ascii_digit()) {
            emit(Cue { key: Key::Name("ja.struct.digit"), rule: None, span: whole });
        }
        // Sentence-final punctuation.
        let tail = surface.trim_end_matches(|c: char| c.is_whitespace() || is_decoration(c));
        let (mut ends_q, mut ends_excl) = (false, false);
        for c in tail.chars().rev().take_while(|c| matches!(c, '?' | '!' | '？' | '！')) {
            ends_q |= c == '?';
            ends_excl |= c == '!';
        }
        if ends_q && ends_excl {
            emit(Cue { key: Key::Name("ja.tok.qmark_excl"), rule: None, span: whole });
        } else if ends_q {
            emit(Cue { key: Key::Name("ja.tok.qmark"), rule: None, span: whole });
        } else if ends_excl {
            emit(Cue { key: Key::Name("ja.tok.excl"), rule: None, span: whole });
        }
        if !ends_q && surface.contains('?') {
            emit(Cue { key: Key::Name("ja.tok.qmark_inner"), rule: None, span: whole });
        }
        // Token cues: the last words of the message carry most of its mood.
        let is_word = |t: &&Token| t.pos != Pos::Symbol && !is_decoration_token(surface, t);
        let mut from_end = tokens.list.iter().rev().filter(is_word);
        let (last, prev) = (from_end.next(), from_end.next());
        if let Some(last) = last {
            let span = span_of(last);
            let base = tokens.base(last);
            let word = |kind| Key::Word { kind, base, word: last.word() };
            emit(Cue { key: Key::Prefixed("ja.tok.end_pos.", last.pos.name()), rule: None, span });
            if last.pos == Pos::Particle || base == "の" {
                emit(Cue { key: word(WordFeature::Final), rule: None, span });
            }
            let te = last.pos == Pos::Particle && last.sub == Sub::Conjunctive && (base == "て" || base == "で");
            if te && let Some(prev) = prev.filter(|p| p.pos == Pos::Verb) {
                emit(Cue { key: Key::Name("ja.tok.te_end"), rule: None, span: (span_of(prev).0, span.1) });
            }
            if last.pos == Pos::Verb && last.conj == Conj::Imperative {
                emit(Cue { key: Key::Name("ja.tok.imperative"), rule: None, span });
            }
            if let Some(prev) = prev {
                let nai = base == "ない" && (last.pos == Pos::AuxVerb || last.pos == Pos::Adjective);
                if nai && prev.pos == Pos::Adjective && ends_q {
                    emit(Cue { key: Key::Name("ja.tok.adj_nai_q"), rule: None, span: (span_of(prev).0, span.1) });
                }
                emit(Cue { key: Key::Pair(tokens.base(prev), base), rule: None, span: (span_of(prev).0, span.1) });
            }
            emit(Cue { key: word(WordFeature::End), rule: None, span });
        }
        for t in tokens.list.iter().filter(is_word) {
            let key = Key::Word { kind: WordFeature::Word, base: tokens.base(t), word: t.word() };
            emit(Cue { key, rule: None, span: span_of(t) });
        }
    }

    /// Classifies one message.
    pub fn classify(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &Tokens,
        hits: &[Hit],
        scratch: &mut Scratch,
        out: &mut Classification,
    ) {
        let mut z = self.model.bias;
        let rules = self.dictionaries.rules();
        scratch.counted.start(&scratch.active, self.model.len() + rules.len());
        scratch.active.clear();
        scratch.words.prepare(&self.model, tokens.vocabulary());
        {
            let Scratch { active, counted, name, words, .. } = scratch;
            let model = &self.model;
            let rule_feature = &self.rule_feature;
            self.cues(text, norm, tokens, hits, |f| {
                let (id, mut weight) = match f.rule.map(|r| (r, rule_feature[r as usize])) {
                    Some((_, Some(id))) => (id, model.weights[id as usize]),
                    Some((r, None)) => ((model.len() + r as usize) as u32, [0f32; 4]),
                    None => {
                        let id = match f.key {
                            Key::Word { kind, base, word: Some(word) } => words.get(model, word, kind, base, name),
                            key => model.feature(key.spell(name)),
                        };
                        let Some(id) = id else { return };
                        (id, model.weights[id as usize])
                    }
                };
                if let Some(l) = f.rule.and_then(|r| rules[r as usize].declared) {
                    weight[l.index()] += DEFAULT_RULE_WEIGHT;
                }
                // A feature counts once per message, however many times it matched.
                if counted.insert(id) {
                    active.push(Active { id, weight, span: f.span, rule: f.rule });
                }
            });
        }
        for a in &scratch.active {
            for (zi, wi) in z.iter_mut().zip(a.weight) {
                *zi += wi;
            }
        }
        out.reasons.clear();
        out.labels = LabelSet::default();
        for (score, zi) in out.scores.iter_mut().zip(z) {
            *score = sigmoid(zi);
        }
        out.flood = is_flood_with(norm.surface.as_str(), &mut scratch.chars);
        if out.flood {
            out.scores[Label::Spam.index()] = out.scores[Label::Spam.index()].max(0.99);
        }
        for (i, label) in Label::SCORED.into_iter().enumerate() {
            if out.scores[i] >= self.config.thresholds[i] {
                out.labels.insert(label);
            }
        }
        if out.flood {
            out.reasons.push(Reason {
                label: Label::Spam,
                rule: "ja.struct.flood".into(),
                span: [0, text.len() as u32],
            });
        }
        // Reasons: the strongest positive contributions to each given label.
        for label in out.labels.iter() {
            if label == Label::Other {
                continue;
            }
            let li = label.index();
            scratch.order.clear();
            scratch.order.extend((0..scratch.active.len()).filter(|&k| scratch.active[k].weight[li] > 0.3));
            scratch.order.sort_by(|&a, &b| scratch.active[b].weight[li].total_cmp(&scratch.active[a].weight[li]));
            for &k in scratch.order.iter().take(3) {
                let a = &scratch.active[k];
                let rule = match a.rule {
                    Some(r) => rules[r as usize].id.clone(),
                    None => self.model.names[a.id as usize].clone(),
                };
                out.reasons.push(Reason { label, rule, span: [a.span.0, a.span.1] });
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Active {
    /// The model id, or for a rule without a model feature, the model's length plus the rule.
    id: u32,
    weight: [f32; 4],
    span: (u32, u32),
    rule: Option<u16>,
}

/// Reusable buffers of the classify stage.
#[derive(Debug, Default)]
pub struct Scratch {
    active: Vec<Active>,
    chars: Vec<char>,
    order: Vec<usize>,
    name: String,
    words: WordIds,
    counted: Counted,
}

/// The [`Active::id`]s counted in the current message, one bit each: a feature counts once per
/// message, and comparing each new one with every one before it was a quadratic scan.
#[derive(Debug, Default)]
struct Counted(Vec<u64>);

impl Counted {
    /// Forgets the ids of the previous message (`previous`) and makes room for `ids` of them.
    fn start(&mut self, previous: &[Active], ids: usize) {
        for a in previous {
            if let Some(bits) = self.0.get_mut(a.id as usize / 64) {
                *bits = 0;
            }
        }
        self.0.resize(ids.div_ceil(64), 0);
    }

    /// Counts `id`; false if it already was.
    fn insert(&mut self, id: u32) -> bool {
        let (bits, bit) = (&mut self.0[id as usize / 64], 1u64 << (id % 64));
        let new = *bits & bit == 0;
        *bits |= bit;
        new
    }
}

/// Model ids of the features named after dictionary words ([`WordFeature`]), by word
/// ([`Token::word`]): chat reuses a small vocabulary, so rather than spelling `w:<base>` and
/// hashing it for every word of every message, each word is looked up once. The ids hold for one
/// model and one vocabulary ([`Tokens::vocabulary`]); either changing (a reload, another
/// classifier, the tokenizer starting its word cache over) starts this over.
#[derive(Debug, Default)]
struct WordIds {
    /// The model the ids are of. Weak, so that an idle worker does not keep a swapped-out model
    /// alive, yet its allocation (hence its address, compared here) is not reused while held.
    model: Weak<Model>,
    vocabulary: u64,
    /// Per word and [`WordFeature`]: `None` not looked up yet, `Some(None)` not in the model.
    ids: Vec<[Option<Option<u32>>; WordFeature::COUNT]>,
}

impl WordIds {
    /// Forgets the ids unless they are of `model` and `vocabulary`.
    fn prepare(&mut self, model: &Arc<Model>, vocabulary: u64) {
        if self.vocabulary != vocabulary || !std::ptr::eq(self.model.as_ptr(), Arc::as_ptr(model)) {
            self.ids.clear();
            self.model = Arc::downgrade(model);
            self.vocabulary = vocabulary;
        }
    }

    /// The model id of feature `kind` of dictionary word `word` (base form `base`), looked up by
    /// name (spelled in `buf`) the first time.
    fn get(&mut self, model: &Model, word: u32, kind: WordFeature, base: &str, buf: &mut String) -> Option<u32> {
        let word = word as usize;
        if word >= self.ids.len() {
            self.ids.resize(word + 1, [None; WordFeature::COUNT]);
        }
        *self.ids[word][kind as usize]
            .get_or_insert_with(|| model.feature(Key::Word { kind, base, word: None }.spell(buf)))
    }
}

/// Emoji, kaomoji parts and other decoration that says nothing about mood.
fn is_decoration(c: char) -> bool {
    let u = c as u32;
    (0x1F000..=0x1FAFF).contains(&u)
        || (0x2600..=0x27BF).contains(&u)
        || (0x2190..=0x21FF).contains(&u)
        || (0x2B00..=0x2BFF).contains(&u)
        || matches!(
            c,
            '♪' | '♡'
                | '♥'
                | '☆'
                | '★'
                | '〜'
                | '~'
                | 'ー'
                | '…'
                | '‥'
                | '。'
                | '.'
                | '、'
                | ','
                | '・'
                | '｡'
                | '^'
                | '*'
                | '('
                | ')'
                | '（'
                | '）'
                | '´'
                | '`'
                | '＾'
                | '_'
                | 'w'
                | 'W'
                | '笑'
                | '草'
                | '!'
                | '！'
        )
}

fn is_decoration_token(surface: &str, t: &Token) -> bool {
    let s = &surface[t.start as usize..t.end as usize];
    s.chars().all(|c| is_decoration(c) || c.is_whitespace())
}

/// A unit of 1–4 characters repeated 8+ times in a row (applause `8888` excepted; laughter
/// `ｗ`/`草`/`笑` needs 15).
pub fn is_flood(surface: &str) -> bool {
    is_flood_with(surface, &mut Vec::new())
}

/// [`is_flood`] with a reusable buffer.
fn is_flood_with(surface: &str, chars: &mut Vec<char>) -> bool {
    if surface.len() < 8 {
        return false;
    }
    chars.clear();
    chars.extend(surface.chars().filter(|c| !c.is_whitespace()));
    if chars.len() < 8 {
        return false;
    }
    // A unit of `u` characters repeated `r` times is a stretch where chars[i] == chars[i + u]
    // holds for (r - 1) × u positions in a row: one linear scan per unit length.
    for unit in 1..=4usize {
        let mut run = 0usize;
        for i in 0..chars.len().saturating_sub(unit) {
            if chars[i] == chars[i + unit] {
                run += 1;
            } else {
                run = 0;
                continue;
            }
            // Even the loosest threshold (8 repeats) is not reached yet.
            if run + unit < 8 * unit {
                continue;
            }
            let start = i + 1 - run;
            let u = &chars[start..start + unit];
            // A unit that is itself one character repeated is that character's run (unit 1).
            if unit > 1 && u.windows(2).all(|p| p[0] == p[1]) {
                continue;
            }
            let applause = u.iter().all(|c| matches!(c, '8' | '８' | '👏' | '!' | '！'));
            let laugh = u.iter().all(|c| matches!(c, 'w' | 'W' | 'ｗ' | 'Ｗ' | '草' | '笑'));
            let need = if laugh { 15 } else { 8 };
            if !applause && run + unit >= need * unit {
                return true;
            }
        }
    }
    false
}

fn find_url(s: &str) -> Option<(usize, usize)> {
    // Every pattern below has a '.' or a '/'; most chat has neither.
    if !s.bytes().any(|b| b == b'.' || b == b'/') {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    for pat in ["http://", "https://", "www.", "bit.ly", "t.co/", "lin.ee", "line.me"] {
        if let Some(i) = lower.find(pat) {
            let end = lower[i..].find(|c: char| c.is_whitespace() || !c.is_ascii()).map_or(lower.len(), |e| i + e);
            return Some((i, end));
        }
    }
    for tld in [".com", ".jp", ".net", ".ly", ".xyz", ".info", ".io", ".me"] {
        if let Some(i) = lower.find(tld) {
            let start =
                lower[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.')).map_or(0, |p| p + 1);
            if i > start + 1 {
                return Some((start, i + tld.len()));
            }
        }
    }
    None
}

fn find_phone(s: &str) -> Option<(usize, usize)> {
    // Ten or more digits with at most dashes or spaces between them (090-1234-5678).
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            let mut digits = 0;
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'-' || b[j] == b' ') {
                if b[j].is_ascii_digit() {
                    digits += 1;
                }
                j += 1;
            }
            if digits >= 10 {
                return Some((start, j));
            }
            i = j;
        } else {
            i += 1;
        }
    }
    None
}

fn find_handle(s: &str) -> Option<(usize, usize)> {
    // An ID-looking latin token: letters and digits (or _) mixed, 5+ characters (abc123, kira_ac).
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() || b[i] == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let tok = &s[start..i];
            let has_alpha = tok.bytes().any(|c| c.is_ascii_alphabetic());
            let has_other = tok.bytes().any(|c| c.is_ascii_digit() || c == b'_');
            if tok.len() >= 5 && has_alpha && has_other {
                return Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::normalize::{NormalizeConfig, Normalizer};
    use crate::pipeline::tokenize::{TokenizeConfig, Tokenizer, TokenizerShared};

    #[test]
    fn floods_are_units_repeated_eight_times() {
        assert!(is_flood("ああああああああああ"));
        assert!(is_flood("荒らし荒らし荒らし荒らし荒らし荒らし荒らし荒らし"));
        assert!(is_flood("🎁🎁🎁🎁🎁🎁🎁🎁🎁🎁"));
        assert!(!is_flood("88888888888"));
        assert!(!is_flood("ｗｗｗｗｗｗｗｗｗｗ"));
        assert!(is_flood("ｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗｗ"));
        assert!(!is_flood("かわいいいいい"));
        assert!(!is_flood("これって敏感肌でも使えますか"));
    }

    #[test]
    fn urls_phones_and_handles_are_found() {
        assert!(find_url("詳しくは bit.ly/abc へ").is_some());
        assert!(find_url("example.com見て").is_some());
        assert!(find_url("これ可愛い").is_none());
        assert!(find_phone("090-1234-5678まで").is_some());
        assert!(find_phone("3番2点").is_none());
        assert!(find_handle("ID→ abc123").is_some());
        assert!(find_handle("Mサイズ").is_none());
    }

    /// A model with the given features, each weighing +4 toward one label, ids in this order.
    fn model(features: &[(&str, Label)]) -> Arc<Model> {
        let mut model = Model::default();
        for &(name, label) in features {
            let mut w = [0f32; 4];
            w[label.index()] = 4.0;
            model.insert(name, w);
        }
        Arc::new(model)
    }

    /// Normalizes, tokenizes and matches `text` with `tokenizer`.
    fn prepare(tokenizer: &mut Tokenizer, dictionaries: &Dictionaries, text: &str) -> (Normalized, Tokens, Vec<Hit>) {
        let (mut norm, mut tokens, mut hits) = (Normalized::default(), Tokens::default(), Vec::new());
        Normalizer::new(&NormalizeConfig::default()).process(text, &mut norm);
        tokenizer.process(norm.surface.as_str(), &mut tokens);
        dictionaries.find(norm.key.as_str(), &mut hits);
        (norm, tokens, hits)
    }

    /// Classifies a prepared message through `scratch`, checking it against a fresh scratch.
    fn labels(
        classifier: &Classifier,
        text: &str,
        message: &(Normalized, Tokens, Vec<Hit>),
        scratch: &mut Scratch,
    ) -> Vec<Label> {
        let (norm, tokens, hits) = message;
        let mut reused = Classification::default();
        classifier.classify(text, norm, tokens, hits, scratch, &mut reused);
        let mut fresh = Classification::default();
        classifier.classify(text, norm, tokens, hits, &mut Scratch::default(), &mut fresh);
        assert_eq!(reused.scores, fresh.scores, "{text}");
        assert_eq!(reused.reasons, fresh.reasons, "{text}");
        reused.labels.iter().collect()
    }

    /// The IPADIC tokenizer and dictionaries made of one spam list.
    fn tokenizer_and_spam_list(spam: &str) -> (TokenizerShared, Arc<Dictionaries>) {
        let shared = TokenizerShared::new(&TokenizeConfig::default()).expect("IPADIC");
        let sources = [(PathBuf::from("d/spam.txt"), spam.to_string())];
        let dictionaries =
            Arc::new(Dictionaries::compile(Path::new("d"), &sources, &NormalizeConfig::default()).unwrap());
        (shared, dictionaries)
    }

    #[test]
    fn word_feature_ids_are_relearned_for_each_model_and_vocabulary() {
        let (shared, dictionaries) = tokenizer_and_spam_list("[x]\nzzz\n");
        let classifier = |model| Classifier::new(dictionaries.clone(), model, ClassifyConfig::default());
        let [q, p, s, a, o] = Label::ALL.map(|l| [l]);
        // Tokenizers number words in the order they first see them.
        let (mut first, mut second) = (shared.tokenizer(), shared.tokenizer());
        let (postage, stock) = ("送料いくら", "在庫ありますか");
        let postage_first = prepare(&mut first, &dictionaries, postage);
        let stock_first = prepare(&mut first, &dictionaries, stock);
        let stock_second = prepare(&mut second, &dictionaries, stock);
        let word = |m: &(Normalized, Tokens, Vec<Hit>)| m.1.list[0].word();
        assert!(word(&postage_first).is_some() && word(&stock_first).is_some(), "dictionary words");
        assert_eq!(word(&postage_first), word(&stock_second), "送料 of one is 在庫 of the other");

        // One vocabulary, the model changes: w:在庫 at one id, at another, absent, back. A
        // stale id would score another label.
        let classifiers = [
            classifier(model(&[("w:在庫", Label::Question)])),
            classifier(model(&[("w:送料", Label::Spam), ("w:在庫", Label::Abuse)])),
            classifier(model(&[("w:送料", Label::Spam)])),
            classifier(model(&[("w:在庫", Label::PurchaseIntent)])),
        ];
        let mut scratch = Scratch::default();
        let seen: Vec<_> = classifiers.iter().map(|c| labels(c, stock, &stock_first, &mut scratch)).collect();
        assert_eq!(seen, [q, a, o, p]);

        // One model, the vocabulary changes: the ids of 送料 must not be taken for 在庫's.
        let both = &classifiers[1];
        assert_eq!(labels(both, postage, &postage_first, &mut scratch), s);
        assert_eq!(labels(both, stock, &stock_second, &mut scratch), a);
    }

    #[test]
    fn a_feature_counts_once_per_message() {
        let (shared, dictionaries) = tokenizer_and_spam_list("[x => spam]\nzzz\n");
        let classifier = Classifier::new(
            dictionaries.clone(),
            model(&[("w:在庫", Label::Question), ("w:送料", Label::Abuse)]),
            ClassifyConfig::default(),
        );
        let mut tokenizer = shared.tokenizer();
        let mut scratch = Scratch::default();
        let mut scores = |text| {
            let (norm, tokens, hits) = prepare(&mut tokenizer, &dictionaries, text);
            let mut out = Classification::default();
            classifier.classify(text, &norm, &tokens, &hits, &mut scratch, &mut out);
            out.scores
        };
        // Model features and a declared rule without a model weight, once each.
        let (yes, no, rule) =
            (sigmoid(UNTRAINED_BIAS + 4.0), sigmoid(UNTRAINED_BIAS), UNTRAINED_BIAS + DEFAULT_RULE_WEIGHT);
        assert_eq!(scores("在庫と送料zzz"), [yes, no, sigmoid(rule), yes]);
        assert_eq!(scores("在庫と在庫と送料zzz zzz 送料"), [yes, no, sigmoid(rule), yes]);
    }
}
