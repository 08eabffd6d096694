//! A frame through a stream's stateful stages: dedupe and clusters, the moderation decision,
//! the host queue, and the journal records they leave.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Out, Processed, StreamCtx, Streams, VerdictFrame, clock, too_many_streams};
use crate::ingest::{Item, message_id, take_message_id};
use crate::label::{Action, Label, LabelSet};
use crate::message::{InMessage, OutError, OutVerdict, Scores};
use crate::metrics::{Metrics, Refusal, RejectReason};
use crate::moderation::StreamModeration;
use crate::pipeline::classify::ClassifyConfig;
use crate::pipeline::{Analysis, Meta};
use crate::queue::{Asked, QuestionState};
use crate::runtime::clock::Clock;
use crate::server::config::FailPolicy;
use crate::store::{JournalSender, Record};

/// What one frame's items share while they go through the stream.
struct Frame<'a> {
    ctx: &'a mut StreamCtx,
    moderation: &'a mut StreamModeration,
    settings: &'a super::Settings,
    journal: &'a JournalSender,
    metrics: &'a Metrics,
    classify: &'a ClassifyConfig,
    clock: &'a Clock,
    policy: FailPolicy,
    /// The queue changed: host screens are told once, after the frame.
    changed: bool,
    /// Questions asked in this frame, each once.
    asked: Vec<u32>,
    /// What the frame's verdicts wait for (a question id not yet durably reserved).
    durable: Option<(watch::Receiver<u32>, u32)>,
}

impl Streams {
    /// Runs a frame's items through their stream: a verdict or an error per item, in order.
    /// A stream that cannot be created (`max_streams`) answers every item with an error.
    pub fn process(&mut self, stream: Arc<str>, items: Vec<Item>) -> Processed {
        if self.stream(&stream).is_none() {
            return Processed { outs: too_many_streams(items), durable: None };
        }
        let moderation = self.moderation.stream(&stream);
        let mut moderation = moderation.lock().unwrap_or_else(|e| e.into_inner());
        let policy = moderation.settings.fail_policy.unwrap_or(self.settings.policy);
        let Some(ctx) = self.streams.get_mut(&stream) else {
            return Processed { outs: too_many_streams(items), durable: None };
        };
        let mut f = Frame {
            ctx,
            moderation: &mut moderation,
            settings: &self.settings,
            journal: &self.journal,
            metrics: &self.metrics,
            classify: &self.engine.config.classify,
            clock: &self.clock,
            policy,
            changed: false,
            asked: Vec::new(),
            durable: None,
        };
        let outs = items
            .into_iter()
            .map(|item| match item {
                Item::Analyzed(m, mut analysis) => f.analyzed(m, &mut analysis),
                Item::OverBudget(m) => f.over_budget(m),
                Item::Rejected { id, error, reason } => Out::Error(OutError { id, error }, reason),
                Item::Parsed(m) => Out::Error(
                    OutError { id: message_id(&m), error: "server is shutting down".into() },
                    RejectReason::ShuttingDown,
                ),
            })
            .collect();
        f.finish();
        Processed { outs, durable: f.durable }
    }
}

impl Frame<'_> {
    /// An analyzed message: dedupe and clusters, the moderation decision, the host queue.
    fn analyzed(&mut self, mut m: InMessage, analysis: &mut Analysis) -> Out {
        let ctx = &mut *self.ctx;
        let (ts, clamped) = ctx.message_ts(m.ts, self.settings.max_ts_skew, self.clock);
        if clamped {
            self.metrics.refused(Refusal::Timestamp);
        }
        if ts >= ctx.last_ts {
            ctx.last_ts = ts;
            ctx.last_wall = self.clock.now();
        }
        let mut verdict = ctx.state.process_in_place(
            Meta { user: m.user.as_deref(), ts, product: ctx.queue.current_product.as_deref() },
            analysis,
        );
        if let Some(c) = verdict.cluster.as_mut() {
            c.id = c.id.saturating_add(ctx.base);
            if c.id > ctx.max_id {
                ctx.max_id = c.id;
                if let Some(wait) = ctx.reserve(c.id, self.journal) {
                    self.durable = Some(wait);
                }
            }
        }
        let id = take_message_id(&mut m);
        let product = ctx.queue.current_product.as_deref();
        self.moderation.observe(&id, m.user.as_deref(), &m.text, ts, product, &mut verdict, self.classify);
        let (mut answered_at, mut answer) = (None, None);
        if let (Some(c), Action::Allow) = (verdict.cluster, verdict.action) {
            let q = ctx.queue.observe(&Asked {
                cluster: c.id,
                askers: c.askers,
                user: m.user.as_deref(),
                text: &m.text,
                ts,
                topics: &verdict.topics,
                product: verdict.about.product(),
                shop: verdict.about.is_shop(),
                paid: m.paid_money().ok().flatten(),
                intent: verdict.labels.contains(Label::PurchaseIntent),
            });
            if let QuestionState::Answered(at) = q.state {
                answered_at = Some(clock(at, self.settings.utc_offset));
                answer = q.answer.clone();
            }
            if !self.asked.contains(&c.id) {
                self.asked.push(c.id);
            }
            self.trim(ts, c.id);
            self.changed = true;
        }
        // The topics are not needed past the queue: moved into the verdict, not copied.
        let topics = std::mem::take(&mut verdict.topics);
        let mut out = OutVerdict::new(id.clone(), m.text.len(), None, &verdict);
        out.topics = topics;
        let frame = VerdictFrame { verdict: out, degraded: None, answered_at, answer };
        if self.settings.record_messages {
            self.journal.send(Record::Message {
                stream: self.ctx.name.clone(),
                id,
                ts,
                user: m.user,
                text: m.text,
                action: verdict.action,
                labels: verdict.labels,
                cluster: verdict.cluster.map(|c| c.id),
                product: verdict.about.product().map(Arc::from),
            });
        }
        Out::Verdict(frame)
    }

    /// A full queue goes down to 90% at once, so it is not re-scored per question.
    fn trim(&mut self, ts: u64, keep: u32) {
        let ctx = &mut *self.ctx;
        if ctx.queue.len() <= self.settings.max_questions {
            return;
        }
        let excess = ctx.queue.len() - self.settings.max_questions * 9 / 10;
        for victim in ctx.queue.trim_candidates(ts, keep, excess) {
            ctx.queue.remove(victim);
            self.metrics.questions_trimmed.inc();
            self.journal.send(Record::QuestionRemoved { stream: ctx.name.clone(), cluster: victim });
        }
    }

    /// A message not analyzed within the budget: the fail-open or fail-closed verdict.
    fn over_budget(&mut self, m: InMessage) -> Out {
        let action = match self.policy {
            FailPolicy::Open => Action::Allow,
            FailPolicy::Closed => Action::Hold,
        };
        let id = message_id(&m);
        let (ts, _) = self.ctx.message_ts(m.ts, self.settings.max_ts_skew, self.clock);
        self.moderation.over_budget(&id, m.user.as_deref(), &m.text, ts, action);
        if self.settings.record_messages {
            self.journal.send(Record::Message {
                stream: self.ctx.name.clone(),
                id: id.clone(),
                ts,
                user: m.user,
                text: m.text,
                action,
                labels: LabelSet::default(),
                cluster: None,
                product: self.ctx.queue.current_product.as_deref().map(Arc::from),
            });
        }
        Out::Verdict(VerdictFrame {
            verdict: OutVerdict {
                id,
                labels: Vec::new(),
                action,
                scores: Scores { question: 0.0, purchase_intent: 0.0, spam: 0.0, abuse: 0.0 },
                cluster: None,
                reasons: Vec::new(),
                abuse_category: None,
                topics: Vec::new(),
                product: None,
                shop: false,
            },
            degraded: Some("over_budget"),
            answered_at: None,
            answer: None,
        })
    }

    /// After the frame: each question asked is journaled once per `question_interval`, in its
    /// state then (the record is an upsert; one trimmed meanwhile was journaled as removed);
    /// dedupe's evictions are counted; host screens are told.
    fn finish(&mut self) {
        let ctx = &mut *self.ctx;
        for &cluster in &self.asked {
            if self.settings.question_interval.is_zero() {
                if let Some(q) = ctx.queue.get(cluster) {
                    self.journal.send(Record::Question { stream: ctx.name.clone(), question: q.clone() });
                }
            } else if ctx.unjournaled_ids.insert(cluster) {
                ctx.unjournaled.push_back((self.clock.now(), cluster));
                self.metrics.journal_lag.inc();
            }
        }
        self.metrics.dedupe_evicted(ctx.state.take_evictions());
        if self.changed {
            ctx.changed();
        }
    }
}
