//! Scoring one message: its features looked up in the model, labels and reasons given by the
//! label rules, the abuse category; and the reusable buffers that keep this allocation-free.

use std::sync::{Arc, Weak};

use crate::dictionary::{DEFAULT_RULE_WEIGHT, Hit};
use crate::label::{Label, LabelSet};
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::Tokens;

use super::cues::{Key, Letters, WordFeature};
use super::model::sigmoid;
use super::structure::is_flood_with;
use super::{AbuseCategory, CATEGORIES, Classification, Classifier, Model, Reason, ngram};

impl Classifier {
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
            let Scratch { active, counted, name, words, letters, .. } = scratch;
            let model = &self.model;
            let rule_feature = &self.rule_feature;
            letters.read(norm.key.as_str());
            self.cues(text, norm, tokens, hits, letters, |f| {
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
                    active.push(Active { id, weight, span: f.span, key_span: false, rule: f.rule });
                }
            });
            if model.max_ngram() > 0 {
                ngram::each(&letters.units, model.min_ngram(), model.max_ngram(), |hash, gram| {
                    if let Some((id, weight)) = model.ngram(hash)
                        && counted.insert(id)
                    {
                        active.push(Active { id, weight, span: ngram::span(gram), key_span: true, rule: None });
                    }
                });
            }
        }
        for a in &scratch.active {
            for (zi, wi) in z.iter_mut().zip(a.weight) {
                *zi += wi;
            }
        }
        out.reasons.clear();
        out.labels = LabelSet::default();
        out.category = None;
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
        // Spam and abuse are not for the host: a harassing "request" (脱いで見せて) or a spam
        // "question" is neither a question nor a purchase.
        if out.labels.contains(Label::Spam) || out.labels.contains(Label::Abuse) {
            out.labels.remove(Label::Question);
            out.labels.remove(Label::PurchaseIntent);
        }
        // A hold (取り置きお願いします) asks the shop to do something for a purchase: the label
        // rules make it both.
        // A hold withdrawn (取り置きやめて今買います) asks for none.
        let hold = |a: &Active| {
            a.rule.is_some_and(|r| self.hold_rule[r as usize]) && !self.hold_withdrawn(norm, tokens, a.span.1)
        };
        if out.labels.contains(Label::PurchaseIntent) && scratch.active.iter().any(hold) {
            out.labels.insert(Label::Question);
        }
        // A question to another viewer (@name …) is not one for the host.
        if self.to_viewer(norm.surface.as_str(), hits) {
            out.labels.remove(Label::Question);
        }
        // Nor is relaying the host's answer to other viewers (レンジOKって, 〜らしいよ) or musing
        // (どっちにしよかな).
        if out.labels.contains(Label::Question) && self.relays_or_muses(norm, tokens, hits) {
            out.labels.remove(Label::Question);
        }
        // Nor are rhetorical appraisals (安くない？, スタイルいいけど？), surprised echoes
        // (え、クーポン？) or a fact appraised (取り置きできるのありがたい).
        if out.labels.contains(Label::Question)
            && (self.rhetorical(norm, tokens, hits) || self.appraises_fact(norm, tokens))
        {
            out.labels.remove(Label::Question);
        }
        if out.flood {
            out.reasons.push(Reason {
                label: Label::Spam,
                rule: "ja.struct.flood".into(),
                span: [0, text.len() as u32],
            });
        }
        if out.labels.contains(Label::Abuse) {
            out.category = Some(self.category(&scratch.active));
        }
        // Reasons: the strongest positive contributions to each given label; at least one,
        // however small, so that every label says why.
        for label in out.labels.iter() {
            if label == Label::Other {
                continue;
            }
            let li = label.index();
            let order = top3(&scratch.active, li);
            let strong = order.iter().filter(|&&k| scratch.active[k].weight[li] > 0.3).count();
            let at_least = if label == Label::Spam && out.flood { 0 } else { 1 };
            for &k in order.iter().take(strong.max(at_least)) {
                let a = &scratch.active[k];
                let rule = match a.rule {
                    Some(r) => rules[r as usize].id.clone(),
                    None => self.model.names[a.id as usize].clone(),
                };
                let (s, e) = match a.key_span {
                    true => {
                        let (s, e) = norm.key.original_span(a.span.0 as usize, a.span.1 as usize);
                        (s as u32, e as u32)
                    }
                    false => a.span,
                };
                out.reasons.push(Reason { label, rule, span: [s, e] });
            }
        }
    }

    /// The abuse category the active features point to most: the model's category weights plus
    /// the prior of the category sections that matched.
    fn category(&self, active: &[Active]) -> AbuseCategory {
        let mut z = self.model.category_bias;
        for a in active {
            if let Some(w) = self.model.category.get(a.id as usize) {
                z.iter_mut().zip(w).for_each(|(zi, wi)| *zi += wi);
            }
            if let Some(c) = a.rule.and_then(|r| self.rule_category[r as usize]) {
                z[c.index()] += DEFAULT_RULE_WEIGHT;
            }
        }
        let best = (0..CATEGORIES).max_by(|&a, &b| z[a].total_cmp(&z[b]).then(b.cmp(&a))).unwrap_or(0);
        AbuseCategory::ALL[best]
    }
}

/// The (up to) three active features that push label `li` up most, strongest first; among equal
/// weights the earlier one first.
fn top3(active: &[Active], li: usize) -> smallvec::SmallVec<[usize; 3]> {
    let mut top: smallvec::SmallVec<[usize; 3]> = smallvec::SmallVec::new();
    for (k, a) in active.iter().enumerate() {
        let w = a.weight[li];
        if w <= 0.0 {
            continue;
        }
        let pos = top.iter().position(|&t| w > active[t].weight[li]).unwrap_or(top.len());
        if pos < 3 {
            if top.len() == 3 {
                top.pop();
            }
            top.insert(pos, k);
        }
    }
    top
}

#[derive(Debug, Clone)]
struct Active {
    /// The model id, or for a rule without a model feature, the model's length plus the rule.
    id: u32,
    weight: [f32; 4],
    /// A byte range of the original text, or of the key view when `key_span` (character
    /// n-grams: mapped back only if the n-gram becomes a reason).
    span: (u32, u32),
    key_span: bool,
    rule: Option<u16>,
}

/// Reusable buffers of the classify stage.
#[derive(Debug, Default)]
pub struct Scratch {
    active: Vec<Active>,
    chars: Vec<char>,
    name: String,
    words: WordIds,
    counted: Counted,
    letters: Letters,
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
///
/// [`Token::word`]: crate::pipeline::tokenize::Token::word
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
