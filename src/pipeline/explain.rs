//! What the pipeline sees in one message, for people: [`Analyzer::explain`] and
//! [`Analyzer::explain_pair`] and the shapes they return (`kotae explain`, the console).

use serde::Serialize;

use super::Analyzer;
use super::classify::{self, AbuseCategory, Ngrams};
use super::frame::{Frame, FrameNames};
use super::identity;
use crate::label::Label;

impl Analyzer {
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
}

/// What [`Analyzer::explain`] shows.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// NFKC view (the tokenizer's input).
    pub surface: String,
    /// Folded matching key (what dictionaries match).
    pub key: String,
    /// Lindera's tokens of the NFKC view, in order.
    pub tokens: Vec<ExplainedToken>,
    /// Every dictionary entry found in the key.
    pub hits: Vec<ExplainedHit>,
    /// Every feature the message has, with its weights in the model.
    pub features: Vec<ExplainedFeature>,
    /// The character n-grams that mattered most (also among `features`), strongest first.
    pub ngrams: Vec<ExplainedFeature>,
    /// The labels given.
    pub labels: Vec<Label>,
    /// Scores (0–1) for question, purchase_intent, spam and abuse.
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
    /// The first question's frame.
    pub a: FrameNames,
    /// The second question's frame.
    pub b: FrameNames,
    /// The identity model's features, score and verdict for the pair, with the rule that
    /// decided it.
    pub identity: identity::PairExplanation,
}

/// A token as [`Explanation`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedToken {
    /// The token as it stands in the text.
    pub surface: String,
    /// Its dictionary (base) form.
    pub base: String,
    /// Its coarse part of speech (名詞, 動詞, 助詞, …).
    pub pos: &'static str,
    /// Not in the tokenizer's dictionary (segmented by the unknown-word rules).
    pub unknown: bool,
}

/// A dictionary hit as [`Explanation`] shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedHit {
    /// The rule id of the entry's section (`ja.question.masuka`).
    pub rule: String,
    /// Byte range `[start, end)` of the match in the original text.
    pub span: [u32; 2],
    /// The original text within `span`.
    pub original: String,
}

/// A feature with its weights toward question, purchase_intent, spam, abuse.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedFeature {
    /// The feature's name (`ja.tok.final.か`, `w:在庫`, `c:ぶす`).
    pub name: String,
    /// Its weights toward question, purchase_intent, spam and abuse.
    pub weights: [f32; 4],
    /// Byte range `[start, end)` in the original text.
    pub span: [u32; 2],
}
