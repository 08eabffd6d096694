//! What a question asks about (its *attribute*: price, stock, dimensions, washing, show the
//! back… of `fixtures/clusters/train/ATTRIBUTES.md`), predicted from its frame by a softmax model
//! learned from paraphrase clusters that writers tagged by hand.
//!
//! The concept lists name the wordings they were written from; a model trained on thousands of
//! wordings by many writers reads a wording nobody listed (インナー必要ですか is about
//! `see_through`, 真冬これ一枚で大丈夫 about `warmth`) from all its words together. Question
//! identity ([`super::identity`]) takes "the same attribute" as evidence for one question and
//! "different attributes, both sure" as evidence against.
//!
//! The model file (`model/attributes.tsv`, written by `kotae train-attributes`) is reviewable:
//! a `classes` row, a `bias` row, then one row per feature with its non-zero weights by class
//! (`w:インナー<TAB>see_through=1.92 texture=0.31`). Features are the frame's units: `c:` a concept
//! or topic, `w:` a word's base form, `g:` a character pair, `a:` the kind of ask; and `n:` the
//! character n-grams (one and two characters) of the whole message's matching key, asides
//! included, which carry what a writer's own spelling says beyond the words the tokenizer found
//! (leave-one-writer-out, the frame's units alone were right on 0.622 of the texts, with the
//! n-grams 0.685 on the first 31 writers; 0.728 on 47). Models trained since the n-grams leave out
//! the pairs, which the n-grams hold.

use std::hash::Hasher;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use rustc_hash::{FxHashMap, FxHasher};
use smallvec::SmallVec;

use super::dedupe::hash_str;
use super::frame::{Ask, FrameNames, FrameView, fold_hash, gram_hash};

/// The class of questions about none of the taxonomy's attributes.
pub const OTHER: &str = "other";

/// The attributes of the taxonomy's shop section: a question about one of them belongs to the
/// shop, not to the product on screen (`hold` and `gift` are left out: a hold or an engraving is
/// of one product).
pub const SHOP: &[&str] = &[
    "shipping_fee",
    "ship_date",
    "delivery_date",
    "payment",
    "coupon",
    "returns",
    "how_to_buy",
    "host",
    "stream",
    "store",
];

/// How sure the model must be of a shop attribute to take a question naming no concept from the
/// product on screen to the shop.
pub const SHOP_SURE: f32 = 0.7;

/// A predicted attribute: its class (1-based; 0 = none predicted) and probability, and the
/// runner-up's.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Attribute {
    /// The class, an index into [`AttributeModel::classes`] plus one; 0 when no model is loaded.
    pub id: u16,
    /// The model's probability of it.
    pub p: f32,
    /// The second most likely class (as `id`; 0 when none, or when it is `other`).
    pub second: u16,
    /// The model's probability of the second.
    pub second_p: f32,
}

impl Attribute {
    /// How much the two readings agree: for each class both name (first or second), the lower
    /// of the two probabilities, summed (0–1). Two wordings the model is unsure of in the same
    /// way (洗える？ half `washing`, half `care`) agree as well as two it is sure of.
    pub fn overlap(self, other: Attribute) -> f32 {
        let mine = [(self.id, self.p), (self.second, self.second_p)];
        let theirs = [(other.id, other.p), (other.second, other.second_p)];
        mine.iter()
            .filter(|(id, _)| *id != 0)
            .map(|&(id, p)| theirs.iter().filter(|(t, _)| *t == id).map(|&(_, q)| p.min(q)).sum::<f32>())
            .sum()
    }
}

/// A model file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("attribute model {path}:{line}: {message}")]
pub struct AttributeError {
    /// The model file.
    pub path: PathBuf,
    /// The line, from 1; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The softmax model from a frame's units to its attribute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttributeModel {
    /// The attribute names, in class order.
    pub classes: Vec<String>,
    /// One bias per class.
    pub bias: Vec<f32>,
    /// Each feature's weights, `(class, weight)`, by the feature's name as written.
    pub features: Vec<(String, Vec<(u16, f32)>)>,
    /// The same weights by the hash a frame holds ([`Packed`]).
    by_hash: FxHashMap<u64, Packed>,
    /// The weights of features with more than [`Packed`] holds, one after another.
    weights: Vec<(u16, f32)>,
    /// The weights of features with many, one row of every class each ([`Packed::dense`]): the
    /// few units most questions hold (か, す, ？) weigh on most classes, and a row adds at once.
    dense: Vec<f32>,
    /// The hash of each kind of ask's feature (`a:show`), by [`Ask::code`].
    asks: Vec<u64>,
    /// The class of [`OTHER`], if the model has one.
    other: Option<usize>,
    /// Whether any feature is a character pair of the frame (`g:`): models trained since the
    /// n-grams have none, and a question's pairs need not be looked up.
    grams: bool,
}

/// One score per class: on the stack for a taxonomy of up to 64 attributes, since every question
/// scores them.
type Scores = SmallVec<[f32; 64]>;

/// One feature's weights in the lookup table: up to two `(class, weight)` pairs in the word
/// itself (the top bit set; a weight in thousandths, as the model file writes it), a row of
/// [`AttributeModel::dense`] (the next bit set), else a range of [`AttributeModel::weights`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Packed(u64);

impl Packed {
    const INLINE: u64 = 1 << 63;
    const TWO: u64 = 1 << 62;
    /// Without [`Packed::INLINE`]: a dense row.
    const DENSE: u64 = 1 << 62;
    /// Bits of one inline pair: a class (8) and a weight in thousandths (23, signed).
    const PAIR: u32 = 31;
    const WEIGHT_BITS: u32 = 23;

    /// The weights inline, if they fit: at most two, classes under 256, weights within
    /// ±4,194 and whole thousandths.
    fn inline(ws: &[(u16, f32)]) -> Option<Self> {
        let pair = |&(c, w): &(u16, f32)| -> Option<u64> {
            let milli = (w * 1000.0).round();
            let fits = u8::try_from(c).is_ok()
                && milli.abs() < f32::from(1u16 << 12) * 1024.0
                && (milli / 1000.0 - w).abs() <= f32::EPSILON * w.abs().max(1.0);
            fits.then(|| u64::from(c) << Self::WEIGHT_BITS | (milli as i32 as u64 & ((1 << Self::WEIGHT_BITS) - 1)))
        };
        match ws {
            [a] => Some(Self(Self::INLINE | pair(a)?)),
            [a, b] => Some(Self(Self::INLINE | Self::TWO | pair(a)? << Self::PAIR | pair(b)?)),
            _ => None,
        }
    }

    /// The most weights a range holds: its length must leave [`Packed::DENSE`] clear.
    const MAX_LEN: u32 = u32::MAX >> 2;

    fn range(start: u32, len: u32) -> Self {
        debug_assert!(len <= Self::MAX_LEN);
        Self(u64::from(len) << 32 | u64::from(start))
    }

    fn dense(start: u32) -> Self {
        Self(Self::DENSE | u64::from(start))
    }

    fn is_inline(self) -> bool {
        self.0 & Self::INLINE != 0
    }

    fn is_dense(self) -> bool {
        self.0 & (Self::INLINE | Self::DENSE) == Self::DENSE
    }

    fn range_of(self) -> (usize, usize) {
        ((self.0 & 0xffff_ffff) as usize, ((self.0 >> 32) & u64::from(Self::MAX_LEN)) as usize)
    }

    /// Adds the inline weights to the class scores.
    fn add_inline(self, out: &mut [f32]) {
        let add = |out: &mut [f32], pair: u64| {
            let class = (pair >> Self::WEIGHT_BITS) & 0xff;
            let milli = ((pair as i32) << (32 - Self::WEIGHT_BITS)) >> (32 - Self::WEIGHT_BITS);
            if let Some(s) = out.get_mut(class as usize) {
                *s += milli as f32 / 1000.0;
            }
        };
        let mask = (1u64 << Self::PAIR) - 1;
        if self.0 & Self::TWO != 0 {
            add(out, (self.0 >> Self::PAIR) & mask);
        }
        add(out, self.0 & mask);
    }
}

/// Whether no class has two of the weights.
fn each_class_once(ws: &[(u16, f32)]) -> bool {
    let mut classes: Vec<u16> = ws.iter().map(|(c, _)| *c).collect();
    classes.sort_unstable();
    classes.windows(2).all(|w| w[0] != w[1])
}

/// The hash a feature name stands for in a frame.
pub fn feature_hash(name: &str) -> Option<u64> {
    let (kind, rest) = name.split_once(':')?;
    if rest.is_empty() {
        return None;
    }
    match kind {
        "c" => Some(hash_str(rest)),
        "w" => Some(fold_hash(rest)),
        "g" => {
            let mut chars = rest.chars();
            let a = chars.next()?;
            let b = chars.next().unwrap_or(' ');
            chars.next().is_none().then(|| gram_hash(a, b))
        }
        // The ask is hashed apart from words: `a:show` is no word `show`.
        "a" => Some(hash_str(name)),
        "n" => (rest.chars().count() <= NGRAM).then(|| ngram_hash(rest.chars())),
        _ => None,
    }
}

/// The hash of each kind of ask's unit (`a:show`), by [`Ask::code`].
pub fn ask_hashes() -> Vec<u64> {
    (0..=8).map(|c| hash_str(&format!("a:{}", Ask::from_code(c).name()))).collect()
}

/// A frame's units as the learned models read them, in this order: its concepts, generic
/// concepts, topics, nouns and predicates (its character pairs, n-grams and ask apart).
pub fn frame_units<'a>(f: FrameView<'a>) -> impl Iterator<Item = &'a u64> {
    f.concepts.iter().chain(f.weak).chain(f.topics).chain(f.nouns).chain(f.preds)
}

/// The longest character n-gram of the `n:` features.
pub const NGRAM: usize = 2;

/// The hash of a character n-gram (an `n:` feature).
pub fn ngram_hash(gram: impl Iterator<Item = char>) -> u64 {
    let mut h = FxHasher::default();
    h.write_u8(0x6e);
    for c in gram {
        h.write_u32(c as u32);
    }
    h.finish()
}

/// The hashes of every character n-gram of `key` (one to [`NGRAM`] characters), each once, into
/// `out`; `chars` is scratch.
pub fn ngrams(key: &str, chars: &mut Vec<char>, out: &mut Vec<u64>) {
    chars.clear();
    chars.extend(key.chars());
    out.clear();
    for n in 1..=NGRAM {
        out.extend(chars.windows(n).map(|w| ngram_hash(w.iter().copied())));
    }
    out.sort_unstable();
    out.dedup();
}

/// The character n-grams of `key` as [`ngrams`] takes them, written out (for training).
pub fn ngram_names(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out: Vec<String> = (1..=NGRAM).flat_map(|n| chars.windows(n).map(|w| w.iter().collect())).collect();
    out.sort();
    out.dedup();
    out
}

/// The names of a frame's features, as training and the model file use them.
pub fn feature_names(names: &FrameNames) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(names.concepts.iter().chain(&names.weak).chain(&names.topics).map(|c| format!("c:{c}")));
    out.extend(names.nouns.iter().chain(&names.preds).map(|w| format!("w:{w}")));
    if names.ask != Ask::Unknown.name() {
        out.push(format!("a:{}", names.ask));
    }
    out.extend(names.ngrams.iter().map(|g| format!("n:{g}")));
    // A unit must survive the model file's syntax.
    out.retain(|f| !f.contains(['#', '\t', '\n', ' ', '=']));
    out.sort();
    out.dedup();
    out
}

impl AttributeModel {
    /// Builds a model from its parts; weights of unknown classes are an error.
    pub fn new(classes: Vec<String>, bias: Vec<f32>, features: Vec<(String, Vec<(u16, f32)>)>) -> Result<Self, String> {
        if bias.len() != classes.len() {
            return Err(format!("{} biases for {} classes", bias.len(), classes.len()));
        }
        let mut grouped: FxHashMap<u64, Vec<(u16, f32)>> = FxHashMap::default();
        for (name, weights) in &features {
            let h = feature_hash(name).ok_or_else(|| format!("'{name}' is not c:, w:, g:, n: or a: and a name"))?;
            if let Some(&(c, _)) = weights.iter().find(|(c, _)| usize::from(*c) >= classes.len()) {
                return Err(format!("'{name}' has a weight for class {c} of {}", classes.len()));
            }
            grouped.entry(h).or_default().extend_from_slice(weights);
        }
        // Most features have one or two weights, kept in the table itself; the others share
        // one allocation. A question's n-grams are dozens of lookups in a table of thousands,
        // mostly missing the cache: one miss each, not two.
        let mut by_hash = FxHashMap::default();
        let (mut all, mut dense) = (Vec::new(), Vec::new());
        for (h, ws) in grouped {
            let packed = match Packed::inline(&ws) {
                Some(p) => p,
                // A row when a quarter of the classes or more have a weight, each once (a row sums
                // a class's weights before they reach the score, and floating point would then
                // round differently).
                None if ws.len() * 4 >= classes.len() && each_class_once(&ws) => {
                    let start = u32::try_from(dense.len()).map_err(|_| "too many weights".to_string())?;
                    let row = dense.len();
                    dense.resize(row + classes.len(), 0.0);
                    for &(c, w) in &ws {
                        dense[row + usize::from(c)] = w;
                    }
                    Packed::dense(start)
                }
                None => {
                    let start = u32::try_from(all.len()).map_err(|_| "too many weights".to_string())?;
                    let len = u32::try_from(ws.len()).ok().filter(|l| *l <= Packed::MAX_LEN);
                    let len = len.ok_or_else(|| format!("{} weights for one unit", ws.len()))?;
                    all.extend_from_slice(&ws);
                    Packed::range(start, len)
                }
            };
            by_hash.insert(h, packed);
        }
        let asks = ask_hashes();
        let other = classes.iter().position(|c| c == OTHER);
        let grams = features.iter().any(|(name, _)| name.starts_with("g:"));
        Ok(Self { classes, bias, features, by_hash, weights: all, dense, asks, other, grams })
    }

    /// Whether no model is loaded (every attribute is then none).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Whether the attribute is one of the shop's ([`SHOP`]), surely enough ([`SHOP_SURE`]).
    pub fn is_shop(&self, a: Attribute) -> bool {
        a.p >= SHOP_SURE && SHOP.contains(&self.name(a))
    }

    /// The attribute's name (`""` for none).
    pub fn name(&self, a: Attribute) -> &str {
        usize::from(a.id).checked_sub(1).and_then(|i| self.classes.get(i)).map_or("", String::as_str)
    }

    /// Every class's score (log-odds before the softmax) for a frame's feature hashes.
    fn scores(&self, hashes: impl Iterator<Item = u64>, out: &mut Scores) {
        out.clear();
        out.extend_from_slice(&self.bias);
        // One slice for all the sums: indexing the small vector itself checks where it lives on
        // every add.
        let out: &mut [f32] = out;
        // The lookups first, a batch at a time, then the sums: lookups that do not wait on one
        // another's sums can miss the cache together.
        let mut hashes = hashes.peekable();
        let mut found = [Packed(0); 32];
        while hashes.peek().is_some() {
            let mut n = 0;
            for h in hashes.by_ref().take(found.len()) {
                if let Some(&p) = self.by_hash.get(&h) {
                    found[n] = p;
                    n += 1;
                }
            }
            for &p in &found[..n] {
                if p.is_inline() {
                    p.add_inline(out);
                } else if p.is_dense() {
                    // Adding 0 for a class without a weight leaves its score as it was.
                    let (start, _) = p.range_of();
                    for (s, w) in out.iter_mut().zip(&self.dense[start..start + self.bias.len()]) {
                        *s += w;
                    }
                } else {
                    let (start, len) = p.range_of();
                    for &(c, w) in &self.weights[start..start + len] {
                        out[usize::from(c)] += w;
                    }
                }
            }
        }
    }

    /// The most likely attribute of a frame.
    pub fn predict(&self, f: FrameView<'_>, ngrams: &[u64]) -> Attribute {
        if self.is_empty() {
            return Attribute::default();
        }
        let ask = (f.ask != Ask::Unknown).then(|| self.asks[f.ask.code() as usize]);
        let grams = if self.grams { f.grams } else { &[] };
        let hashes = frame_units(f).chain(grams).chain(ngrams);
        let mut scores = Scores::new();
        self.scores(hashes.copied().chain(ask), &mut scores);
        let [(best, p), (second, second_p)] = softmax_top2(&scores);
        // `other` (none of the taxonomy's attributes) says nothing two questions could share.
        if self.other == Some(best) {
            return Attribute::default();
        }
        let id = |c: usize| u16::try_from(c + 1).unwrap_or(0);
        let (second, second_p) =
            if self.other == Some(second) || scores.len() < 2 { (0, 0.0) } else { (id(second), second_p) };
        Attribute { id: id(best), p, second, second_p }
    }

    /// The probabilities of every class for named features (training and its checks).
    pub fn probabilities(&self, features: &[String]) -> Vec<f32> {
        let mut scores = Scores::new();
        self.scores(features.iter().filter_map(|f| feature_hash(f)), &mut scores);
        softmax(&mut scores);
        scores.into_vec()
    }

    /// Reads a model file (see the module's documentation).
    pub fn load(path: &Path) -> Result<Self, AttributeError> {
        let err = |line: usize, message: String| AttributeError { path: path.into(), line, message };
        let file = std::fs::File::open(path).map_err(|e| err(0, e.to_string()))?;
        let (mut classes, mut bias, mut features) = (None, None, Vec::new());
        for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| err(n + 1, e.to_string()))?;
            let line = line.split('#').next().unwrap_or("").trim_end();
            if line.trim().is_empty() {
                continue;
            }
            let (name, rest) = line.split_once('\t').ok_or_else(|| err(n + 1, "expected name<TAB>values".into()))?;
            match name {
                "classes" => classes = Some(rest.split('\t').map(str::to_string).collect::<Vec<_>>()),
                "bias" => {
                    let b: Result<Vec<f32>, _> = rest.split('\t').map(str::parse::<f32>).collect();
                    bias = Some(b.map_err(|e| err(n + 1, e.to_string()))?);
                }
                feature => {
                    let classes = classes.as_ref().ok_or_else(|| err(n + 1, "a feature before 'classes'".into()))?;
                    let mut weights = Vec::new();
                    for pair in rest.split(' ').filter(|p| !p.is_empty()) {
                        let (class, w) =
                            pair.split_once('=').ok_or_else(|| err(n + 1, format!("'{pair}' is not class=weight")))?;
                        let c = classes
                            .iter()
                            .position(|x| x == class)
                            .ok_or_else(|| err(n + 1, format!("unknown class '{class}'")))?;
                        let w: f32 = w.parse().map_err(|e| err(n + 1, format!("'{pair}': {e}")))?;
                        if !w.is_finite() {
                            return Err(err(n + 1, format!("'{pair}' is not a finite number")));
                        }
                        weights.push((u16::try_from(c).unwrap_or(u16::MAX), w));
                    }
                    if feature_hash(feature).is_none() {
                        return Err(err(n + 1, format!("'{feature}' is not c:, w:, g:, n: or a: and a name")));
                    }
                    features.push((feature.to_string(), weights));
                }
            }
        }
        let classes = classes.ok_or_else(|| err(0, "missing 'classes'".into()))?;
        let bias = bias.ok_or_else(|| err(0, "missing 'bias'".into()))?;
        Self::new(classes, bias, features).map_err(|m| err(0, m))
    }

    /// Writes the model file, with a header saying where it came from.
    pub fn save(&self, path: &Path, header: &str) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in header.lines() {
            writeln!(out, "# {line}")?;
        }
        writeln!(out, "classes\t{}", self.classes.join("\t"))?;
        let bias: Vec<String> = self.bias.iter().map(f32::to_string).collect();
        writeln!(out, "bias\t{}", bias.join("\t"))?;
        for (name, weights) in &self.features {
            let ws: Vec<String> =
                weights.iter().map(|&(c, w)| format!("{}={w}", self.classes[usize::from(c)])).collect();
            writeln!(out, "{name}\t{}", ws.join(" "))?;
        }
        out.flush()
    }
}

/// Turns scores into probabilities in place.
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum.max(f32::MIN_POSITIVE);
    }
}

/// The best class of some scores and its probability.
fn softmax_top2(scores: &[f32]) -> [(usize, f32); 2] {
    let (mut best, mut second) = ((0, f32::MIN), (0, f32::MIN));
    for (i, &s) in scores.iter().enumerate() {
        if s > best.1 {
            second = best;
            best = (i, s);
        } else if s > second.1 {
            second = (i, s);
        }
    }
    let sum: f32 = scores.iter().map(|s| (s - best.1).exp()).sum::<f32>().max(1.0);
    [(best.0, 1.0 / sum), (second.0, (second.1 - best.1).exp() / sum)]
}

/// One training example: a question's feature names and its attribute (a class index).
#[derive(Debug, Clone)]
pub struct Example {
    /// [`feature_names`] of its frame.
    pub features: Vec<String>,
    /// The attribute's class index.
    pub class: usize,
}

/// Fits the softmax model by stochastic gradient descent with L2 regularization (examples in a
/// fixed shuffled order, the rate decaying by epoch), then keeps the weights of at least
/// `prune` in size.
pub fn train(classes: &[String], examples: &[Example], l2: f32, epochs: usize, prune: f32) -> AttributeModel {
    let k = classes.len();
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    for e in examples {
        for f in &e.features {
            let next = index.len();
            index.entry(f.as_str()).or_insert(next);
        }
    }
    let mut w = vec![0.0f32; index.len() * k];
    let mut bias = vec![0.0f32; k];
    let rows: Vec<(Vec<usize>, usize)> =
        examples.iter().map(|e| (e.features.iter().map(|f| index[f.as_str()]).collect(), e.class)).collect();
    // A fixed order (a multiplicative walk over the examples) keeps training reproducible.
    let order: Vec<usize> = {
        let n = rows.len().max(1);
        let step = (1..n).rev().find(|s| gcd(*s, n) == 1 && *s > n / 3).unwrap_or(1);
        (0..rows.len()).map(|i| (i * step) % n).collect()
    };
    let mut scores = vec![0.0f32; k];
    for epoch in 0..epochs {
        let rate = 0.2 / (1.0 + epoch as f32);
        for &i in &order {
            let (feats, class) = &rows[i];
            scores.copy_from_slice(&bias);
            for &f in feats {
                for (s, x) in scores.iter_mut().zip(&w[f * k..(f + 1) * k]) {
                    *s += x;
                }
            }
            softmax(&mut scores);
            scores[*class] -= 1.0;
            for (b, g) in bias.iter_mut().zip(&scores) {
                *b -= rate * g;
            }
            for &f in feats {
                for (x, g) in w[f * k..(f + 1) * k].iter_mut().zip(&scores) {
                    *x -= rate * (g + l2 * *x);
                }
            }
        }
    }
    let mut names: Vec<(&str, usize)> = index.into_iter().collect();
    names.sort();
    let features = names
        .into_iter()
        .filter_map(|(name, f)| {
            let ws: Vec<(u16, f32)> = w[f * k..(f + 1) * k]
                .iter()
                .enumerate()
                .filter(|(_, x)| x.abs() >= prune)
                .map(|(c, x)| (u16::try_from(c).unwrap_or(u16::MAX), (x * 1000.0).round() / 1000.0))
                .collect();
            (!ws.is_empty()).then(|| (name.to_string(), ws))
        })
        .collect();
    let bias = bias.iter().map(|b| (b * 1000.0).round() / 1000.0).collect();
    AttributeModel::new(classes.to_vec(), bias, features).unwrap_or_default()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(features: &[&str], class: usize) -> Example {
        Example { features: features.iter().map(|f| f.to_string()).collect(), class }
    }

    #[test]
    fn one_or_two_weights_are_kept_in_the_table_and_read_back_the_same() {
        let read = |p: Packed| {
            let mut out = vec![0.0f32; 300];
            p.add_inline(&mut out);
            out.iter().enumerate().filter(|(_, w)| **w != 0.0).map(|(c, w)| (c as u16, *w)).collect::<Vec<_>>()
        };
        for ws in [vec![(3u16, 0.167f32)], vec![(0, -2.5), (46, 0.001)], vec![(255, -4000.0), (7, 4000.25)]] {
            let p = Packed::inline(&ws).unwrap();
            assert!(p.is_inline());
            let back = read(p);
            let mut ws = ws.clone();
            ws.sort_by_key(|(c, _)| *c);
            assert_eq!(back.len(), ws.len());
            for ((c, w), (bc, bw)) in ws.iter().zip(&back) {
                assert_eq!(c, bc);
                assert!((w - bw).abs() < 1e-6, "{w} read back as {bw}");
            }
        }
        // Three weights, a class past 255, a weight finer than thousandths or too large: a range.
        assert_eq!(Packed::inline(&[(1, 1.0), (2, 1.0), (3, 1.0)]), None);
        assert_eq!(Packed::inline(&[(256, 1.0)]), None);
        assert_eq!(Packed::inline(&[(1, 0.1234)]), None);
        assert_eq!(Packed::inline(&[(1, 5000.0)]), None);
        let r = Packed::range(12, 3);
        assert!(!r.is_inline());
        assert_eq!(r.range_of(), (12, 3));
    }

    #[test]
    fn dense_rows_ranges_and_inline_weights_score_alike() {
        // 40 classes: a unit weighing on 20 is a row, on 3 a range, on 1 inline; one weighing
        // twice on a class stays a range, so that its weights reach the score one at a time.
        let classes: Vec<String> = (0..40).map(|c| format!("k{c}")).collect();
        let bias: Vec<f32> = (0..40).map(|c| c as f32 * 0.01).collect();
        let wide: Vec<(u16, f32)> = (0..20).map(|c| (c * 2, 0.25 + f32::from(c) * 0.125)).collect();
        let twice: Vec<(u16, f32)> = (0..12).map(|c| (c % 11, -0.5)).collect();
        let features = vec![
            ("c:wide".to_string(), wide.clone()),
            ("c:few".to_string(), vec![(1, 1.5), (3, -2.0), (39, 0.75)]),
            ("c:one".to_string(), vec![(5, 3.0)]),
            ("c:twice".to_string(), twice.clone()),
        ];
        let m = AttributeModel::new(classes, bias.clone(), features).unwrap();
        let kind = |name: &str| m.by_hash[&feature_hash(name).unwrap()];
        assert!(kind("c:wide").is_dense());
        assert!(!kind("c:few").is_dense() && !kind("c:few").is_inline());
        assert!(kind("c:one").is_inline());
        assert!(!kind("c:twice").is_dense(), "a class weighed twice is no row");
        let names: Vec<String> = ["c:wide", "c:few", "c:one", "c:twice"].map(String::from).to_vec();
        let mut want: Vec<f64> = bias.iter().map(|&b| f64::from(b)).collect();
        for (c, w) in wide.iter().chain(&[(1, 1.5), (3, -2.0), (39, 0.75), (5, 3.0)]).chain(&twice) {
            want[usize::from(*c)] += f64::from(*w);
        }
        let top = want.iter().copied().fold(f64::MIN, f64::max);
        let sum: f64 = want.iter().map(|s| (s - top).exp()).sum();
        for (c, p) in m.probabilities(&names).iter().enumerate() {
            let expect = (want[c] - top).exp() / sum;
            assert!((f64::from(*p) - expect).abs() < 1e-6, "class {c}: {p} against {expect}");
        }
    }

    #[test]
    fn a_texts_ngrams_hash_as_their_written_names_do() {
        // Training writes `n:` names, a frame holds hashes: both must meet in the model.
        let key = "ゴムあり?ok";
        let (mut chars, mut hashes) = (Vec::new(), Vec::new());
        ngrams(key, &mut chars, &mut hashes);
        let names = ngram_names(key);
        let mut from_names: Vec<u64> = names.iter().filter_map(|n| feature_hash(&format!("n:{n}"))).collect();
        from_names.sort_unstable();
        assert_eq!(from_names, hashes);
        // One and two characters, each once: 7 + 6.
        assert_eq!(names.len(), 13, "{names:?}");
        assert!(names.contains(&"ゴム".to_string()) && names.contains(&"り?".to_string()));
        // Longer than two is no n-gram, and an n-gram is no word of the same spelling.
        assert_eq!(feature_hash("n:ゴムあ"), None);
        assert_ne!(feature_hash("n:ゴム"), feature_hash("w:ゴム"));
    }

    #[test]
    fn the_runner_up_is_kept_and_two_readings_overlap_where_they_share_a_class() {
        let [(a, pa), (b, pb)] = softmax_top2(&[0.0, 2.0, 1.0]);
        assert_eq!((a, b), (1, 2));
        assert!(pa > pb && pb > 0.0 && pa + pb < 1.0, "{pa} {pb}");
        let x = Attribute { id: 3, p: 0.5, second: 7, second_p: 0.3 };
        // The same two classes, crossed: each pair of them counts its lower probability.
        let y = Attribute { id: 7, p: 0.6, second: 3, second_p: 0.2 };
        assert!((x.overlap(y) - (0.2 + 0.3)).abs() < 1e-6, "{}", x.overlap(y));
        assert_eq!(x.overlap(y), y.overlap(x));
        let z = Attribute { id: 9, p: 0.9, second: 0, second_p: 0.0 };
        assert_eq!(x.overlap(z), 0.0);
        assert_eq!(Attribute::default().overlap(Attribute::default()), 0.0);
    }

    #[test]
    fn training_learns_which_words_name_which_attribute_and_the_file_round_trips() {
        let classes: Vec<String> = ["price", "see_through"].iter().map(|c| c.to_string()).collect();
        let examples: Vec<Example> = (0..20)
            .flat_map(|_| {
                [
                    example(&["c:price", "a:amount"], 0),
                    example(&["w:値段"], 0),
                    example(&["c:see_through"], 1),
                    example(&["w:インナー", "w:必要"], 1),
                ]
            })
            .collect();
        let m = train(&classes, &examples, 0.0001, 30, 0.01);
        let p = m.probabilities(&["w:インナー".to_string()]);
        assert!(p[1] > 0.8, "{p:?}");
        let p = m.probabilities(&["w:値段".to_string(), "w:必要".to_string()]);
        assert!(p[0] > p[1], "{p:?}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attributes.tsv");
        m.save(&path, "test").unwrap();
        let back = AttributeModel::load(&path).unwrap();
        assert_eq!(back, m);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}w:透け\tnot_a_class=1.0\n")).unwrap();
        let e = AttributeModel::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("unknown class 'not_a_class'") && e.contains(&format!(":{}:", text.lines().count() + 1)),
            "{e}"
        );
        std::fs::write(&path, format!("{text}x:透け\tprice=1.0\n")).unwrap();
        let e = AttributeModel::load(&path).unwrap_err().to_string();
        assert!(e.contains("is not c:, w:, g:, n: or a:"), "{e}");
    }

    #[test]
    fn a_frame_is_read_through_the_same_hashes_as_the_names() {
        let classes: Vec<String> = ["price", "washing"].iter().map(|c| c.to_string()).collect();
        let m = AttributeModel::new(
            classes,
            vec![0.0, 0.0],
            vec![("w:洗濯".to_string(), vec![(1, 3.0)]), ("g:洗え".to_string(), vec![(1, 1.0)])],
        )
        .unwrap();
        let nouns = [fold_hash("洗濯")];
        let view = FrameView {
            concepts: &[],
            weak: &[],
            topics: &[],
            slots: &[],
            nouns: &nouns,
            preds: &[],
            grams: &[],
            ask: Ask::Unknown,
            attribute: Attribute::default(),
            assoc: &[],
            vector: &[],
        };
        let a = m.predict(view, &[]);
        assert_eq!(m.name(a), "washing");
        assert!(a.p > 0.9, "{a:?}");
        assert_eq!(AttributeModel::default().predict(view, &[]), Attribute::default());
    }
}
