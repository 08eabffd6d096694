//! The stateful stage of one stream: [`StreamState`] turns an [`Analysis`] into a [`Verdict`]
//! through dedupe and clustering, deciding what the message is [`About`].

use std::sync::Arc;

use super::Analysis;
use super::classify::{AbuseCategory, Classification, ClassifyConfig, Reason};
use super::dedupe::{self, ClusterRef, Dedupe, DedupeInput, hash_str};
use crate::catalog::{Catalog, Mention};
use crate::label::{Action, Label, LabelSet};

/// Who sent a message and when, as the stateful stage needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta<'a> {
    /// The sender's id on the platform, when the message has one.
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

    /// The scope a question's cluster is found in: [`About::scope`], and for a question about
    /// the stream itself ([`Frame::stream`]: its sound, picture, schedule) one of its own beside
    /// the shop's, so that it never shares an item with the shop's other questions.
    ///
    /// [`Frame::stream`]: super::frame::Frame::stream
    pub fn cluster_scope(&self, frame: Option<&super::frame::Frame>) -> u64 {
        const STREAM: u64 = 0x7374_7265_616d_0000;
        self.scope() ^ if frame.is_some_and(|f| f.stream) { STREAM } else { 0 }
    }
}

/// The outcome for one message: labels, action, scores, cluster and reasons.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The labels given (after the stateful stage's repeat and copypasta checks).
    pub labels: LabelSet,
    /// What the platform should do with the message.
    pub action: Action,
    /// Scores (0–1) for question, purchase_intent, spam and abuse.
    pub scores: [f32; 4],
    /// The question cluster the message joined (questions only).
    pub cluster: Option<ClusterRef>,
    /// The rules and features behind each label, at least one per label given.
    pub reasons: Vec<Reason>,
    /// How many times this user sent this text within the dedupe window.
    pub repeats: u32,
    /// Purchase-blocking topics the message names (section names of the `topics` list).
    pub topics: Vec<String>,
    /// What the message is about (for questions: the scope of its cluster).
    pub about: About,
    /// The kind of abuse, when labelled abuse.
    pub category: Option<AbuseCategory>,
}

/// Stateful dedupe and clustering of one stream. One owner.
pub struct StreamState {
    pub(super) dedupe: Dedupe,
    pub(super) classify: ClassifyConfig,
    pub(super) catalog: Arc<Catalog>,
    pub(super) mentions: Vec<Mention>,
}

impl StreamState {
    /// Runs the stateful stage and decides the verdict.
    pub fn process(&mut self, meta: Meta<'_>, mut analysis: Analysis) -> Verdict {
        self.process_in_place(meta, &mut analysis)
    }

    /// [`StreamState::process`] on an analysis where it lies (a boxed one handed over by a
    /// worker is not copied out of its box): its reasons and topics are taken into the verdict.
    pub fn process_in_place(&mut self, meta: Meta<'_>, analysis: &mut Analysis) -> Verdict {
        let about = self.scope(analysis, meta.product);
        let mut classification =
            Classification { reasons: std::mem::take(&mut analysis.classification.reasons), ..analysis.classification };
        let topics = std::mem::take(&mut analysis.topics);
        let Analysis { ref frame, key_hash, key_chars, .. } = *analysis;
        let input = DedupeInput {
            scope: about.cluster_scope(frame.as_ref()),
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
    /// word (サイズ, ゴールド) or stands in a sentence beside the question (「…？あとでパンツの
    /// とこ見返したい」); failing that, the product on screen.
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
        let asides = analysis.frame.as_ref().map_or(&[][..], |f| &f.asides[..]);
        self.mentions.retain(|m| {
            let inside = |&[s, e]: &[u32; 2]| s <= m.start && m.end <= e;
            !spans.iter().any(inside) && !asides.iter().any(inside)
        });
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

    /// What the dedupe stage remembers (windows and clusters), as a cluster snapshot keeps it.
    pub fn export_dedupe(&self) -> dedupe::DedupeState {
        self.dedupe.export()
    }

    /// Takes back what [`StreamState::export_dedupe`] gave.
    pub fn import_dedupe(&mut self, state: dedupe::DedupeState) {
        self.dedupe.import(state);
    }
}
