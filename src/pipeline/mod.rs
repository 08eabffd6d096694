//! The message pipeline: normalize → tokenize → classify (stateless, fused in one call per
//! message on a worker: [`Analyzer`]) then dedupe/cluster (stateful, one owner per stream:
//! [`StreamState`]).

pub mod classify;
pub mod dedupe;
pub mod normalize;
pub mod tokenize;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::dictionary::{Dictionaries, DictionaryError, Hit, ListKind};
use crate::label::{Action, Label, LabelSet};
use classify::{AbuseCategory, Classification, Classifier, ClassifyConfig, Model, ModelError, Ngrams, Reason, Scratch};
use dedupe::{ClusterRef, Dedupe, DedupeConfig, DedupeInput, Signature, hash_str};
use normalize::{NormalizeConfig, Normalized, Normalizer};
use tokenize::{Pos, Sub, TokenizeConfig, TokenizeError, Tokenizer, TokenizerShared, Tokens};

/// Configuration of the whole pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Directory of keyword dictionaries (`*.txt`) and the model.
    #[serde(default = "PipelineConfig::default_dictionaries")]
    pub dictionaries: PathBuf,
    /// Messages longer than this many bytes are rejected with an error.
    #[serde(default = "PipelineConfig::default_max_bytes")]
    pub max_message_bytes: usize,
    #[serde(default)]
    pub normalize: NormalizeConfig,
    #[serde(default)]
    pub tokenize: TokenizeConfig,
    #[serde(default)]
    pub classify: ClassifyConfig,
    #[serde(default)]
    pub dedupe: DedupeConfig,
}

impl PipelineConfig {
    fn default_dictionaries() -> PathBuf {
        PathBuf::from("dictionaries/ja")
    }
    fn default_max_bytes() -> usize {
        4096
    }

    /// The model path, resolved against the dictionary directory.
    pub fn model_path(&self) -> PathBuf {
        if self.classify.model.is_absolute() {
            self.classify.model.clone()
        } else {
            self.dictionaries.join(&self.classify.model)
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            dictionaries: Self::default_dictionaries(),
            max_message_bytes: Self::default_max_bytes(),
            normalize: NormalizeConfig::default(),
            tokenize: TokenizeConfig::default(),
            classify: ClassifyConfig::default(),
            dedupe: DedupeConfig::default(),
        }
    }
}

/// Start-up failure of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Why a message was rejected before classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("message is {0} bytes, over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("message text is empty")]
    Empty,
}

/// Everything built once at start-up and shared by all workers. The classifier (dictionaries
/// and model) is swapped whole on reload; workers see the new one from their next message.
pub struct Engine {
    pub config: PipelineConfig,
    tokenizer: TokenizerShared,
    classifier: ArcSwap<Classifier>,
}

impl Engine {
    /// Loads the tokenizer dictionary, keyword dictionaries and model. A missing or broken model
    /// file is an error, never a silent fall back to rules alone.
    pub fn new(config: PipelineConfig) -> Result<Arc<Self>, PipelineError> {
        let tokenizer = TokenizerShared::new(&config.tokenize)?;
        let classifier = Self::load_classifier(&config)?;
        Ok(Arc::new(Self { config, tokenizer, classifier: ArcSwap::from_pointee(classifier) }))
    }

    /// Like [`Engine::new`], with the dictionaries' rules alone and no model: what `kotae train`
    /// extracts features with, so that no old weights leak into a new model.
    pub fn without_model(config: PipelineConfig) -> Result<Arc<Self>, PipelineError> {
        let tokenizer = TokenizerShared::new(&config.tokenize)?;
        let dictionaries = Dictionaries::load(&config.dictionaries, &config.normalize)?;
        let classifier = Classifier::new(Arc::new(dictionaries), Arc::new(Model::default()), config.classify.clone());
        Ok(Arc::new(Self { config, tokenizer, classifier: ArcSwap::from_pointee(classifier) }))
    }

    fn load_classifier(config: &PipelineConfig) -> Result<Classifier, PipelineError> {
        let dictionaries = Dictionaries::load(&config.dictionaries, &config.normalize)?;
        let model = Model::load(&config.model_path())?;
        Ok(Classifier::new(Arc::new(dictionaries), Arc::new(model), config.classify.clone()))
    }

    /// Reloads dictionaries and model from disk. On error the running ones stay in force.
    pub fn reload(&self) -> Result<(), PipelineError> {
        let classifier = Self::load_classifier(&self.config)?;
        self.classifier.store(Arc::new(classifier));
        Ok(())
    }

    /// Installs already-compiled dictionaries (e.g. an edit validated in memory).
    pub fn install(&self, dictionaries: Dictionaries) {
        let current = self.classifier.load();
        let next = Classifier::new(Arc::new(dictionaries), current.model.clone(), current.config.clone());
        self.classifier.store(Arc::new(next));
    }

    /// The classifier in force.
    pub fn classifier(&self) -> Arc<Classifier> {
        self.classifier.load_full()
    }

    /// A per-thread analyzer.
    pub fn analyzer(self: &Arc<Self>) -> Analyzer {
        Analyzer {
            engine: self.clone(),
            normalizer: Normalizer::new(&self.config.normalize),
            tokenizer: self.tokenizer.tokenizer(),
            norm: Normalized::default(),
            tokens: Tokens::default(),
            hits: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// A new per-stream state.
    pub fn stream_state(&self) -> StreamState {
        StreamState { dedupe: Dedupe::new(&self.config.dedupe), classify: self.config.classify.clone() }
    }

    /// Checks a dictionary directory without installing it.
    pub fn check_dictionaries(&self, dir: &Path) -> Result<Dictionaries, DictionaryError> {
        Dictionaries::load(dir, &self.config.normalize)
    }
}

/// The stateless result for one message, handed to its stream's [`StreamState`].
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub classification: Classification,
    /// Present when the message is a question.
    pub signature: Option<Signature>,
    pub key_hash: u64,
    pub key_chars: usize,
    /// Purchase-blocking topics named (section names of the `topics` list).
    pub topics: Vec<String>,
}

/// Normalize → tokenize → classify for one worker thread; owns its scratch buffers.
pub struct Analyzer {
    engine: Arc<Engine>,
    normalizer: Normalizer,
    tokenizer: Tokenizer,
    norm: Normalized,
    tokens: Tokens,
    hits: Vec<Hit>,
    scratch: Scratch,
}

/// Content words that say nothing about what a question is about.
const STOP_WORDS: &[&str] = &[
    "する",
    "ある",
    "いる",
    "なる",
    "できる",
    "れる",
    "られる",
    "いう",
    "思う",
    "くれる",
    "みる",
    "もらう",
    "いただく",
    "くださる",
    "大丈夫",
    "これ",
    "それ",
    "あれ",
    "どれ",
    "何",
    "なに",
    "ない",
    "よい",
    "いい",
    "感じ",
    "方",
    "こと",
    "もの",
    "の",
    "ん",
    "さん",
    "今",
    "まだ",
    "教える",
    "見せる",
    "ちゃん",
    "店長",
    "ござる",
    "です",
    "ます",
    "いける",
    "いく",
    "ok",
    "OK",
    "オッケー",
];

impl Analyzer {
    /// The engine this analyzer belongs to.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Analyzes one message. Rejects empty and oversize texts.
    pub fn analyze(&mut self, text: &str) -> Result<Analysis, Reject> {
        let mut out = Analysis::default();
        self.analyze_into(text, &mut out)?;
        Ok(out)
    }

    /// Like [`Analyzer::analyze`], reusing `out`.
    pub fn analyze_into(&mut self, text: &str, out: &mut Analysis) -> Result<(), Reject> {
        let limit = self.engine.config.max_message_bytes;
        if text.len() > limit {
            return Err(Reject::TooLarge(text.len(), limit));
        }
        if text.trim().is_empty() {
            return Err(Reject::Empty);
        }
        let classifier = self.engine.classifier.load();
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find(self.norm.key.as_str(), &mut self.hits);
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out.classification);
        let key = self.norm.key.as_str();
        out.key_hash = hash_str(key);
        out.key_chars = key.chars().count();
        out.topics.clear();
        let rules = classifier.dictionaries.rules();
        for h in &self.hits {
            let r = &rules[h.rule as usize];
            if r.kind == ListKind::Topic && !out.topics.contains(&r.section) {
                out.topics.push(r.section.clone());
            }
        }
        if out.classification.labels.contains(Label::Question) {
            let sig = out.signature.get_or_insert_with(Signature::default);
            self.signature(&classifier, sig);
        } else {
            out.signature = None;
        }
        Ok(())
    }

    /// Every feature name of a text, the prior of its declared rules per label and of its abuse
    /// sections per category (for training).
    pub fn feature_names(&mut self, text: &str) -> (Vec<String>, [f32; 4], [f32; classify::CATEGORIES]) {
        let classifier = self.engine.classifier.load();
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find(self.norm.key.as_str(), &mut self.hits);
        classifier.training_features(text, &self.norm, &self.tokens, &self.hits)
    }

    /// Everything the pipeline sees in one message, for people: normalized views, tokens with
    /// part of speech, dictionary hits, feature weights and the cluster signature.
    pub fn explain(&mut self, text: &str) -> Explanation {
        let classifier = self.engine.classifier.load_full();
        let analysis = self.analyze(text).ok();
        let surface = self.norm.surface.as_str().to_string();
        let tokens = self
            .tokens
            .list
            .iter()
            .map(|t| ExplainedToken {
                surface: surface[t.start as usize..t.end as usize].to_string(),
                base: self.tokens.base(t).to_string(),
                pos: t.pos.name(),
                unknown: t.unknown,
            })
            .collect();
        let rules = classifier.dictionaries.rules();
        let hits = self
            .hits
            .iter()
            .map(|h| {
                let (s, e) = self.norm.key.original_span(h.start as usize, h.end as usize);
                ExplainedHit {
                    rule: rules[h.rule as usize].id.to_string(),
                    span: [s as u32, e as u32],
                    original: text[s..e].to_string(),
                }
            })
            .collect();
        let mut features = Vec::new();
        let mut scratch = String::new();
        classifier.features(text, &self.norm, &self.tokens, &self.hits, Ngrams::Model, &mut scratch, &mut |f| {
            let mut w = classifier.model.weights_of(f.name).unwrap_or([0.0; 4]);
            if let Some(l) = f.rule.and_then(|r| rules[r as usize].declared) {
                w[l.index()] += crate::dictionary::DEFAULT_RULE_WEIGHT;
            }
            features.push(ExplainedFeature { name: f.name.to_string(), weights: w, span: [f.span.0, f.span.1] });
        });
        // The character n-grams that mattered most, by their largest pull toward any label.
        let strength = |f: &ExplainedFeature| f.weights.iter().fold(0f32, |m, w| m.max(w.abs()));
        let mut ngrams: Vec<ExplainedFeature> =
            features.iter().filter(|f| f.name.starts_with(classify::ngram::PREFIX)).cloned().collect();
        ngrams.sort_by(|a, b| strength(b).total_cmp(&strength(a)));
        ngrams.truncate(12);
        let signature = analysis.as_ref().and_then(|a| a.signature.as_ref()).map(|s| {
            format!(
                "concepts {} topics {} slots {} nouns {} phrasing {}",
                s.concepts.len(),
                s.topics.len(),
                s.slots.len(),
                s.words.len(),
                s.phrasing.len()
            )
        });
        Explanation {
            surface,
            key: self.norm.key.as_str().to_string(),
            tokens,
            hits,
            features,
            ngrams,
            labels: analysis.as_ref().map(|a| a.classification.labels.iter().collect()).unwrap_or_default(),
            scores: analysis.as_ref().map(|a| a.classification.scores).unwrap_or_default(),
            category: analysis.as_ref().and_then(|a| a.classification.category),
            signature,
        }
    }

    /// The classification under another classifier, statelessly (for dry runs of edits).
    pub fn classify_with(&mut self, classifier: &Classifier, text: &str) -> Classification {
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find(self.norm.key.as_str(), &mut self.hits);
        let mut out = Classification::default();
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out);
        out
    }

    /// Labels under another classifier, statelessly (for cross-validation).
    pub fn labels_with(&mut self, classifier: &Classifier, text: &str) -> LabelSet {
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find(self.norm.key.as_str(), &mut self.hits);
        let mut out = Classification::default();
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out);
        out.labels
    }

    fn signature(&self, classifier: &Classifier, sig: &mut Signature) {
        sig.clear();
        let rules = classifier.dictionaries.rules();
        // Words inside a fine concept are that concept; words inside a coarse topic still count.
        // A synonym match inside a longer one is part of it (税込価格 is tax, not price).
        let synonym = |h: &Hit| rules[h.rule as usize].kind == ListKind::Synonym;
        let mut covered: Vec<(usize, usize)> = Vec::new();
        let mut asks_existence = false;
        let mut weak: Vec<u64> = Vec::new();
        for h in &self.hits {
            let r = &rules[h.rule as usize];
            match r.kind {
                ListKind::Synonym => {
                    let inside_longer = self.hits.iter().any(|o| {
                        synonym(o) && o.start <= h.start && h.end <= o.end && (o.end - o.start) > (h.end - h.start)
                    });
                    if inside_longer {
                        continue;
                    }
                    covered.push(self.norm.key.original_span(h.start as usize, h.end as usize));
                    match classifier.slot_family(h.rule) {
                        Some(family) => sig.slots.push([family, hash_str(&r.section)]),
                        None if r.weak => weak.push(hash_str(&r.section)),
                        None => sig.concepts.push(hash_str(&r.section)),
                    }
                }
                ListKind::Topic => sig.topics.push(hash_str(&r.section)),
                _ if &*r.id == "ja.question.exists" => asks_existence = true,
                _ => {}
            }
        }
        // Numbers (product numbers, heights, models, counts) are exclusive values.
        let surface = self.norm.surface.as_str();
        let num = hash_str("num");
        for digits in surface.split(|c: char| !c.is_ascii_digit()).filter(|d| !d.is_empty()) {
            sig.slots.push([num, hash_str(digits)]);
        }
        // Generic concepts count only when nothing more specific was named.
        if sig.concepts.is_empty() {
            sig.concepts.append(&mut weak);
        }
        // 「Mある？」「黒まだある？」 name no concept but ask about stock of a product attribute.
        let attribute_only = sig.slots.iter().all(|&[family, _]| classifier.is_attribute_family(family));
        if asks_existence && sig.concepts.is_empty() && attribute_only {
            sig.concepts.push(hash_str("stock"));
        }
        for t in &self.tokens.list {
            if !t.pos.is_content()
                || matches!(t.sub, Sub::Number | Sub::Pronoun | Sub::Dependent | Sub::Suffix)
                || t.pos == Pos::Adverb
            {
                continue;
            }
            let base = self.tokens.base(t);
            if STOP_WORDS.contains(&base)
                || base.chars().count() < 2 && !base.chars().all(|c| ('一'..='鿿').contains(&c))
            {
                continue;
            }
            let span = self.norm.surface.original_span(t.start as usize, t.end as usize);
            if covered.iter().any(|&(s, e)| span.0 < e && s < span.1) {
                continue;
            }
            if t.pos == Pos::Noun {
                sig.words.push(fold_hash(base));
            } else {
                sig.phrasing.push(fold_hash(base));
            }
        }
        sig.finish();
    }
}

/// Hash of a word with katakana folded to hiragana and ASCII lowercased, without allocating.
fn fold_hash(word: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    for c in word.chars() {
        let c = match c as u32 {
            u @ 0x30A1..=0x30F6 => char::from_u32(u - 0x60).unwrap_or(c),
            _ => c.to_ascii_lowercase(),
        };
        h.write_u32(c as u32);
    }
    h.finish()
}

/// What [`Analyzer::explain`] shows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// NFKC view (the tokenizer's input).
    pub surface: String,
    /// Folded matching key (what dictionaries match).
    pub key: String,
    pub tokens: Vec<ExplainedToken>,
    pub hits: Vec<ExplainedHit>,
    pub features: Vec<ExplainedFeature>,
    /// The character n-grams that mattered most (also among `features`), strongest first.
    pub ngrams: Vec<ExplainedFeature>,
    pub labels: Vec<Label>,
    pub scores: [f32; 4],
    /// The kind of abuse, when labelled abuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<AbuseCategory>,
    /// Size of each part of the cluster signature, for questions.
    pub signature: Option<String>,
}

/// A token as [`Explanation`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedToken {
    pub surface: String,
    pub base: String,
    pub pos: &'static str,
    pub unknown: bool,
}

/// A dictionary hit as [`Explanation`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedHit {
    pub rule: String,
    pub span: [u32; 2],
    pub original: String,
}

/// A feature with its weights toward question, purchase_intent, spam, abuse.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedFeature {
    pub name: String,
    pub weights: [f32; 4],
    pub span: [u32; 2],
}

/// Who sent a message and when, as the stateful stage needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta<'a> {
    pub user: Option<&'a str>,
    /// Milliseconds; messages without one use the previous message's.
    pub ts: u64,
}

/// The outcome for one message: labels, action, scores, cluster and reasons.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub labels: LabelSet,
    pub action: Action,
    pub scores: [f32; 4],
    pub cluster: Option<ClusterRef>,
    pub reasons: Vec<Reason>,
    /// How many times this user sent this text within the dedupe window.
    pub repeats: u32,
    pub topics: Vec<String>,
    /// The kind of abuse, when labelled abuse.
    pub category: Option<AbuseCategory>,
}

/// Stateful dedupe and clustering of one stream. One owner.
pub struct StreamState {
    dedupe: Dedupe,
    classify: ClassifyConfig,
}

impl StreamState {
    /// Runs the stateful stage and decides the verdict.
    pub fn process(&mut self, meta: Meta<'_>, analysis: Analysis) -> Verdict {
        let Analysis { mut classification, signature, key_hash, key_chars, topics } = analysis;
        let input = DedupeInput {
            user: meta.user,
            ts: meta.ts,
            key_hash,
            key_chars,
            is_question: classification.labels.contains(Label::Question),
            is_purchase: classification.labels.contains(Label::PurchaseIntent),
            signature: signature.as_ref(),
        };
        let outcome = self.dedupe.process(&input);
        let whole = [0, u32::MAX];
        if outcome.repeat_flood || outcome.copypasta {
            let spam = &mut classification.scores[Label::Spam.index()];
            *spam = spam.max(0.9);
            classification.labels.insert(Label::Spam);
            let rule = if outcome.repeat_flood { "ja.dedupe.repeat" } else { "ja.dedupe.copypasta" };
            classification.reasons.push(Reason { label: Label::Spam, rule: rule.into(), span: whole });
        }
        let action = classification.action(&self.classify);
        // Blocked messages do not reach the host queue, so they join no cluster.
        let cluster = if action == Action::Allow { outcome.cluster } else { None };
        Verdict {
            labels: classification.labels,
            action,
            scores: classification.scores,
            cluster,
            reasons: classification.reasons,
            repeats: outcome.repeats,
            topics,
            category: classification.category,
        }
    }

    /// Number of question clusters remembered.
    pub fn cluster_count(&self) -> usize {
        self.dedupe.cluster_count()
    }

    /// What the dedupe stage's count bounds forgot early since the last call.
    pub fn take_evictions(&mut self) -> dedupe::Evictions {
        self.dedupe.take_evictions()
    }
}
