//! Whether two question frames are one question: a small logistic model over what the frames
//! share, learned from paraphrase and near-miss pairs.
//!
//! Two hard rules come first: questions about different subjects (products, the shop) are never
//! one (their clusters never meet: see [`super::dedupe`]), and neither are two questions that
//! name different values of one exclusive slot (黒M / 白M, 9号 / 11号). Otherwise each pair is
//! described by a handful of features ([`FEATURES`]: the same concepts, concepts both named but
//! none shared, shared nouns, shared character bigrams, the same or a different kind of ask…) and
//! the model's weights, a reviewable TSV file written by `kotae train-identity`, turn them into
//! a probability. Every decision can be explained feature by feature ([`IdentityModel::explain`]).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::attribute::AttributeModel;
use super::dedupe::hash_str;
use super::frame::{Ask, FrameView, UNIT_FAMILY, fold_hash};
use super::similarity::{self, SimilarityModel};

/// The features of a pair of frames, in the order of the model's weights.
pub const FEATURES: [&str; 24] = [
    "concepts_equal",
    "concepts_jaccard",
    "concepts_disjoint",
    "concepts_one_side",
    "topics_jaccard",
    "weak_shared",
    "weak_disjoint",
    "nouns_jaccard",
    "nouns_disjoint",
    "preds_jaccard",
    "grams_jaccard",
    "slots_equal",
    "slots_one_side",
    "ask_same",
    "ask_differ",
    "nothing_named",
    "one_named_other_not",
    "contrast",
    "nothing_shared",
    "associated",
    "attribute_same",
    "attribute_differ",
    "attribute_overlap",
    "similar",
];

/// Number of pair features.
pub const N: usize = FEATURES.len();

const _: () = assert!(matches!(FEATURES[ASSOCIATED].as_bytes(), b"associated"));

/// The sign each feature's weight may take, in [`FEATURES`] order: what two questions share
/// can only argue for one question (+1), what tells them apart only against (-1); 0 is free.
/// Without this, a weight fitted on a few hundred questions can come out backwards (different
/// nouns counting for one question) and carry that to text nobody trained on.
pub const SIGNS: [i8; N] = [1, 1, -1, -1, 1, 1, -1, 1, -1, 1, 1, 1, -1, 1, -1, 0, -1, -1, -1, 1, 1, -1, 1, 1];

/// A model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be opened or read.
    #[error("identity model {path}: {error}")]
    Io {
        /// The model file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line is not `name<TAB>number`, names an unknown or repeated feature, or the file as a
    /// whole lacks a feature, `bias` or `threshold`, or has a threshold outside 0–1.
    #[error("identity model {path}:{line}: {message}")]
    Parse {
        /// The model file.
        path: PathBuf,
        /// The line, from 1; 0 for what the file as a whole lacks.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Words and concepts that paraphrases use for one another (透け / インナー, 会社 / 職場),
/// learned from paraphrase clusters by `kotae train-identity --associate`: a pair is kept when
/// writers who never saw each other's text both used it for one question, and its strength is
/// how often, of all the pairs of wordings that set the two side by side, the two were one
/// question. The pair model reads the strongest association between what one frame names and
/// the other does not ([`Associations::strongest`]); a strong one between two concepts lifts the
/// rule that different concepts are different questions ([`Associations::links_concepts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Associations {
    /// As written in the model file: two units (`c:concept` or `w:word`) and the strength.
    pub entries: Vec<(String, String, f32)>,
    pairs: FxHashMap<(u64, u64), f32>,
    units: FxHashSet<u64>,
    concepts: FxHashSet<u64>,
}

/// The strength from which an association between two concepts lifts the rule that questions
/// naming different concepts are different questions.
pub const LINKS_CONCEPTS: f32 = 0.5;

impl Associations {
    /// The hash a unit stands for in a frame: `c:` a concept (a `synonyms` section), `w:` a word
    /// (a noun or predicate's base form).
    pub fn unit_hash(unit: &str) -> Option<u64> {
        match unit.split_once(':') {
            Some(("c", name)) if !name.is_empty() => Some(hash_str(name)),
            Some(("w", word)) if !word.is_empty() => Some(fold_hash(word)),
            _ => None,
        }
    }

    /// Adds an association; an error names what is wrong with it.
    pub fn insert(&mut self, a: &str, b: &str, strength: f32) -> Result<(), String> {
        let ha = Self::unit_hash(a).ok_or_else(|| format!("'{a}' is not c:concept or w:word"))?;
        let hb = Self::unit_hash(b).ok_or_else(|| format!("'{b}' is not c:concept or w:word"))?;
        if ha == hb {
            return Err(format!("'{a}' is associated with itself"));
        }
        if !(0.0..=1.0).contains(&strength) {
            return Err(format!("strength {strength} is not within 0–1"));
        }
        self.pairs.insert(key(ha, hb), strength);
        self.units.extend([ha, hb]);
        if a.starts_with("c:") && b.starts_with("c:") && strength >= LINKS_CONCEPTS {
            self.concepts.extend([ha, hb]);
        }
        self.entries.push((a.to_string(), b.to_string(), strength));
        Ok(())
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The frame's units this knows associations of, sorted ([`Frame::assoc`]): computed once
    /// per question, so that comparing two frames looks up nothing else.
    ///
    /// [`Frame::assoc`]: super::frame::Frame::assoc
    pub fn known_units(&self, f: FrameView<'_>, out: &mut Vec<u64>) {
        out.clear();
        if self.units.is_empty() {
            return;
        }
        out.extend([f.concepts, f.weak, f.nouns, f.preds].into_iter().flatten().filter(|h| self.units.contains(h)));
        out.sort_unstable();
        out.dedup();
    }

    /// The strongest association between a unit one frame names and the other does not, and
    /// one the other names and the first does not (0 when none is known).
    pub fn strongest(&self, a: FrameView<'_>, b: FrameView<'_>) -> f32 {
        if a.assoc.is_empty() || b.assoc.is_empty() {
            return 0.0;
        }
        let mut best = 0.0f32;
        for x in a.assoc.iter().filter(|x| b.assoc.binary_search(x).is_err()) {
            for y in b.assoc.iter().filter(|y| a.assoc.binary_search(y).is_err()) {
                if let Some(&s) = self.pairs.get(&key(*x, *y)) {
                    best = best.max(s);
                }
            }
        }
        best
    }

    /// Whether a concept of one frame is strongly associated with one of the other's.
    pub fn links_concepts(&self, a: FrameView<'_>, b: FrameView<'_>) -> bool {
        if self.concepts.is_empty() {
            return false;
        }
        a.concepts.iter().filter(|x| self.concepts.contains(x)).any(|&x| {
            b.concepts
                .iter()
                .filter(|y| self.concepts.contains(y))
                .any(|&y| self.pairs.get(&key(x, y)).is_some_and(|&s| s >= LINKS_CONCEPTS))
        })
    }
}

/// An association's key: the two hashes in order.
fn key(a: u64, b: u64) -> (u64, u64) {
    if a < b { (a, b) } else { (b, a) }
}

/// The weights of the pair model and the probability above which two frames are one question.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityModel {
    /// Log-odds of "one question" when every feature is 0.
    pub bias: f32,
    /// One weight per feature, in [`FEATURES`] order: `value × weight` is added to the log-odds.
    pub weights: [f32; N],
    /// Two frames are one question when the probability is above this (in 0–1, exclusive of 1).
    pub threshold: f32,
    /// Words and concepts paraphrases use for one another.
    pub associations: Associations,
    /// What a question asks about (`model/attributes.tsv`; empty when there is none).
    pub attributes: Arc<AttributeModel>,
    /// How alike questions read (`model/similarity.tsv`; empty when there is none).
    pub similarity: Arc<SimilarityModel>,
}

/// One feature's part in a decision.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Contribution {
    /// The feature's name, one of [`FEATURES`].
    pub feature: &'static str,
    /// Its value for this pair.
    pub value: f32,
    /// Its weight in the model; `value × weight` is what it added to the log-odds.
    pub weight: f32,
}

/// Why two frames are, or are not, one question.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairExplanation {
    /// Whether the model says one question: `probability` above `threshold`, and no hard rule
    /// against.
    pub same: bool,
    /// The model's probability (0 when a hard rule decided).
    pub probability: f32,
    /// The model's threshold.
    pub threshold: f32,
    /// A hard rule that decided, if any (`slot conflict`).
    pub rule: Option<&'static str>,
    /// Features with a non-zero value, largest contribution first.
    pub contributions: Vec<Contribution>,
}

/// How many entries two sorted, unique lists share. The merge steps without branches on the
/// values: which side advances is unpredictable, and a mispredicted branch per step cost more
/// than the comparisons.
fn common(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut inter) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        inter += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    inter
}

/// The Jaccard index of two sorted, unique lists that share `inter` entries (0 when both are
/// empty).
fn jaccard(a: &[u64], b: &[u64], inter: usize) -> f32 {
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { inter as f32 / union as f32 }
}

/// Whether both frames name fine concepts and none of them alike: they ask about different
/// things (the price vs the stock of 1番のL, 発送 vs 到着).
pub fn concepts_conflict(a: FrameView<'_>, b: FrameView<'_>) -> bool {
    !a.concepts.is_empty() && !b.concepts.is_empty() && common(a.concepts, b.concepts) == 0
}

/// Whether the frames name different values of one exclusive slot family. 黒のM and 白のM
/// conflict, and so do iPhone15 Pro and iPhone15 Pro Max (several values of a family on both
/// sides are compared as they stand). A question naming several values of a family, though,
/// may name the alternatives it asks between (MとLどっち, Mですか？Lですか？): it is not apart
/// from a question naming one of them alone. Amounts are not exclusive (身長102センチ and 4歳
/// describe one child): two frames naming units conflict only when they share none.
pub fn slots_conflict(a: FrameView<'_>, b: FrameView<'_>) -> bool {
    fn values<'a>(x: FrameView<'a>, fam: u64) -> impl Iterator<Item = u64> + 'a {
        x.slots.iter().filter(move |s| s[0] == fam).map(|s| s[1])
    }
    // Most frames name no value: nothing can conflict then.
    if a.slots.is_empty() || b.slots.is_empty() {
        return false;
    }
    let unit = *UNIT_FAMILY;
    // A value of `x` that `y` does not name, where `y` names the family, unless `y` names one
    // value alone and `x` names it among its alternatives.
    let one_way = |x: FrameView<'_>, y: FrameView<'_>| {
        x.slots.iter().filter(|s| s[0] != unit).any(|&[fam, val]| {
            let mut theirs = values(y, fam);
            let Some(first) = theirs.next() else { return false };
            let alone = theirs.next().is_none();
            let differ = values(y, fam).all(|v| v != val);
            differ && !(alone && values(x, fam).nth(1).is_some() && values(x, fam).any(|v| v == first))
        })
    };
    let units_apart = values(a, unit).next().is_some()
        && values(b, unit).next().is_some()
        && !values(a, unit).any(|v| values(b, unit).any(|w| w == v));
    units_apart || one_way(a, b) || one_way(b, a)
}

/// The pair's features, or `None` when a hard rule keeps the frames apart.
pub fn features(a: FrameView<'_>, b: FrameView<'_>, assoc: &Associations) -> Option<[f32; N]> {
    if slots_conflict(a, b) {
        return None;
    }
    let mut f = features_but_associated(a, b, assoc)?;
    f[ASSOCIATED] = assoc.strongest(a, b);
    Some(f)
}

/// The index of the `associated` feature.
const ASSOCIATED: usize = 19;

/// As [`features`] for frames already known not to conflict in their slots (a cluster checks
/// every member's slots before comparing any), with the `associated` feature left 0: its
/// lookups are the dearest part of a comparison, and most pairs are too far apart for it to
/// matter ([`IdentityModel::probability_over`]).
fn features_but_associated(a: FrameView<'_>, b: FrameView<'_>, assoc: &Associations) -> Option<[f32; N]> {
    let flag = |x: bool| if x { 1.0 } else { 0.0 };
    let both = |x: &[u64], y: &[u64]| !x.is_empty() && !y.is_empty();
    let one = |x: &[u64], y: &[u64]| x.is_empty() != y.is_empty();
    let ci = common(a.concepts, b.concepts);
    // Different concepts: the hard rule of [`concepts_conflict`], before any other list is read,
    // unless paraphrases are known to use the two for one another.
    if both(a.concepts, b.concepts) && ci == 0 && !assoc.links_concepts(a, b) {
        return None;
    }
    let cj = jaccard(a.concepts, b.concepts, ci);
    let ti = common(a.topics, b.topics);
    let tj = jaccard(a.topics, b.topics, ti);
    let wi = common(a.weak, b.weak);
    let ni = common(a.nouns, b.nouns);
    let nj = jaccard(a.nouns, b.nouns, ni);
    let pj = jaccard(a.preds, b.preds, common(a.preds, b.preds));
    let gi = common(a.grams, b.grams);
    let gj = jaccard(a.grams, b.grams, gi);
    let shared_slot = a.slots.iter().any(|s| b.slots.contains(s));
    // A slot family one side names and the other does not (no allocation: slots are few).
    let has_family = |x: FrameView<'_>, f: u64| x.slots.iter().any(|s| s[0] == f);
    let slots_one_side = a.slots.iter().any(|s| !has_family(b, s[0])) || b.slots.iter().any(|s| !has_family(a, s[0]));
    let known = a.ask != Ask::Unknown && b.ask != Ask::Unknown;
    let attributes = a.attribute.id != 0 && b.attribute.id != 0;
    // Both surely ask about one attribute: that is something in common.
    let same_attribute = attributes && a.attribute.id == b.attribute.id && a.attribute.p.min(b.attribute.p) >= 0.5;
    let named = |x: FrameView<'_>| !x.concepts.is_empty() || !x.weak.is_empty() || !x.nouns.is_empty();
    // Alike but for one thing each names and the other does not (本体の保証 / バッテリーの保証,
    // 京都の送料 / 東京の送料): the mark of a near miss.
    let contrast = ni < a.nouns.len() && ni < b.nouns.len() && (ni > 0 || ci > 0 || wi > 0 || ti > 0 || shared_slot);
    Some([
        flag(both(a.concepts, b.concepts) && a.concepts == b.concepts),
        cj,
        // Always 0 here: disjoint concepts are the hard rule above (the feature stays for the
        // model file's sake).
        flag(both(a.concepts, b.concepts) && ci == 0),
        flag(one(a.concepts, b.concepts)),
        tj,
        flag(wi > 0),
        flag(both(a.weak, b.weak) && wi == 0),
        nj,
        flag(both(a.nouns, b.nouns) && ni == 0),
        pj,
        gj,
        flag(!a.slots.is_empty() && a.slots == b.slots),
        flag(slots_one_side),
        flag(known && a.ask == b.ask),
        flag(known && a.ask != b.ask),
        flag(!named(a) && !named(b)),
        flag(named(a) != named(b)),
        flag(contrast),
        // No concept, topic, noun, character pair or value in common: only the phrasing could
        // make them one, and phrasing (見せて, できる？) is shared by unrelated questions.
        flag(ci == 0 && ti == 0 && wi == 0 && ni == 0 && gi == 0 && !shared_slot && !same_attribute),
        // `associated`: filled in by the caller, when it can matter.
        0.0,
        // What each asks about, as the attribute model reads it: as sure as the less sure side.
        if attributes && a.attribute.id == b.attribute.id { a.attribute.p.min(b.attribute.p) } else { 0.0 },
        if attributes && a.attribute.id != b.attribute.id { a.attribute.p.min(b.attribute.p) } else { 0.0 },
        // How far their first and second readings agree: paraphrases the model reads unsurely
        // tend to be unsure between the same two attributes.
        a.attribute.overlap(b.attribute),
        // How alike the two read, as the learned vectors have it.
        similarity::cosine(a.vector, b.vector),
    ])
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The log-odds of a probability (0–1), less a margin for rounding: a pair whose probability
/// is `p`, computed through [`sigmoid`], has log-odds at least `log_odds(p)`.
pub fn log_odds(p: f32) -> f32 {
    (p / (1.0 - p)).ln() - 1e-3
}

impl Default for IdentityModel {
    /// Hand-set weights: what the model starts from before any training.
    fn default() -> Self {
        let mut weights = [0.0; N];
        for (name, w) in [
            ("concepts_equal", 3.0),
            ("concepts_jaccard", 2.0),
            ("concepts_disjoint", -4.0),
            ("concepts_one_side", -1.0),
            ("topics_jaccard", 0.5),
            ("weak_shared", 1.0),
            ("nouns_jaccard", 3.0),
            ("nouns_disjoint", -1.0),
            ("preds_jaccard", 0.5),
            ("grams_jaccard", 2.0),
            ("slots_equal", 1.0),
            ("slots_one_side", -1.0),
            ("ask_same", 0.5),
            ("ask_differ", -1.5),
            ("nothing_named", -1.0),
            ("one_named_other_not", -1.0),
            ("contrast", -2.0),
            ("nothing_shared", -3.0),
            ("associated", 2.0),
            ("attribute_same", 1.5),
            ("attribute_differ", -1.5),
            ("attribute_overlap", 1.0),
            ("similar", 2.0),
        ] {
            if let Some(i) = FEATURES.iter().position(|f| *f == name) {
                weights[i] = w;
            }
        }
        Self {
            bias: -1.5,
            weights,
            threshold: 0.5,
            associations: Associations::default(),
            attributes: Arc::default(),
            similarity: Arc::default(),
        }
    }
}

impl IdentityModel {
    /// The probability that two frames are one question (0 when a hard rule says no).
    pub fn probability(&self, a: FrameView<'_>, b: FrameView<'_>) -> f32 {
        match features(a, b, &self.associations) {
            None => 0.0,
            Some(f) => self.probability_of(&f),
        }
    }

    /// As [`IdentityModel::probability`] for frames already known not to conflict in their
    /// slots ([`slots_conflict`]), exact whenever its log-odds are at least `floor` (a
    /// [`log_odds`] of a probability): below it, the association is looked up only if it could
    /// lift the pair to `floor`, so a pair too far apart for it may come out lower than it is. A
    /// cluster's join compares a question with every wording of its scope and only cares for
    /// those over its threshold and over the best wording found so far.
    pub fn probability_over(&self, a: FrameView<'_>, b: FrameView<'_>, floor: f32) -> f32 {
        let Some(f) = features_but_associated(a, b, &self.associations) else { return 0.0 };
        let mut logit = self.logit(&f);
        let w = self.weights[ASSOCIATED];
        if w > 0.0 && logit + w >= floor {
            logit += w * self.associations.strongest(a, b);
        }
        sigmoid(logit)
    }

    /// The probability of a feature vector.
    pub fn probability_of(&self, f: &[f32; N]) -> f32 {
        sigmoid(self.logit(f))
    }

    /// The log-odds of a feature vector.
    fn logit(&self, f: &[f32; N]) -> f32 {
        self.bias + f.iter().zip(&self.weights).map(|(x, w)| x * w).sum::<f32>()
    }

    /// Why two frames are, or are not, one question.
    pub fn explain(&self, a: FrameView<'_>, b: FrameView<'_>) -> PairExplanation {
        let Some(f) = features(a, b, &self.associations) else {
            return PairExplanation {
                same: false,
                probability: 0.0,
                threshold: self.threshold,
                rule: Some(if slots_conflict(a, b) { "slot conflict" } else { "different concepts" }),
                contributions: Vec::new(),
            };
        };
        let p = self.probability_of(&f);
        let mut contributions: Vec<Contribution> = FEATURES
            .iter()
            .zip(f.iter().zip(&self.weights))
            .filter(|(_, (x, _))| **x != 0.0)
            .map(|(name, (x, w))| Contribution { feature: name, value: *x, weight: *w })
            .collect();
        contributions.sort_by(|a, b| (b.value * b.weight).abs().total_cmp(&(a.value * a.weight).abs()));
        PairExplanation {
            same: p > self.threshold,
            probability: p,
            threshold: self.threshold,
            rule: None,
            contributions,
        }
    }

    /// Reads a model file: `bias`, `threshold` and one `feature<TAB>weight` row per feature,
    /// then any number of `associate<TAB>unit<TAB>unit<TAB>strength` rows; `#` comments. Every
    /// feature must be there, once.
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let file =
            std::fs::File::open(path).map_err(|source| IdentityError::Io { path: path.into(), error: source })?;
        let mut bias = None;
        let mut threshold = None;
        let mut weights = [f32::NAN; N];
        let mut associations = Associations::default();
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| IdentityError::Io { path: path.into(), error: source })?;
            let err = |message: String| IdentityError::Parse { path: path.into(), line: n + 1, message };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("associate\t") {
                let fields: Vec<&str> = rest.split('\t').map(str::trim).collect();
                let [a, b, strength] = fields[..] else {
                    return Err(err("expected associate<TAB>unit<TAB>unit<TAB>strength".into()));
                };
                let strength: f32 = strength.parse().map_err(|e| err(format!("{e}")))?;
                associations.insert(a, b, strength).map_err(err)?;
                continue;
            }
            let (name, value) = line.split_once('\t').ok_or_else(|| err("expected name<TAB>value".into()))?;
            let value: f32 = value.trim().parse().map_err(|e| err(format!("{e}")))?;
            if !value.is_finite() {
                return Err(err("not a finite number".into()));
            }
            match name.trim() {
                "bias" => bias = Some(value),
                "threshold" => threshold = Some(value),
                feature => {
                    let i = FEATURES
                        .iter()
                        .position(|f| *f == feature)
                        .ok_or_else(|| err(format!("unknown feature '{feature}'")))?;
                    if !weights[i].is_nan() {
                        return Err(err(format!("'{feature}' appears twice")));
                    }
                    weights[i] = value;
                }
            }
        }
        let missing: Vec<&str> = FEATURES.iter().zip(&weights).filter(|(_, w)| w.is_nan()).map(|(f, _)| *f).collect();
        let at_end = |message: String| IdentityError::Parse { path: path.into(), line: 0, message };
        if !missing.is_empty() {
            return Err(at_end(format!("missing features: {}", missing.join(", "))));
        }
        let bias = bias.ok_or_else(|| at_end("missing 'bias'".into()))?;
        let threshold = threshold.ok_or_else(|| at_end("missing 'threshold'".into()))?;
        if !(0.0..1.0).contains(&threshold) {
            return Err(at_end(format!("threshold {threshold} is not within 0–1")));
        }
        Ok(Self { bias, weights, threshold, associations, attributes: Arc::default(), similarity: Arc::default() })
    }

    /// Writes the model file, with a header saying where it came from.
    pub fn save(&self, path: &Path, header: &str) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in header.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "bias\t{}", self.bias)?;
        writeln!(out, "threshold\t{}", self.threshold)?;
        for (name, w) in FEATURES.iter().zip(&self.weights) {
            writeln!(out, "{name}\t{w}")?;
        }
        if !self.associations.is_empty() {
            writeln!(out, "# Associations: unit, unit, strength (c: a concept, w: a word).")?;
        }
        for (a, b, strength) in &self.associations.entries {
            writeln!(out, "associate\t{a}\t{b}\t{strength}")?;
        }
        out.flush()
    }
}

/// One labelled pair of frames' features.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The pair's features, in [`FEATURES`] order.
    pub features: [f32; N],
    /// Whether the two are one question (same paraphrase cluster), as labelled.
    pub same: bool,
    /// How much the pair counts in training (near misses, the hard negatives, count more).
    pub weight: f32,
    /// The two texts, for listing the pairs the model gets wrong.
    pub texts: Option<Box<(String, String)>>,
}

/// Fits the pair model by L2-regularized logistic regression (full-batch gradient descent; the
/// classes are weighted to count equally; each weight kept to its sign in [`SIGNS`]), then picks the threshold that maximizes the F1 of
/// "same" pairs weighted toward precision (a wrong merge costs a host more than a split).
pub fn train(pairs: &[Pair], l2: f32, epochs: usize) -> IdentityModel {
    let positives = pairs.iter().filter(|p| p.same).map(|p| p.weight).sum::<f32>().max(1.0);
    let negatives = pairs.iter().filter(|p| !p.same).map(|p| p.weight).sum::<f32>().max(1.0);
    let total = positives + negatives;
    let (wp, wn) = (total / (2.0 * positives), total / (2.0 * negatives));
    let mut m = IdentityModel { bias: 0.0, weights: [0.0; N], threshold: 0.5, ..IdentityModel::default() };
    let rate = 0.5;
    for _ in 0..epochs {
        let mut gb = 0.0;
        let mut gw = [0.0f32; N];
        for p in pairs {
            let y = if p.same { 1.0 } else { 0.0 };
            let w = p.weight * if p.same { wp } else { wn };
            let e = w * (m.probability_of(&p.features) - y);
            gb += e;
            for (g, x) in gw.iter_mut().zip(&p.features) {
                *g += e * x;
            }
        }
        m.bias -= rate * gb / total;
        for ((w, g), sign) in m.weights.iter_mut().zip(&gw).zip(SIGNS) {
            *w -= rate * (g / total + l2 * *w);
            if f32::from(sign) * *w < 0.0 {
                *w = 0.0;
            }
        }
    }
    // F-beta with beta 0.5: precision counts twice as much as recall.
    let mut best = (f32::MIN, 0.5);
    for step in 5..95 {
        let t = step as f32 / 100.0;
        let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
        for p in pairs {
            let said = m.probability_of(&p.features) > t;
            let w = p.weight * if p.same { wp } else { wn };
            match (said, p.same) {
                (true, true) => tp += w,
                (true, false) => fp += w,
                (false, true) => fneg += w,
                _ => {}
            }
        }
        let b2 = 0.25;
        let f = (1.0 + b2) * tp / ((1.0 + b2) * tp + b2 * fneg + fp).max(1e-9);
        if f > best.0 {
            best = (f, t);
        }
    }
    m.threshold = best.1;
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::dedupe::hash_str;
    use crate::pipeline::frame::Frame;

    fn frame(concepts: &[&str], slots: &[(&str, &str)], nouns: &[&str], ask: Ask) -> Frame {
        let mut f = Frame {
            concepts: concepts.iter().map(|c| hash_str(c)).collect(),
            slots: slots.iter().map(|(a, b)| [hash_str(a), hash_str(b)]).collect(),
            nouns: nouns.iter().map(|c| fold_hash(c)).collect(),
            ask,
            ..Frame::default()
        };
        crate::pipeline::frame::finish(&mut f);
        f
    }

    #[test]
    fn different_slot_values_are_never_one_question() {
        let m = IdentityModel::default();
        let black = frame(&["stock"], &[("color", "black")], &[], Ask::Exists);
        let white = frame(&["stock"], &[("color", "white")], &[], Ask::Exists);
        assert_eq!(m.probability(black.view(), white.view()), 0.0);
        assert_eq!(m.explain(black.view(), white.view()).rule, Some("slot conflict"));
        assert!(m.probability(black.view(), black.view()) > m.threshold);
    }

    #[test]
    fn the_same_concept_asked_alike_is_one_question_and_different_concepts_are_not() {
        let m = IdentityModel::default();
        let stock = frame(&["stock"], &[], &[], Ask::Exists);
        let stock_again = frame(&["stock"], &[], &["色"], Ask::Exists);
        let length = frame(&["length"], &[], &[], Ask::Amount);
        assert!(m.probability(stock.view(), stock_again.view()) > m.threshold);
        assert!(m.probability(stock.view(), length.view()) < m.threshold);
        let why = m.explain(stock.view(), length.view());
        assert_eq!(why.rule, Some("different concepts"), "{why:?}");
        let shared_noun = frame(&[], &[], &["フード"], Ask::Exists);
        let why = m.explain(shared_noun.view(), shared_noun.view());
        assert!(why.same && why.contributions.iter().any(|c| c.feature == "nouns_jaccard"), "{why:?}");
    }

    #[test]
    fn a_model_file_round_trips_and_a_broken_one_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.tsv");
        let m = IdentityModel::default();
        m.save(&path, "hand-set").unwrap();
        assert_eq!(IdentityModel::load(&path).unwrap(), m);
        std::fs::write(&path, "bias\t1\nthreshold\t0.5\nnot_a_feature\t2\n").unwrap();
        let e = IdentityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains(":3: unknown feature"), "{e}");
        std::fs::write(&path, "bias\t1\nthreshold\t0.5\n").unwrap();
        let e = IdentityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("missing features"), "{e}");
    }

    #[test]
    fn an_association_joins_wordings_that_share_no_word_and_is_read_back_from_the_file() {
        let mut see_through = frame(&["see_through"], &[], &[], Ask::Unknown);
        let mut inner = frame(&[], &[], &["インナー", "必要"], Ask::Unknown);
        let plain = IdentityModel::default();
        let mut assoc = Associations::default();
        assoc.insert("c:see_through", "w:インナー", 0.9).unwrap();
        for f in [&mut see_through, &mut inner] {
            let mut known = Vec::new();
            assoc.known_units(f.view(), &mut known);
            f.assoc = known;
        }
        assert_eq!(inner.assoc, [fold_hash("インナー")]);
        let learned = IdentityModel { associations: assoc, ..IdentityModel::default() };
        let before = plain.probability(see_through.view(), inner.view());
        let after = learned.probability(see_through.view(), inner.view());
        assert!(after > before, "{before} → {after}");
        let why = learned.explain(see_through.view(), inner.view());
        assert!(why.contributions.iter().any(|c| c.feature == "associated" && c.value == 0.9), "{why:?}");
        // Only what one side names and the other does not is looked up: a word both name is
        // already shared.
        let mut both = frame(&["see_through"], &[], &["インナー"], Ask::Unknown);
        let mut known = Vec::new();
        learned.associations.known_units(both.view(), &mut known);
        both.assoc = known;
        assert_eq!(learned.associations.strongest(both.view(), inner.view()), 0.0);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.tsv");
        learned.save(&path, "with an association").unwrap();
        assert_eq!(IdentityModel::load(&path).unwrap(), learned);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}associate\tw:透け\tインナー\t0.5\n")).unwrap();
        let e = IdentityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("is not c:concept or w:word"), "{e}");
        std::fs::write(&path, format!("{text}associate\tw:透け\tw:インナー\t1.5\n")).unwrap();
        let e = IdentityModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("not within 0–1"), "{e}");
    }

    #[test]
    fn a_strong_association_between_two_concepts_lifts_the_different_concepts_rule() {
        let washable = frame(&["wash"], &[], &[], Ask::Can);
        let machine = frame(&["washing_machine"], &[], &[], Ask::Can);
        let plain = IdentityModel::default();
        assert_eq!(plain.explain(washable.view(), machine.view()).rule, Some("different concepts"));
        let mut weak = Associations::default();
        weak.insert("c:wash", "c:washing_machine", LINKS_CONCEPTS - 0.1).unwrap();
        let m = IdentityModel { associations: weak, ..IdentityModel::default() };
        assert_eq!(m.explain(washable.view(), machine.view()).rule, Some("different concepts"));
        let mut strong = Associations::default();
        strong.insert("c:wash", "c:washing_machine", LINKS_CONCEPTS).unwrap();
        let m = IdentityModel { associations: strong, ..IdentityModel::default() };
        let why = m.explain(washable.view(), machine.view());
        assert_eq!(why.rule, None, "{why:?}");
    }

    #[test]
    fn training_separates_what_the_pairs_separate() {
        let pair = |same: bool, concepts_equal: f32, disjoint: f32| {
            let mut f = [0.0; N];
            f[0] = concepts_equal;
            f[2] = disjoint;
            Pair { features: f, same, weight: 1.0, texts: None }
        };
        let pairs: Vec<Pair> =
            (0..50).flat_map(|_| [pair(true, 1.0, 0.0), pair(false, 0.0, 1.0), pair(false, 0.0, 0.0)]).collect();
        let m = train(&pairs, 0.0001, 300);
        assert!(m.weights[0] > 0.0 && m.weights[2] < 0.0, "{m:?}");
        assert!(pairs.iter().all(|p| (m.probability_of(&p.features) > m.threshold) == p.same));
    }
}
