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
//! - `cues`: feature extraction, the cues of one message before they are named.
//! - [`model`]: the weights file, loading, saving and training.
//! - [`ngram`]: hashed character n-grams of the matching key.
//! - `rhetoric`: lines shaped like a question that ask nothing (可愛くない？, え、クーポン？).
//! - `scoring`: features weighed into scores, labels, reasons and a category.
//! - `structure`: floods, URLs, phone numbers, handles.

pub mod abuse;
mod cues;
pub mod model;
pub mod ngram;
mod rhetoric;
mod scoring;
mod structure;

use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::dictionary::{DEFAULT_RULE_WEIGHT, Dictionaries, Hit, ListKind, Rule};
use crate::label::{Action, Label, LabelSet};
use crate::pipeline::normalize::Normalized;
use crate::pipeline::tokenize::{Pos, Token, Tokens};
pub use abuse::{AbuseCategory, CATEGORIES, Severity, SeverityConfig};
use cues::Letters;
pub use model::{Example, Model, ModelError, TrainOptions};
pub use scoring::Scratch;
pub use structure::is_flood;

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// For each rule, whether it is an interrogative word (a `wh` section of `question.txt`),
    /// which asks nothing in a concessive clause (何回洗っても).
    wh_rule: Vec<bool>,
    /// For each rule, whether a message ending in it closes without asking: it relays what the
    /// host said or thanks for an answer (`rhetorical.txt` `[relay]` and `[thanks]`).
    closing_rule: Vec<bool>,
    /// For each rule, whether it names stock (`[stock]` of `topics.txt` or `synonyms.txt`): a
    /// surprised echo of it (え、M売り切れ？) still asks.
    stock_rule: Vec<bool>,
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
        let closing_rule = dictionaries
            .rules()
            .iter()
            .map(|r| matches!(&*r.id, "ja.rhetorical.relay" | "ja.rhetorical.thanks"))
            .collect();
        let stock_rule =
            dictionaries.rules().iter().map(|r| matches!(&*r.id, "ja.topics.stock" | "ja.synonyms.stock")).collect();
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
        let wh_rule = rules.iter().map(|r| r.kind != ListKind::Synonym && r.id.starts_with("ja.question.wh")).collect();
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
            wh_rule,
            closing_rule,
            stock_rule,
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

    /// Whether the message is addressed to another viewer (`@name …`, not `@店長 …`).
    fn to_viewer(&self, surface: &str, hits: &[Hit]) -> bool {
        surface.trim_start().starts_with('@') && !hits.iter().any(|h| self.host_rule[h.rule as usize] && h.start < 24)
    }

    /// Whether a message, with no question mark, passes on what the host said (フタ外せばレンジOK
    /// って, 1週間までOKだって, 併用できるらしいよ: it ends in a quoting って or a relay cue),
    /// muses (どっちにしよかな, 今日なに出るのかな: it ends in かな) or thanks for an answer
    /// (窯元の名前教えてくれてありがとう: it ends in a `[thanks]` cue) instead of asking.
    fn relays_or_muses(&self, norm: &Normalized, tokens: &Tokens, hits: &[Hit]) -> bool {
        let surface = norm.surface.as_str();
        if surface.contains(['?', '？']) {
            return false;
        }
        let mut words = tokens.list.iter().rev().filter(|t| structure::is_word_token(surface, t));
        let particle = |t: Option<&Token>, bases: &[&str]| {
            t.is_some_and(|t| t.pos == Pos::Particle && bases.contains(&tokens.base(t)))
        };
        let (last, prev) = (words.next(), words.next());
        // な drawn out: なー, なぁ, なあ.
        let na = last.is_some_and(|t| {
            t.pos == Pos::Particle
                && tokens.base(t).strip_prefix('な').is_some_and(|rest| rest.chars().all(|c| "ーぁあ〜~".contains(c)))
        });
        if particle(last, &["って", "だって", "かな"]) || (na && particle(prev, &["か"])) {
            return true;
        }
        let key = norm.key.as_str();
        let end = key.trim_end_matches(|c: char| c.is_whitespace() || structure::is_decoration(c)).len();
        hits.iter().any(|h| self.closing_rule[h.rule as usize] && h.end as usize == end)
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
}

#[cfg(test)]
mod tests;
