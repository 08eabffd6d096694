//! What travels between instances and what the partition journals hold: JSON, so a journal can
//! be read with the `nats` tool.

use serde::{Deserialize, Serialize};

use crate::message::{InMessage, OutError, OutVerdict};
use crate::metrics::RejectReason;
use crate::stream::{Out, VerdictFrame};

/// A request to a partition's owner. `Ingest` and `Act` are also the partition journal's
/// records (what a new owner replays); `List` is only asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Input {
    /// A frame's messages, in order, not yet analyzed (the owner analyzes them).
    Ingest {
        /// Request id, also the journal's de-duplication id (`Nats-Msg-Id`).
        rid: String,
        stream: String,
        messages: Vec<InMessage>,
    },
    /// A host action on a question.
    Act {
        rid: String,
        stream: String,
        cluster: u32,
        action: String,
        /// `None`: keep the answer text given before; `Some("")`: clear it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<String>,
    },
    /// The stream's products (already validated by the receiving instance).
    Catalog { rid: String, stream: String, spec: crate::catalog::CatalogSpec },
    /// The product on screen now.
    Product { rid: String, stream: String, product: Option<String> },
    /// The ranked questions of a stream.
    List { stream: String },
    /// The stream's products as last set.
    GetCatalog { stream: String },
    /// A moderator's request about a stream; journaled when it changes state (a decision on a
    /// held message, the stream's settings).
    Moderate { rid: String, stream: String, request: crate::server::StreamRequest },
    /// A journal record only, never a request: a new owner's first append, after which an
    /// earlier owner's appends are refused (they expect an older last sequence).
    Fence { owner: String },
}

impl Input {
    /// The request id of a request that changes the partition's state (and is journaled).
    pub fn rid(&self) -> Option<&str> {
        match self {
            Self::Ingest { rid, .. }
            | Self::Act { rid, .. }
            | Self::Catalog { rid, .. }
            | Self::Product { rid, .. }
            | Self::Moderate { rid, .. } => Some(rid),
            Self::List { .. } | Self::GetCatalog { .. } | Self::Fence { .. } => None,
        }
    }
}

/// One message's outcome on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum WireOut {
    Verdict {
        v: OutVerdict,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        degraded: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answered_at: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        answer: Option<Box<str>>,
    },
    Error {
        e: OutError,
        reason: usize,
    },
}

/// The owner's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Reply {
    /// One outcome per message of an `Ingest`, in order.
    Outs { outs: Vec<WireOut> },
    /// The question list (`List`) or the question acted on (`Act`; `null`: no such question).
    Json { value: serde_json::Value },
    /// The owner could not take the request (journal unavailable, stopping).
    Failed { error: String },
    /// The owner refused the request as the receiving instance would have: HTTP status, why.
    Refused { status: u16, error: String },
    /// The instance was deposed before it journaled the request (its append was fenced): the
    /// request goes again, to the partition's new owner.
    Moved,
}

impl WireOut {
    /// An outcome as it goes on the wire.
    pub fn from_out(out: Out) -> Self {
        match out {
            Out::Verdict(f) => WireOut::Verdict {
                v: f.verdict,
                degraded: f.degraded.is_some(),
                answered_at: f.answered_at,
                answer: f.answer,
            },
            Out::Error(e, reason) => {
                WireOut::Error { e, reason: RejectReason::ALL.iter().position(|r| *r == reason).unwrap_or(0) }
            }
        }
    }

    /// Back to an outcome.
    pub fn into_out(self) -> Out {
        match self {
            WireOut::Verdict { v, degraded, answered_at, answer } => Out::Verdict(VerdictFrame {
                verdict: v,
                degraded: degraded.then_some("over_budget"),
                answered_at,
                answer,
            }),
            WireOut::Error { e, reason } => {
                Out::Error(e, RejectReason::ALL.get(reason).copied().unwrap_or(RejectReason::Malformed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label::{Action, Label};
    use crate::message::{OutReason, Scores};

    #[test]
    fn outcomes_cross_the_wire_unchanged() {
        let verdict = OutVerdict {
            id: "m1".into(),
            labels: vec![Label::Question],
            action: Action::Allow,
            scores: Scores { question: 0.5, purchase_intent: 0.0, spam: 0.0, abuse: 0.0 },
            cluster: Some("s:q3".into()),
            reasons: vec![OutReason { label: Label::Question, rule: "ja.q".into(), span: [0, 3] }],
            abuse_category: None,
            topics: vec!["size".into()],
            product: Some("p1".into()),
            shop: false,
        };
        let outs = vec![
            Out::Verdict(VerdictFrame {
                verdict,
                degraded: Some("over_budget"),
                answered_at: Some("12:03".into()),
                answer: Some("はい".into()),
            }),
            Out::Error(OutError { id: "2".into(), error: "rate limited".into() }, RejectReason::RateLimited),
        ];
        let json = serde_json::to_string(&Reply::Outs { outs: outs.iter().cloned().map(WireOut::from_out).collect() })
            .unwrap();
        let Reply::Outs { outs: back } = serde_json::from_str(&json).unwrap() else { panic!("not outs") };
        let back: Vec<Out> = back.into_iter().map(WireOut::into_out).collect();
        assert_eq!(format!("{outs:?}"), format!("{back:?}"));
    }
}
