//! The message pipeline: normalize → tokenize → classify (stateless, fused in one call per
//! message on a worker: [`Analyzer`]) then dedupe/cluster (stateful, one owner per stream:
//! [`StreamState`]).

pub mod classify;
pub mod dedupe;
pub mod frame;
pub mod identity;
pub mod normalize;
pub mod tokenize;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Mention};
use crate::dictionary::{Dictionaries, DictionaryError, Hit, ListKind};
use crate::label::{Action, Label, LabelSet};
use classify::{AbuseCategory, Classification, Classifier, ClassifyConfig, Model, ModelError, Ngrams, Reason, Scratch};
use dedupe::{ClusterRef, Dedupe, DedupeConfig, DedupeInput, hash_str};
use frame::{Frame, FrameNames};
use identity::{IdentityError, IdentityModel};
use normalize::{NormalizeConfig, Normalized, Normalizer};
use tokenize::{TokenizeConfig, TokenizeError, Tokenizer, TokenizerShared, Tokens};

/// Configuration of the whole pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Directory of keyword dictionaries (`*.txt`) and the model (`model/`); the moderator
    /// console writes its edits here. Unset: `$XDG_DATA_HOME/kotae/dictionaries` (or
    /// `~/.local/share/kotae/dictionaries`) over the lists built into the binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dictionaries: Option<PathBuf>,
    /// Whether the lists and model built into the binary lie beneath `dictionaries`: a file of
    /// `dictionaries` replaces the built-in one of the same name, the rest stay. Default: only
    /// when `dictionaries` is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<bool>,
    /// The directory the built-in files were written to (see [`PipelineConfig::resolve`]).
    /// Set by [`PipelineConfig::resolve`], not read from the file.
    #[serde(skip)]
    pub defaults: Option<PathBuf>,
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
    /// The directory edits are written to when none is configured.
    fn default_dictionaries() -> PathBuf {
        let data = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
            std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".local/share"))
        });
        match data {
            Some(d) => d.join("kotae/dictionaries"),
            None => PathBuf::from("kotae-dictionaries"),
        }
    }
    fn default_max_bytes() -> usize {
        4096
    }

    /// The dictionary directory: the one configured, or the default writable one.
    pub fn dictionary_dir(&self) -> PathBuf {
        self.dictionaries.clone().unwrap_or_else(Self::default_dictionaries)
    }

    /// Whether the built-in lists and model lie beneath [`PipelineConfig::dictionary_dir`].
    pub fn uses_builtin(&self) -> bool {
        self.builtin.unwrap_or(self.dictionaries.is_none())
    }

    /// The directory of built-in defaults beneath the dictionary directory, once resolved.
    pub fn defaults(&self) -> Option<&Path> {
        self.defaults.as_deref()
    }

    /// Fixes the dictionary directory and, when the built-in lists are used, writes them into
    /// the cache directory (once per version; see [`crate::dictionary::builtin`]).
    pub fn resolve(&mut self) -> std::io::Result<()> {
        // Fixed first: setting the directory would change the default.
        self.builtin = Some(self.uses_builtin());
        self.dictionaries = Some(self.dictionary_dir());
        if self.uses_builtin() && self.defaults.is_none() {
            self.defaults = Some(crate::dictionary::builtin::materialize(&self.tokenize.cache_dir)?);
        }
        Ok(())
    }

    /// A model file: `name` in the dictionary directory, else in the defaults beneath it.
    fn layered(&self, name: &Path) -> PathBuf {
        if name.is_absolute() {
            return name.to_path_buf();
        }
        let own = self.dictionary_dir().join(name);
        match &self.defaults {
            Some(base) if !own.exists() => base.join(name),
            _ => own,
        }
    }

    /// The question-identity model's path (`model/identity.tsv` in the dictionary directory,
    /// else the built-in one).
    pub fn identity_path(&self) -> PathBuf {
        self.layered(Path::new("model/identity.tsv"))
    }

    /// The model path (`classify.model`, relative to the dictionary directory, else the
    /// built-in one).
    pub fn model_path(&self) -> PathBuf {
        self.layered(&self.classify.model)
    }

    /// Where `kotae train` writes the model: in the dictionary directory, never the defaults.
    pub fn model_out_path(&self) -> PathBuf {
        self.dictionary_dir().join(&self.classify.model)
    }

    /// Where `kotae train-identity` writes the identity model.
    pub fn identity_out_path(&self) -> PathBuf {
        self.dictionary_dir().join("model/identity.tsv")
    }

    /// The dictionary sources as `(path, text)`: the directory's lists over the defaults.
    pub fn read_sources(&self) -> Result<Vec<(PathBuf, String)>, DictionaryError> {
        crate::dictionary::source::read_sources(&self.dictionary_dir(), self.defaults()).map_err(DictionaryError)
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            dictionaries: None,
            builtin: None,
            defaults: None,
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
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot write the built-in dictionaries to the cache directory: {0}")]
    Builtin(#[from] std::io::Error),
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
    /// Whether two question frames are one question (loaded once; new streams use the one in force).
    identity: ArcSwap<IdentityModel>,
}

impl Engine {
    /// Loads the tokenizer dictionary, keyword dictionaries and model. A missing or broken model
    /// file is an error, never a silent fall back to rules alone.
    pub fn new(config: PipelineConfig) -> Result<Arc<Self>, PipelineError> {
        // Dictionaries and the classifier's model first: their problems are the ones to read.
        let engine = Self::with_identity(config, IdentityModel::default())?;
        engine.set_identity(IdentityModel::load(&engine.config.identity_path())?);
        Ok(engine)
    }

    /// Like [`Engine::new`] with a given question-identity model instead of the model file
    /// (training one, or checking a candidate).
    pub fn with_identity(mut config: PipelineConfig, identity: IdentityModel) -> Result<Arc<Self>, PipelineError> {
        config.resolve()?;
        let tokenizer = TokenizerShared::new(&config.tokenize)?;
        let classifier = Self::load_classifier(&config, &tokenizer)?;
        Ok(Arc::new(Self {
            config,
            tokenizer,
            classifier: ArcSwap::from_pointee(classifier),
            identity: ArcSwap::from_pointee(identity),
        }))
    }

    /// Like [`Engine::new`], with the dictionaries' rules alone and no model: what `kotae train`
    /// extracts features with, so that no old weights leak into a new model.
    pub fn without_model(mut config: PipelineConfig) -> Result<Arc<Self>, PipelineError> {
        config.resolve()?;
        let tokenizer = TokenizerShared::new(&config.tokenize)?;
        let mut t = tokenizer.tokenizer();
        let dictionaries = Dictionaries::load_layered(
            &config.dictionary_dir(),
            config.defaults(),
            &config.normalize,
            Some(&mut |w: &str| t.reading(w)),
        )?;
        let classifier = Classifier::new(Arc::new(dictionaries), Arc::new(Model::default()), config.classify.clone());
        Ok(Arc::new(Self {
            config,
            tokenizer,
            classifier: ArcSwap::from_pointee(classifier),
            identity: ArcSwap::from_pointee(IdentityModel::default()),
        }))
    }

    /// Loads dictionaries and model from disk as [`Engine::reload`] would, without installing
    /// them (the caller checks them first, then [`Engine::swap`]s them in).
    pub fn load_from_disk(&self) -> Result<Classifier, PipelineError> {
        Self::load_classifier(&self.config, &self.tokenizer)
    }

    /// Loads dictionaries (with the kana readings of concept entries) and the model from disk; a
    /// missing model is an error.
    fn load_classifier(config: &PipelineConfig, tokenizer: &TokenizerShared) -> Result<Classifier, PipelineError> {
        let mut t = tokenizer.tokenizer();
        let dictionaries = Dictionaries::load_layered(
            &config.dictionary_dir(),
            config.defaults(),
            &config.normalize,
            Some(&mut |w: &str| t.reading(w)),
        )?;
        let model = Model::load(&config.model_path())?;
        Ok(Classifier::new(Arc::new(dictionaries), Arc::new(model), config.classify.clone()))
    }

    /// Reloads dictionaries and model from disk. On error the running ones stay in force.
    pub fn reload(&self) -> Result<(), PipelineError> {
        let classifier = Self::load_classifier(&self.config, &self.tokenizer)?;
        self.classifier.store(Arc::new(classifier));
        Ok(())
    }

    /// Installs a classifier loaded and checked by the caller.
    pub fn swap(&self, classifier: Classifier) {
        self.classifier.store(Arc::new(classifier));
    }

    /// Installs already-compiled dictionaries (e.g. an edit validated in memory).
    pub fn install(&self, dictionaries: Dictionaries) {
        let current = self.classifier.load();
        let next = Classifier::new(Arc::new(dictionaries), current.model.clone(), current.config.clone());
        self.classifier.store(Arc::new(next));
    }

    /// The question-identity model in force.
    pub fn identity(&self) -> Arc<IdentityModel> {
        self.identity.load_full()
    }

    /// Replaces the question-identity model (streams created afterwards use it).
    pub fn set_identity(&self, model: IdentityModel) {
        self.identity.store(Arc::new(model));
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
        StreamState {
            dedupe: Dedupe::new(&self.config.dedupe, self.identity.load_full()),
            classify: self.config.classify.clone(),
            catalog: Catalog::empty(),
            mentions: Vec::new(),
        }
    }

    /// Checks a dictionary directory without installing it.
    pub fn check_dictionaries(&self, dir: &Path) -> Result<Dictionaries, DictionaryError> {
        let mut t = self.tokenizer.tokenizer();
        Dictionaries::load_with(dir, &self.config.normalize, Some(&mut |w: &str| t.reading(w)))
    }

    /// Compiles dictionaries from in-memory sources as [`Engine::new`] would (with the kana
    /// readings of concept entries), for edits checked before they are installed.
    pub fn compile_dictionaries(
        &self,
        dir: &Path,
        sources: &[(PathBuf, String)],
    ) -> Result<Dictionaries, DictionaryError> {
        let mut t = self.tokenizer.tokenizer();
        Dictionaries::compile_with(dir, sources, &self.config.normalize, Some(&mut |w: &str| t.reading(w)))
    }
}

/// The stateless result for one message, handed to its stream's [`StreamState`].
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub classification: Classification,
    /// Present when the message is a question.
    pub frame: Option<Frame>,
    pub key_hash: u64,
    pub key_chars: usize,
    /// Purchase-blocking topics named (section names of the `topics` list).
    pub topics: Vec<String>,
    /// The folded key view, where the stream's catalogue looks for product names.
    pub key: String,
    /// Key-view spans of concept and topic words: a catalogue keyword that is one of them
    /// (サイズ, ゴールド) names an attribute, not a product.
    pub concept_spans: Vec<[u32; 2]>,
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
        if crate::message::is_blank(text) {
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
        out.key.clear();
        out.key.push_str(key);
        out.concept_spans.clear();
        let rules = classifier.dictionaries.rules();
        for h in &self.hits {
            let r = &rules[h.rule as usize];
            if r.kind == ListKind::Topic && !out.topics.contains(&r.section) {
                out.topics.push(r.section.clone());
            }
            if matches!(r.kind, ListKind::Topic | ListKind::Synonym) {
                out.concept_spans.push([h.start, h.end]);
            }
        }
        if out.classification.labels.contains(Label::Question) {
            let f = out.frame.get_or_insert_with(Frame::default);
            self.build_frame(&classifier, text, f, None);
        } else {
            out.frame = None;
        }
        Ok(())
    }

    /// Builds a question's frame; a romaji line is framed as the kana it stands for (its
    /// classification stays on the text as written). Leaves the analysis buffers as they were
    /// unless the line is romaji.
    fn build_frame(&mut self, classifier: &Classifier, text: &str, f: &mut Frame, names: Option<&mut FrameNames>) {
        match frame::romaji_to_kana(text) {
            Some(kana) => {
                let mut norm = Normalized::default();
                let mut tokens = Tokens::default();
                let mut hits = Vec::new();
                self.normalizer.process(&kana, &mut norm);
                self.tokenizer.process(norm.surface.as_str(), &mut tokens);
                classifier.dictionaries.find(norm.key.as_str(), &mut hits);
                frame::build(classifier, &norm, &tokens, &hits, f, names);
            }
            None => frame::build(classifier, &self.norm, &self.tokens, &self.hits, f, names),
        }
    }

    /// A text's question frame, whether or not it reads as a question (for training the
    /// identity model), with the analysis.
    pub fn frame_of(&mut self, text: &str) -> Option<Analysis> {
        let mut a = self.analyze(text).ok()?;
        if a.frame.is_none() {
            let classifier = self.engine.classifier.load_full();
            let mut f = Frame::default();
            self.build_frame(&classifier, text, &mut f, None);
            a.frame = Some(f);
        }
        Some(a)
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
        let frame = analysis.as_ref().and_then(|a| a.frame.as_ref()).map(|_| {
            let mut names = FrameNames::default();
            let mut f = Frame::default();
            self.build_frame(&classifier, text, &mut f, Some(&mut names));
            names
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
            frame,
        }
    }

    /// Two questions side by side: each one's frame, and whether the identity model takes them
    /// for one question, feature by feature. Frames are built whether or not the texts read as
    /// questions; scopes (products) are not considered here.
    pub fn explain_pair(&mut self, a: &str, b: &str) -> PairExplanation {
        let classifier = self.engine.classifier.load_full();
        let mut frame_of = |text: &str| {
            let mut names = FrameNames::default();
            let mut f = Frame::default();
            if self.analyze(text).is_ok() {
                self.build_frame(&classifier, text, &mut f, Some(&mut names));
            }
            (f, names)
        };
        let (fa, na) = frame_of(a);
        let (fb, nb) = frame_of(b);
        PairExplanation { a: na, b: nb, identity: self.engine.identity().explain(fa.view(), fb.view()) }
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
    /// What a question asks about, by name (questions only).
    pub frame: Option<FrameNames>,
}

/// Two questions' frames and the identity model's verdict on them.
#[derive(Debug, Clone, Serialize)]
pub struct PairExplanation {
    pub a: FrameNames,
    pub b: FrameNames,
    pub identity: identity::PairExplanation,
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
    /// The product on screen when the message was sent, if any.
    pub product: Option<&'a str>,
}

/// What a question (or any message) is about: a product of the stream, or the shop as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum About {
    /// Shipping, payment, coupons, delivery dates, the host, the stream; and whatever is asked
    /// while no product is on screen and none is named.
    #[default]
    Shop,
    /// A product, by id: the one the message names, else the one on screen.
    Product(Arc<str>),
}

impl About {
    /// The product id, when about a product.
    pub fn product(&self) -> Option<&str> {
        match self {
            About::Product(p) => Some(p),
            _ => None,
        }
    }

    /// Whether this is the shop as a whole.
    pub fn is_shop(&self) -> bool {
        matches!(self, About::Shop)
    }

    /// The question-identity scope: questions of different scopes are never one question.
    pub fn scope(&self) -> u64 {
        match self {
            About::Shop => 1,
            About::Product(p) => hash_str(p) | 2,
        }
    }
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
    /// What the message is about (for questions: the scope of its cluster).
    pub about: About,
    /// The kind of abuse, when labelled abuse.
    pub category: Option<AbuseCategory>,
}

/// Stateful dedupe and clustering of one stream. One owner.
pub struct StreamState {
    dedupe: Dedupe,
    classify: ClassifyConfig,
    catalog: Arc<Catalog>,
    mentions: Vec<Mention>,
}

impl StreamState {
    /// Runs the stateful stage and decides the verdict.
    pub fn process(&mut self, meta: Meta<'_>, mut analysis: Analysis) -> Verdict {
        let about = self.scope(&mut analysis, meta.product);
        let Analysis { mut classification, frame, key_hash, key_chars, topics, .. } = analysis;
        let input = DedupeInput {
            scope: about.scope(),
            user: meta.user,
            ts: meta.ts,
            key_hash,
            key_chars,
            is_question: classification.labels.contains(Label::Question),
            is_purchase: classification.labels.contains(Label::PurchaseIntent),
            frame: frame.as_ref(),
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
            about,
            category: classification.category,
        }
    }

    /// What a message is about. A question about a shop-wide concept (送料, 支払い) belongs to the
    /// shop. Otherwise the product the message names by a catalogue name or keyword (the one on
    /// screen when it names several, else the first), unless that keyword is also an attribute
    /// word (サイズ, ゴールド); failing that, the product on screen.
    /// What a message is about ([`StreamState::about`]); a question's frame then leaves out the
    /// words that only name its product, which the scope already says.
    pub fn scope(&mut self, analysis: &mut Analysis, on_screen: Option<&str>) -> About {
        let about = self.about(analysis, on_screen);
        if let Some(f) = analysis.frame.as_mut() {
            for m in &self.mentions {
                f.forget_span(&analysis.key, m.start as usize, m.end as usize);
            }
        }
        about
    }

    fn about(&mut self, analysis: &Analysis, on_screen: Option<&str>) -> About {
        if analysis.frame.as_ref().is_some_and(|s| s.shop) {
            return About::Shop;
        }
        self.catalog.mentions(&analysis.key, &mut self.mentions);
        let spans = &analysis.concept_spans;
        self.mentions.retain(|m| !spans.iter().any(|&[s, e]| s <= m.start && m.end <= e));
        let products = self.catalog.products();
        let named = |id: &str| self.mentions.iter().any(|m| products[m.product as usize].id == id);
        if let Some(on) = on_screen.filter(|on| named(on)) {
            return About::Product(Arc::from(on));
        }
        if let Some(m) = self.mentions.first() {
            return About::Product(Arc::from(products[m.product as usize].id.as_str()));
        }
        on_screen.map_or(About::Shop, |p| About::Product(Arc::from(p)))
    }

    /// Replaces the stream's catalogue (later messages are matched against it).
    pub fn set_catalog(&mut self, catalog: Arc<Catalog>) {
        self.catalog = catalog;
    }

    /// The stream's catalogue.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
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
