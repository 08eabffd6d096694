//! The message pipeline: normalize → tokenize → classify (stateless, fused in one call per
//! message on a worker: [`Analyzer`]) then dedupe/cluster (stateful, one owner per stream:
//! [`StreamState`]).
//!
//! # Layout
//! - this file: the pipeline's configuration, the [`Engine`] shared by all workers, and the
//!   [`Analyzer`] that runs the stateless stages.
//! - `explain`: [`Analyzer::explain`] and what it shows.
//! - `stream`: the stateful stage, [`StreamState`], and the [`Verdict`] it gives.

pub mod attribute;
pub mod classify;
pub mod dedupe;
mod explain;
pub mod frame;
pub mod identity;
pub mod normalize;
pub mod similarity;
mod stream;
pub mod tokenize;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::catalog::Catalog;
use crate::dictionary::{Dictionaries, DictionaryError, Hit, ListKind};
use crate::label::{Label, LabelSet};
use attribute::AttributeModel;
use classify::{Classification, Classifier, ClassifyConfig, Model, ModelError, Scratch};
use dedupe::{Dedupe, DedupeConfig, hash_str};
pub use explain::{ExplainedFeature, ExplainedHit, ExplainedToken, Explanation, PairExplanation};
use frame::{Frame, FrameNames};
use identity::{IdentityError, IdentityModel};
use normalize::{NormalizeConfig, Normalized, Normalizer};
pub use stream::{About, Meta, StreamState, Verdict};
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
    /// Normalization steps (`[pipeline.normalize]`).
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// The tokenizer and its dictionary cache (`[pipeline.tokenize]`).
    #[serde(default)]
    pub tokenize: TokenizeConfig,
    /// Thresholds, severities and the model (`[pipeline.classify]`).
    #[serde(default)]
    pub classify: ClassifyConfig,
    /// Repeats, copypasta and question clusters (`[pipeline.dedupe]`).
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

    /// The attribute model (`model/attributes.tsv` in the dictionary directory, else the
    /// built-in one), or none when neither has one.
    pub fn load_attributes(&self) -> Result<AttributeModel, attribute::AttributeError> {
        let path = self.layered(Path::new("model/attributes.tsv"));
        if path.exists() { AttributeModel::load(&path) } else { Ok(AttributeModel::default()) }
    }

    /// The similarity model (`model/similarity.tsv` in the dictionary directory, else the
    /// built-in one), or none when neither has one.
    pub fn load_similarity(&self) -> Result<similarity::SimilarityModel, similarity::SimilarityError> {
        let path = self.layered(Path::new("model/similarity.tsv"));
        if path.exists() { similarity::SimilarityModel::load(&path) } else { Ok(Default::default()) }
    }

    /// Where `kotae train-similarity` writes the similarity model.
    pub fn similarity_out_path(&self) -> PathBuf {
        self.dictionary_dir().join("model/similarity.tsv")
    }

    /// Where `kotae train-attributes` writes the attribute model.
    pub fn attributes_out_path(&self) -> PathBuf {
        self.dictionary_dir().join("model/attributes.tsv")
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
    /// The tokenizer's dictionary could not be loaded or built.
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// A keyword list is missing or has errors (each with its file and line).
    #[error(transparent)]
    Dictionary(#[from] DictionaryError),
    /// The label model file is missing or malformed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The question-identity model file is missing or malformed.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The attribute model could not be read.
    #[error(transparent)]
    Attribute(#[from] attribute::AttributeError),
    /// The similarity model could not be read.
    #[error(transparent)]
    Similarity(#[from] similarity::SimilarityError),
    /// The built-in lists and model could not be written out to the cache directory.
    #[error("cannot write the built-in dictionaries to the cache directory: {0}")]
    Builtin(#[from] std::io::Error),
}

/// Why a message was rejected before classification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The text's length in bytes, and `max_message_bytes`.
    #[error("message is {0} bytes, over the limit of {1}")]
    TooLarge(usize, usize),
    /// Nothing is left of the text once invisible characters are removed.
    #[error("message text is empty")]
    Empty,
}

/// Everything built once at start-up and shared by all workers. The classifier (dictionaries
/// and model) is swapped whole on reload; workers see the new one from their next message.
pub struct Engine {
    /// The pipeline's configuration, as loaded at start-up.
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
        let mut identity = IdentityModel::load(&engine.config.identity_path())?;
        identity.attributes = Arc::new(engine.config.load_attributes()?);
        identity.similarity = Arc::new(engine.config.load_similarity()?);
        engine.set_identity(identity);
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
        let dictionaries = Self::load_dictionaries(&config, &tokenizer)?;
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

    /// The writable dictionary directory over the built-in lists, with the kana readings of
    /// concept entries from the tokenizer.
    fn load_dictionaries(config: &PipelineConfig, tokenizer: &TokenizerShared) -> Result<Dictionaries, PipelineError> {
        let mut t = tokenizer.tokenizer();
        Ok(Dictionaries::load_layered(
            &config.dictionary_dir(),
            config.defaults(),
            &config.normalize,
            Some(&mut |w: &str| t.reading(w)),
        )?)
    }

    /// Loads dictionaries (with the kana readings of concept entries) and the model from disk; a
    /// missing model is an error.
    fn load_classifier(config: &PipelineConfig, tokenizer: &TokenizerShared) -> Result<Classifier, PipelineError> {
        let dictionaries = Self::load_dictionaries(config, tokenizer)?;
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
            frame: Frame::default(),
            ngrams: Vec::new(),
            chars: Vec::new(),
            staged: Vec::new(),
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
    /// Labels, scores, reasons and the action the labels alone call for.
    pub classification: Classification,
    /// Present when the message is a question.
    pub frame: Option<Frame>,
    /// Hash of the matching key (the normalized text), for repeats and copypasta.
    pub key_hash: u64,
    /// Characters in the matching key.
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
    /// A question's frame is built here, then copied out at its final size: built in a fresh
    /// analysis, each list would grow (and be copied) entry by entry.
    frame: Frame,
    /// The character n-grams of the question whose frame is being built, for its attribute.
    ngrams: Vec<u64>,
    /// Scratch for them.
    chars: Vec<char>,
    /// Per-message buffers of [`Analyzer::analyze_batch`].
    staged: Vec<Staged>,
}

/// Most messages [`Analyzer::analyze_batch`] takes through one stage before the next: few
/// enough that their buffers leave the runtime threads on the same cores their share of the
/// caches (64 measured slower for those; docs/performance.md, section 20).
const STAGED: usize = 16;

/// One message's buffers while its batch is analyzed stage by stage.
#[derive(Default)]
struct Staged {
    norm: Normalized,
    tokens: Tokens,
    hits: Vec<Hit>,
}

/// The character n-grams of the matching key a question's frame is built from, for its
/// attribute; with `names`, also written out (for training).
fn key_ngrams(key: &str, chars: &mut Vec<char>, out: &mut Vec<u64>, names: Option<&mut FrameNames>) {
    attribute::ngrams(key, chars, out);
    if let Some(n) = names {
        n.ngrams = attribute::ngram_names(key);
    }
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
        self.admit(text)?;
        let classifier = self.engine.classifier.load();
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find_mapped(&self.norm.key, &mut self.hits);
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out.classification);
        self.classified(&classifier, text, out);
        Ok(())
    }

    /// As [`Analyzer::analyze`] for every text of a batch, stage by stage: the normalizer, the
    /// tokenizer, the dictionaries and the classifier each run over up to [`STAGED`] messages
    /// before the next takes them, with its tables and code still in the caches; then the
    /// questions' frames. The analyses are the same as one by one.
    pub fn analyze_batch(&mut self, texts: &[&str]) -> Vec<Result<Analysis, Reject>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(STAGED) {
            self.analyze_staged(chunk, &mut out);
        }
        out
    }

    fn analyze_staged(&mut self, texts: &[&str], out: &mut Vec<Result<Analysis, Reject>>) {
        let classifier = self.engine.classifier.load();
        let admitted: SmallVec<[Result<(), Reject>; STAGED]> = texts.iter().map(|t| self.admit(t)).collect();
        let ok: SmallVec<[&str; STAGED]> =
            texts.iter().zip(&admitted).filter(|(_, a)| a.is_ok()).map(|(t, _)| *t).collect();
        if self.staged.len() < ok.len() {
            self.staged.resize_with(ok.len(), Staged::default);
        }
        let mut staged = std::mem::take(&mut self.staged);
        let staged_ok = &mut staged[..ok.len()];
        for (text, s) in ok.iter().zip(staged_ok.iter_mut()) {
            self.normalizer.process(text, &mut s.norm);
        }
        for s in staged_ok.iter_mut() {
            self.tokenizer.process(s.norm.surface.as_str(), &mut s.tokens);
        }
        for s in staged_ok.iter_mut() {
            classifier.dictionaries.find_mapped(&s.norm.key, &mut s.hits);
        }
        let mut analyses = Vec::with_capacity(ok.len());
        for (text, s) in ok.iter().zip(staged_ok.iter()) {
            let mut a = Analysis::default();
            classifier.classify(text, &s.norm, &s.tokens, &s.hits, &mut self.scratch, &mut a.classification);
            analyses.push(a);
        }
        // The rest reads the analyzer's own buffers: each message's are swapped in for it.
        let mut done = ok.iter().zip(staged_ok.iter_mut()).zip(analyses);
        for admitted in admitted {
            out.push(admitted.map(|()| {
                let ((text, s), mut a) = done.next().expect("a staged message per admitted text");
                self.swap_buffers(s);
                self.classified(&classifier, text, &mut a);
                self.swap_buffers(s);
                a
            }));
        }
        self.staged = staged;
    }

    fn swap_buffers(&mut self, s: &mut Staged) {
        std::mem::swap(&mut self.norm, &mut s.norm);
        std::mem::swap(&mut self.tokens, &mut s.tokens);
        std::mem::swap(&mut self.hits, &mut s.hits);
    }

    /// Rejects empty and oversize texts.
    fn admit(&self, text: &str) -> Result<(), Reject> {
        let limit = self.engine.config.max_message_bytes;
        if text.len() > limit {
            return Err(Reject::TooLarge(text.len(), limit));
        }
        if crate::message::is_blank(text) {
            return Err(Reject::Empty);
        }
        Ok(())
    }

    /// The rest of the analysis of a message classified from the analyzer's buffers: its key,
    /// its topics and, for a question, its frame.
    fn classified(&mut self, classifier: &Classifier, text: &str, out: &mut Analysis) {
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
            let mut f = std::mem::take(&mut self.frame);
            self.build_frame(classifier, text, &mut f, None);
            out.frame.get_or_insert_with(Frame::default).copy_from(&f);
            self.frame = f;
        } else {
            out.frame = None;
        }
    }

    /// Builds a question's frame; a romaji line is framed as the kana it stands for (its
    /// classification stays on the text as written). Leaves the analysis buffers as they were
    /// unless the line is romaji.
    fn build_frame(&mut self, classifier: &Classifier, text: &str, f: &mut Frame, mut names: Option<&mut FrameNames>) {
        self.fill_frame(classifier, text, f, names.as_deref_mut());
        // Then, from the whole frame, its units the pair model knows associations of and what it
        // asks about.
        let identity = self.engine.identity.load();
        let mut assoc = std::mem::take(&mut f.assoc);
        identity.associations.known_units(f.view(), &mut assoc);
        f.assoc = assoc;
        let attributes = &identity.attributes;
        if !attributes.is_empty() {
            f.attribute = attributes.predict(f.view(), &self.ngrams);
            // Naming no concept, a question the model surely reads as the shop's (店員さん何センチ
            // ですか, 支払い方法は何がありますか) is the shop's, as if it had named one.
            if !f.shop && f.concepts.is_empty() && attributes.is_shop(f.attribute) {
                f.shop = true;
            }
            if let Some(n) = names {
                n.shop = f.shop;
                n.attribute = (f.attribute.id != 0).then(|| (attributes.name(f.attribute).to_string(), f.attribute.p));
                let second = attribute::Attribute { id: f.attribute.second, ..Default::default() };
                n.attribute_second =
                    (f.attribute.second != 0).then(|| (attributes.name(second).to_string(), f.attribute.second_p));
            }
        }
        let mut vector = std::mem::take(&mut f.vector);
        identity.similarity.embed(f.view(), &self.ngrams, &mut vector);
        f.vector = vector;
    }

    /// The frame's parts, before its attribute.
    fn fill_frame(&mut self, classifier: &Classifier, text: &str, f: &mut Frame, mut names: Option<&mut FrameNames>) {
        match frame::romaji_to_kana(text) {
            Some(kana) => {
                let mut norm = Normalized::default();
                let mut tokens = Tokens::default();
                let mut hits = Vec::new();
                self.normalizer.process(&kana, &mut norm);
                self.tokenizer.process(norm.surface.as_str(), &mut tokens);
                classifier.dictionaries.find_mapped(&norm.key, &mut hits);
                key_ngrams(norm.key.as_str(), &mut self.chars, &mut self.ngrams, names.as_deref_mut());
                frame::build(classifier, &norm, &tokens, &hits, f, names);
                // Its asides are places in the kana, not in the text the catalogue is matched on.
                f.asides.clear();
            }
            None => {
                key_ngrams(self.norm.key.as_str(), &mut self.chars, &mut self.ngrams, names.as_deref_mut());
                frame::build(classifier, &self.norm, &self.tokens, &self.hits, f, names)
            }
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

    /// As [`Analyzer::frame_of`], with what each of the frame's hashes stands for (for learning
    /// associations).
    pub fn named_frame_of(&mut self, text: &str) -> Option<(Analysis, FrameNames)> {
        let mut a = self.analyze(text).ok()?;
        let classifier = self.engine.classifier.load_full();
        let mut f = Frame::default();
        let mut names = FrameNames::default();
        self.build_frame(&classifier, text, &mut f, Some(&mut names));
        a.frame = Some(f);
        Some((a, names))
    }

    /// Every feature name of a text, the prior of its declared rules per label and of its abuse
    /// sections per category (for training).
    pub fn feature_names(&mut self, text: &str) -> (Vec<String>, [f32; 4], [f32; classify::CATEGORIES]) {
        let classifier = self.engine.classifier.load();
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find_mapped(&self.norm.key, &mut self.hits);
        classifier.training_features(text, &self.norm, &self.tokens, &self.hits)
    }

    /// The classification under another classifier, statelessly (for dry runs of edits).
    pub fn classify_with(&mut self, classifier: &Classifier, text: &str) -> Classification {
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find_mapped(&self.norm.key, &mut self.hits);
        let mut out = Classification::default();
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out);
        out
    }

    /// Labels under another classifier, statelessly (for cross-validation).
    pub fn labels_with(&mut self, classifier: &Classifier, text: &str) -> LabelSet {
        self.normalizer.process(text, &mut self.norm);
        self.tokenizer.process(self.norm.surface.as_str(), &mut self.tokens);
        classifier.dictionaries.find_mapped(&self.norm.key, &mut self.hits);
        let mut out = Classification::default();
        classifier.classify(text, &self.norm, &self.tokens, &self.hits, &mut self.scratch, &mut out);
        out.labels
    }
}
