//! Multi-label classification: question, purchase intent, spam, abuse (else other), and the
//! category of abuse.
//!
//! Every message is described by sparse binary features, each with a rule id and a span:
//! dictionary rules (`ja.question.masuka`), token and part-of-speech cues (`ja.tok.final.か`,
//! `ja.tok.te_end`), structural cues (`ja.struct.url`, `ja.struct.mention`), base-form words
//! (`w:在庫`, `e:ある`) and character n-grams of the matching key (`c:ころ`, see [`ngram`]). A
//! linear model per label and per abuse category, kept as a reviewable TSV file and trained by
//! `kotae train` on the labelled fixtures, turns them into scores. The features that pushed a
//! label up are its reasons. Floods (one unit repeated 8+ times) are spam by rule.
//!
//! # Layout
//! - [`abuse`]: abuse categories and their severity (hold or block).
//! - [`model`]: the weights file, loading, saving and training.
//! - [`ngram`]: hashed character n-grams of the matching key.
//! - `structure`: floods, URLs, phone numbers, handles.

pub mod abuse;
pub mod model;
pub mod ngram;
mod structure;

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::dictionary::{DEFAULT_RULE_WEIGHT, Dictionaries, Hit, ListKind, Rule};
use crate::label::{Action, Label, LabelSet};
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Conj, Pos, Sub, Token, Tokens};
pub use abuse::{AbuseCategory, CATEGORIES, Severity, SeverityConfig};
use model::sigmoid;
pub use model::{Example, Model, ModelError, TrainOptions};
pub use structure::is_flood;
use structure::{
    find_count, find_handle, find_income, find_phone, find_pick, find_url, is_decoration, is_decoration_token,
    is_flood_with,
};

/// Configuration of the classify stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Linear model weights (TSV written by `kotae train`), relative to the dictionary directory
    /// when not absolute. It must exist: a missing model is a start-up error.
    #[serde(default = "ClassifyConfig::default_model")]
    pub model: PathBuf,
    /// Score at or above which a label is given, per label: question, purchase_intent, spam, abuse.
    #[serde(default = "ClassifyConfig::default_thresholds")]
    pub thresholds: [f32; 4],
    /// Spam, or abuse of medium severity, scoring at least this is blocked; between the label
    /// threshold and this, held.
    #[serde(default = "ClassifyConfig::default_block_at")]
    pub block_at: f32,
    /// The severity of each abuse category: `high` is blocked once labelled, `medium` blocked
    /// at `block_at` and held below it, `low` always held for a person to look at.
    #[serde(default)]
    pub severity: SeverityConfig,
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
            severity: SeverityConfig::default(),
        }
    }
}

/// Why a label was given: the rule (feature) and the byte span of the original text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reason {
    /// The label it pushed up.
    pub label: Label,
    /// The rule id or model feature (`ja.question.masuka`, `w:在庫`, `ja.struct.flood`).
    pub rule: Arc<str>,
    /// Byte range `[start, end)` of what it matched in the original text.
    pub span: [u32; 2],
}

/// The output of the classify stage for one message.
#[derive(Debug, Clone, Default)]
pub struct Classification {
    /// Scores for question, purchase_intent, spam, abuse.
    pub scores: [f32; 4],
    /// The labels at or above their thresholds, after the rules (spam and abuse take question and
    /// purchase intent away; a hold is also a question; a question to another viewer is none).
    pub labels: LabelSet,
    /// Per label given, the features that pushed it up most (at least one each; a flood's spam may
    /// give only the flood).
    pub reasons: Vec<Reason>,
    /// Whether the message is a flood (one unit repeated 8+ times).
    pub flood: bool,
    /// The kind of abuse, when the message is labelled abuse.
    pub category: Option<AbuseCategory>,
}

impl Classification {
    /// The default action for these labels and scores: spam is blocked at `block_at` and held
    /// below it; abuse as its category's severity says.
    pub fn action(&self, config: &ClassifyConfig) -> Action {
        let severity = self.category.map_or(Severity::Medium, |c| config.severity.of(c));
        decide(self.labels, &self.scores, severity, config.block_at)
    }
}

/// The action for labels and scores, given the severity of the abuse (if any) and the score at
/// which spam and medium abuse are blocked.
pub fn decide(labels: LabelSet, scores: &[f32; 4], severity: Severity, block_at: f32) -> Action {
    let spam = labels.contains(Label::Spam);
    let abuse = labels.contains(Label::Abuse);
    let block_spam = spam && scores[Label::Spam.index()] >= block_at;
    let block_abuse = abuse
        && match severity {
            Severity::High => true,
            Severity::Medium => scores[Label::Abuse.index()] >= block_at,
            Severity::Low => false,
        };
    if block_spam || block_abuse {
        Action::Block
    } else if spam || abuse {
        Action::Hold
    } else {
        Action::Allow
    }
}

/// A feature occurrence: its name, the dictionary rule it came from (if any), its original span.
#[derive(Debug, Clone, Copy)]
pub struct Feature<'a> {
    /// The feature's name, as the model's weights file spells it (`w:在庫`, `c:ころ`).
    pub name: &'a str,
    /// Index of the dictionary rule it came from in [`Dictionaries::rules`]; `None` for token,
    /// structure and n-gram cues.
    pub rule: Option<u16>,
    /// Byte range `(start, end)` in the original text.
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

/// Which character n-grams [`Classifier::features`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ngrams {
    /// Those the model has weights for (what classifying counts).
    Model,
    /// Every n-gram of these lengths, in units (for training).
    Sizes(usize, usize),
}

/// N-gram lengths listed for training: `kotae train` keeps the lengths its options name.
pub const TRAIN_NGRAMS: Ngrams = Ngrams::Sizes(1, 5);

/// Dictionaries and model joined: what the classify stage reads. Immutable, swapped whole.
#[derive(Debug)]
pub struct Classifier {
    /// The dictionaries the rules come from.
    pub dictionaries: Arc<Dictionaries>,
    /// The weights that turn features into scores.
    pub model: Arc<Model>,
    /// The stage's settings: label thresholds, the block score, abuse severities.
    pub config: ClassifyConfig,
    /// For each dictionary rule, its feature in the model.
    rule_feature: Vec<Option<u32>>,
    host_rule: Vec<bool>,
    /// For each dictionary rule, whether it asks the shop to hold an item (`ja.question.hold`).
    hold_rule: Vec<bool>,
    /// For each dictionary rule, the abuse category its section belongs to: sections of
    /// `abuse.txt` declared `=> abuse` and named after a category (`[threat_die => abuse]`).
    rule_category: Vec<Option<AbuseCategory>>,
    /// For synonym rules of an exclusive family (`color` of `color_black`), the family's hash.
    slot_family: Vec<Option<u64>>,
    /// For synonym rules of a grouped family (`pay` of `pay_cod`), the family's hash.
    concept_group: Vec<Option<u64>>,
    /// For each rule, whether it names a product attribute (a size or colour value).
    attribute_rule: Vec<bool>,
}

/// Families of `synonyms` sections whose values exclude each other: the stock of M is not the
/// stock of L, the price of 1番 not that of 2番.
const EXCLUSIVE_FAMILIES: &[&str] =
    &["size", "color", "phone", "bed", "port", "roast", "tone", "ear", "heat", "power", "allergen"];

/// Families whose values one answer covers (a host lists the payment methods): questions
/// naming any of them ask about the family.
const GROUPED_FAMILIES: &[&str] = &["pay"];

/// Families whose values are the asker's context, not what is asked (北海道だと何日, 明日届く,
/// 夏でも暑くない): a delivery question is one question whatever region or day it names.
const CONTEXT_FAMILIES: &[&str] = &["region", "day", "tod", "season"];

impl Classifier {
    /// Joins dictionaries and model.
    pub fn new(dictionaries: Arc<Dictionaries>, model: Arc<Model>, config: ClassifyConfig) -> Self {
        let rule_feature = dictionaries.rules().iter().map(|r| model.feature(&r.id)).collect();
        let host_rule = dictionaries.rules().iter().map(|r| &*r.id == "ja.addressee.host").collect();
        let hold_rule = dictionaries.rules().iter().map(|r| &*r.id == "ja.question.hold").collect();
        let rules = dictionaries.rules();
        let rule_category = rules
            .iter()
            .map(|r| {
                // Only sections declared abuse: a cue section's pull toward a category is learned.
                let abuse_list = r.kind == ListKind::Feature && r.id.starts_with("ja.abuse.");
                if abuse_list && r.declared == Some(Label::Abuse) {
                    AbuseCategory::of_section(&r.section)
                } else {
                    None
                }
            })
            .collect();
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
            .map(|r| {
                family(r)
                    .filter(|f| siblings[f] > 1 && EXCLUSIVE_FAMILIES.contains(f))
                    .map(crate::pipeline::dedupe::hash_str)
            })
            .collect();
        let concept_group = rules
            .iter()
            .map(|r| {
                family(r)
                    .filter(|f| siblings[f] > 1 && GROUPED_FAMILIES.contains(f))
                    .map(crate::pipeline::dedupe::hash_str)
            })
            .collect();
        let attribute_rule = rules
            .iter()
            .map(|r| r.kind == ListKind::Synonym && ["size_", "color_"].iter().any(|f| r.section.starts_with(f)))
            .collect();
        Self {
            dictionaries,
            model,
            config,
            rule_feature,
            host_rule,
            hold_rule,
            rule_category,
            slot_family,
            concept_group,
            attribute_rule,
        }
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

    /// The concept a synonym rule stands for when its family is one question (`pay_cod` and
    /// `pay_paypay` are both `pay`).
    pub fn concept_group(&self, rule: u16) -> Option<u64> {
        self.concept_group[rule as usize]
    }

    /// Whether a synonym rule names the asker's context (a region, a day) rather than what is
    /// asked.
    pub fn is_context(&self, rule: u16) -> bool {
        let r = &self.dictionaries.rules()[rule as usize];
        r.kind == ListKind::Synonym && r.section.split_once('_').is_some_and(|(f, _)| CONTEXT_FAMILIES.contains(&f))
    }

    /// The abuse category of a dictionary rule, if it is a section of `abuse.txt` declared abuse
    /// and named after a category.
    pub fn rule_category(&self, rule: u16) -> Option<AbuseCategory> {
        self.rule_category[rule as usize]
    }

    /// Extracts features of one message, calling `emit` for each with its name (spelled in
    /// `scratch` when not fixed). Character n-grams come last, as `ngrams` says.
    #[allow(clippy::too_many_arguments)]
    pub fn features(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &Tokens,
        hits: &[Hit],
        ngrams: Ngrams,
        scratch: &mut String,
        emit: &mut dyn FnMut(Feature<'_>),
    ) {
        let mut letters = Letters::default();
        letters.read(norm.key.as_str());
        self.cues(text, norm, tokens, hits, &mut letters, |c| {
            emit(Feature { name: c.key.spell(scratch), rule: c.rule, span: c.span })
        });
        let (min, max) = match ngrams {
            Ngrams::Model => (self.model.min_ngram(), self.model.max_ngram()),
            Ngrams::Sizes(min, max) => (min, max),
        };
        ngram::each(&letters.units, min, max, |hash, gram| {
            if ngrams == Ngrams::Model && self.model.ngram(hash).is_none() {
                return;
            }
            let (s, e) = ngram::span(gram);
            let (s, e) = norm.key.original_span(s as usize, e as usize);
            ngram::name(gram, scratch);
            emit(Feature { name: scratch, rule: None, span: (s as u32, e as u32) });
        });
    }

    /// The features of one message as training needs them: every name (n-grams of the lengths
    /// [`TRAIN_NGRAMS`] names), the prior of its declared rules per label, and the prior of its
    /// abuse sections per category.
    pub fn training_features(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &Tokens,
        hits: &[Hit],
    ) -> (Vec<String>, [f32; 4], [f32; CATEGORIES]) {
        let mut names = Vec::new();
        let mut rules_seen: Vec<u16> = Vec::new();
        let mut scratch = String::new();
        self.features(text, norm, tokens, hits, TRAIN_NGRAMS, &mut scratch, &mut |f| {
            names.push(f.name.to_string());
            rules_seen.extend(f.rule);
        });
        names.sort_unstable();
        names.dedup();
        rules_seen.sort_unstable();
        rules_seen.dedup();
        let (mut prior, mut category) = ([0f32; 4], [0f32; CATEGORIES]);
        for r in rules_seen {
            if let Some(l) = self.dictionaries.rules()[r as usize].declared {
                prior[l.index()] += DEFAULT_RULE_WEIGHT;
            }
            if let Some(c) = self.rule_category[r as usize] {
                category[c.index()] += DEFAULT_RULE_WEIGHT;
            }
        }
        (names, prior, category)
    }

    /// Whether a hit may count here: an entry written in hiragana must start where a word
    /// starts (わからないくらい holds no いくら), unless its entry is flagged `inword`.
    fn at_word_start(norm: &Normalized, tokens: &Tokens, hit: &Hit) -> bool {
        if !hit.word_start {
            return true;
        }
        let (start, _) = norm.key.original_span(hit.start as usize, hit.end as usize);
        tokens.list.iter().any(|t| norm.surface.original_span(t.start as usize, t.end as usize).0 == start)
    }

    /// Extracts features of one message, calling `emit` for each, unspelled: [`Classifier::classify`]
    /// resolves per-word features by word, [`Classifier::features`] spells every name.
    /// Character n-grams are not among them. `letters` holds the key's letters
    /// ([`ngram::letters`]) and buffers for matching them.
    fn cues<'a>(
        &'a self,
        text: &str,
        norm: &Normalized,
        tokens: &'a Tokens,
        hits: &[Hit],
        letters: &mut Letters,
        mut emit: impl FnMut(Cue<'a>),
    ) {
        let whole = (0, text.len() as u32);
        let rules = self.dictionaries.rules();
        let key = norm.key.as_str();
        let quotes =
            if key.contains(['「', '『', '“', '"', '《']) { quote_spans(key) } else { Default::default() };
        let quotes = &quotes[..];
        let mut quoted = None;
        let mut declared = LabelSet::default();
        let mut attribute = None;
        let mut hit = |h: &Hit, emit: &mut dyn FnMut(Cue<'a>)| {
            let r = &rules[h.rule as usize];
            if matches!(r.kind, ListKind::Synonym | ListKind::Allow) || !Self::at_word_start(norm, tokens, h) {
                return;
            }
            let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
            // A term quoted, or named to be talked about (「ブス」とか言う人, 詐欺とか書く人), is
            // mentioned, not used: it counts as a quotation, not as its rule.
            if is_mentioned(key, quotes, h.start as usize, h.end as usize) {
                quoted.get_or_insert((s as u32, e as u32));
                return;
            }
            if let Some(l) = r.declared {
                declared.insert(l);
            }
            emit(Cue { key: Key::Name(&r.id), rule: Some(h.rule), span: (s as u32, e as u32) });
        };
        for h in hits {
            if self.attribute_rule[h.rule as usize] && attribute.is_none() {
                let (s, e) = norm.key.original_span(h.start as usize, h.end as usize);
                attribute = Some((s as u32, e as u32));
            }
        }
        for h in hits {
            hit(h, &mut emit);
        }
        // Symbols or emoji between the letters of a term (ブ〇ス, こ🔪ろ🔪す) hide it from the
        // key view: the letters alone are matched again, and what only they show counts too.
        if letters.has_gaps(key) {
            letters.join();
            let Letters { text: joined, starts, units, hits: extra, .. } = &mut *letters;
            self.dictionaries.find(joined, extra);
            for h in extra.iter() {
                // Unit indices (after the start mark) of the first and last letter of the match.
                let first = starts.partition_point(|&b| b < h.start) + 1;
                let last = starts.partition_point(|&b| b < h.end);
                let (Some(a), Some(b)) = (units.get(first), units.get(last)) else { continue };
                let gapped = units[first..=last].windows(2).any(|w| w[0].end != w[1].start);
                if gapped {
                    hit(&Hit { rule: h.rule, start: a.start, end: b.end, word_start: h.word_start }, &mut emit);
                }
            }
        }
        if let Some(span) = quoted {
            emit(Cue { key: Key::Name("ja.struct.quoted"), rule: None, span });
        }
        let surface = norm.surface.as_str();
        let original = |(s, e): (usize, usize)| {
            let (s, e) = norm.surface.original_span(s, e);
            (s as u32, e as u32)
        };
        // Order shapes: a count (黒M1つ, 2台), a pick by number (3番), a product attribute named
        // (colour, size); orders are often nothing else (カーキのLで！, 4番12号).
        // Most chat has no ASCII digit or letter: the finders that need one are skipped.
        let digit = surface.bytes().any(|b| b.is_ascii_digit());
        let latin = digit || surface.bytes().any(|b| b.is_ascii_alphabetic());
        let count = find_count(surface).map(original);
        let pick = if digit { find_pick(surface).map(original) } else { None };
        if let Some(span) = count {
            emit(Cue { key: Key::Name("ja.struct.count"), rule: None, span });
        }
        if let Some(span) = pick {
            emit(Cue { key: Key::Name("ja.struct.pick"), rule: None, span });
        }
        if let Some(span) = attribute {
            emit(Cue { key: Key::Name("ja.struct.attribute"), rule: None, span });
            if count.is_some() || pick.is_some() {
                emit(Cue { key: Key::Name("ja.struct.attribute_count"), rule: None, span: whole });
            }
        }
        // Buying and asking in one message (買った！ポイントいつ付く？): each label's cues pull
        // the other down on their own; their meeting is a feature of its own.
        let asks = declared.contains(Label::Question) || surface.contains(['?', '？']);
        if declared.contains(Label::PurchaseIntent) && asks {
            emit(Cue { key: Key::Name("ja.combo.buy_and_ask"), rule: None, span: whole });
        }
        let span_of = |t: &Token| {
            let (s, e) = norm.surface.original_span(t.start as usize, t.end as usize);
            (s as u32, e as u32)
        };
        // Structural cues.
        if self.to_viewer(surface, hits) {
            emit(Cue { key: Key::Name("ja.struct.mention"), rule: None, span: whole });
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
        if let Some(span) = digit.then(|| find_phone(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.phone"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = latin.then(|| find_handle(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.handle"), rule: None, span: (s as u32, e as u32) });
        }
        if let Some(span) = digit.then(|| find_income(surface)).flatten() {
            let (s, e) = norm.surface.original_span(span.0, span.1);
            emit(Cue { key: Key::Name("ja.struct.income"), rule: None, span: (s as u32, e as u32) });
        }
        if digit {
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
        // A wh-word among the last words, past sentence-final particles, asks (産地どこ, 保証何年,
        // 何歳から): chat leaves out the ending that would say so.
        let tail = tokens
            .list
            .iter()
            .rev()
            .filter(is_word)
            .skip_while(|t| t.pos == Pos::Particle && TRAILING.contains(&tokens.base(t)))
            .take(2);
        for t in tail {
            let (base, surface) = (tokens.base(t), &surface[t.start as usize..t.end as usize]);
            if WH.iter().any(|w| base.starts_with(w) || surface.starts_with(w)) {
                emit(Cue { key: Key::Name("ja.tok.wh_end"), rule: None, span: span_of(t) });
                break;
            }
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
        let hold = |a: &Active| a.rule.is_some_and(|r| self.hold_rule[r as usize]);
        if out.labels.contains(Label::PurchaseIntent) && scratch.active.iter().any(hold) {
            out.labels.insert(Label::Question);
        }
        // A question to another viewer (@name …) is not one for the host.
        if self.to_viewer(norm.surface.as_str(), hits) {
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

    /// Whether the message is addressed to another viewer (`@name …`, not `@店長 …`).
    fn to_viewer(&self, surface: &str, hits: &[Hit]) -> bool {
        surface.trim_start().starts_with('@') && !hits.iter().any(|h| self.host_rule[h.rule as usize] && h.start < 24)
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

/// Particles that may end a question after its wh-word (保証何年かな, 何歳から).
const TRAILING: [&str; 14] =
    ["か", "の", "よ", "ね", "な", "は", "って", "かな", "から", "まで", "くらい", "ぐらい", "ほど", "ん"];

/// Words that ask, as base forms or surfaces begin.
const WH: [&str; 21] = [
    "何",
    "なに",
    "なん",
    "どこ",
    "どれ",
    "どの",
    "どう",
    "どっち",
    "どちら",
    "いつ",
    "いくら",
    "いくつ",
    "おいくら",
    "誰",
    "だれ",
    "なんぼ",
    "どんな",
    "なぜ",
    "何故",
    "どない",
    "どんくらい",
];

/// Quotation marks that open and close a quoted stretch.
const QUOTES: [(char, char); 5] = [('「', '」'), ('『', '』'), ('“', '”'), ('"', '"'), ('《', '》')];

/// Byte ranges of the key view inside quotation marks (an unclosed quote runs to the end).
fn quote_spans(key: &str) -> smallvec::SmallVec<[(usize, usize); 2]> {
    let mut spans = smallvec::SmallVec::new();
    let mut open: Option<(usize, char)> = None;
    for (i, c) in key.char_indices() {
        match open {
            Some((start, close)) if c == close => {
                spans.push((start, i));
                open = None;
            }
            None => {
                if let Some(&(_, close)) = QUOTES.iter().find(|(o, _)| *o == c) {
                    open = Some((i + c.len_utf8(), close));
                }
            }
            _ => {}
        }
    }
    if let Some((start, _)) = open {
        spans.push((start, key.len()));
    }
    spans
}

/// What follows a term that is being talked about rather than used, in the key view
/// (hiragana-folded): 詐欺とか言う人, ブスって書いてる, サクラじゃなくて.
const MENTION_TAILS: [&str; 17] = [
    "とかいう",
    "とか言",
    "とかゆう",
    "とか書",
    "とかかく",
    "とかかい",
    "とか聞",
    "っていう",
    "って言",
    "ってゆう",
    "って書",
    "ってかい",
    "ってかく",
    "って聞",
    "呼ばわり",
    "とかじゃな",
    "じゃなくて",
];

/// Whether the key-view match `start..end` is quoted or talked about.
fn is_mentioned(key: &str, quotes: &[(usize, usize)], start: usize, end: usize) -> bool {
    if quotes.iter().any(|&(a, b)| a <= start && end <= b) {
        return true;
    }
    let after = key.get(end..).unwrap_or("");
    let after = after.trim_start_matches(['」', '』', '”', '"']);
    MENTION_TAILS.iter().any(|t| after.starts_with(t))
}

/// The key's letters ([`ngram::letters`]) and buffers for matching them without the symbols
/// between them.
#[derive(Debug, Default)]
struct Letters {
    units: Vec<ngram::Unit>,
    /// The letters joined.
    text: String,
    /// Byte offset in `text` of each letter (the units without the marks).
    starts: Vec<u32>,
    hits: Vec<Hit>,
}

impl Letters {
    /// Reads the letters of `key`.
    fn read(&mut self, key: &str) {
        ngram::letters(key, &mut self.units);
    }

    /// Whether something other than letters and sentence punctuation stands between two letters
    /// of `key` (an emoji, ◯, ✖: what evasions put inside words).
    fn has_gaps(&self, key: &str) -> bool {
        let letters = self.units.get(1..self.units.len().saturating_sub(1)).unwrap_or(&[]);
        letters.windows(2).any(|w| {
            w[0].end != w[1].start
                && key[w[0].end as usize..w[1].start as usize]
                    .chars()
                    .any(|c| !matches!(c, '!' | '?' | '！' | '？' | 'ー' | '」' | '「' | '…' | '‥' | '~'))
        })
    }

    /// Joins the letters into `text`.
    fn join(&mut self) {
        self.text.clear();
        self.starts.clear();
        for u in self.units.iter().filter(|u| !matches!(u.unit, ngram::START | ngram::END)) {
            self.starts.push(self.text.len() as u32);
            self.text.push(char::from_u32(u.unit).unwrap_or('\u{FFFD}'));
        }
    }
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

#[cfg(test)]
mod tests;
