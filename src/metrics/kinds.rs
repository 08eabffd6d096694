//! The bounded label values of the metrics: outcomes, reasons, stages, channels, endpoints,
//! connection events and refusals, each with its label text.

use crate::label::Action;

/// The single outcome of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The verdict let it through ([`Action::Allow`]).
    Allowed,
    /// The verdict kept it back for a moderator ([`Action::Hold`]).
    Held,
    /// The verdict kept it from viewers ([`Action::Block`]).
    Blocked,
    /// It got an error instead of a verdict (counted by [`RejectReason`] as well).
    Rejected,
}

impl Outcome {
    /// Every outcome, in declaration order (the counters are indexed by it).
    pub const ALL: [Outcome; 4] = [Outcome::Allowed, Outcome::Held, Outcome::Blocked, Outcome::Rejected];
    /// The `outcome` label value (`allowed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Held => "held",
            Outcome::Blocked => "blocked",
            Outcome::Rejected => "rejected",
        }
    }
    /// The outcome of a message given this verdict action.
    pub fn of(action: Action) -> Self {
        match action {
            Action::Allow => Outcome::Allowed,
            Action::Hold => Outcome::Held,
            Action::Block => Outcome::Blocked,
        }
    }
}

/// Why a message got an error instead of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Not JSON, not an object, or no `text`.
    Malformed,
    /// Frame or message over its size limit, or an array over `max_batch`.
    TooLarge,
    /// Empty text.
    Empty,
    /// Over the connection's message rate.
    RateLimited,
    /// The server is shutting down and the pipeline is gone.
    ShuttingDown,
    /// A new stream while `max_streams` streams are in memory.
    TooManyStreams,
}

impl RejectReason {
    /// Every reason, in declaration order (the counters are indexed by it).
    pub const ALL: [RejectReason; 6] = [
        RejectReason::Malformed,
        RejectReason::TooLarge,
        RejectReason::Empty,
        RejectReason::RateLimited,
        RejectReason::ShuttingDown,
        RejectReason::TooManyStreams,
    ];
    /// The `reason` label value of `kotae_rejected_total` (`too_large`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::Empty => "empty",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::ShuttingDown => "shutting_down",
            RejectReason::TooManyStreams => "too_many_streams",
        }
    }
}

/// Timed stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Frame arrival until a worker takes it (admission wait plus queueing).
    Queue,
    /// normalize → tokenize → classify → frame for one message: its share of its frame's
    /// analysis (a frame's messages are analyzed together, stage by stage).
    Analyze,
    /// dedupe, cluster and rank for one frame.
    Stateful,
    /// Frame arrival until its verdicts are written to the socket.
    Frame,
    /// One journal transaction.
    Journal,
    /// A worker analyzing one frame's messages.
    Worker,
    /// A worker's answer until the frame's connection task runs again (a runtime thread wakes).
    WorkerReply,
    /// A frame's wait for its shard's lock.
    ShardQueue,
    /// A frame's outcomes back on its connection until they are written (encoding, earlier
    /// frames' writes, the socket).
    Write,
}

impl Stage {
    /// Every stage, in declaration order (the histograms are indexed by it).
    pub const ALL: [Stage; 9] = {
        use Stage::*;
        [Queue, Analyze, Stateful, Frame, Journal, Worker, WorkerReply, ShardQueue, Write]
    };
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Analyze => "analyze",
            Stage::Stateful => "stateful",
            Stage::Frame => "frame",
            Stage::Journal => "journal",
            Stage::Worker => "worker",
            Stage::WorkerReply => "worker_reply",
            Stage::ShardQueue => "shard_queue",
            Stage::Write => "write",
        }
    }
}

/// The bounded channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Frames waiting for a slot in the analysis worker pool.
    Workers,
    /// Frames waiting for their stream shard's lock.
    Shards,
    /// Records waiting for the journal writer thread.
    Journal,
}

impl Channel {
    pub(super) const ALL: [Channel; 3] = [Channel::Workers, Channel::Shards, Channel::Journal];
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Channel::Workers => "workers",
            Channel::Shards => "shards",
            Channel::Journal => "journal",
        }
    }
}

/// Websocket endpoint kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/ingest`: platforms sending messages and reading verdicts.
    Ingest,
    /// `/v1/streams/ID/host`: host screens, sent the question queue as it changes.
    Host,
}

impl Endpoint {
    pub(super) const ALL: [Endpoint; 2] = [Endpoint::Ingest, Endpoint::Host];
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Endpoint::Ingest => "ingest",
            Endpoint::Host => "host",
        }
    }
}

/// Why a connection was refused or closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEvent {
    /// Missing or wrong bearer token.
    Unauthorized,
    /// `max_connections` reached.
    Full,
    /// Closed after `idle_timeout_ms` without a frame.
    Idle,
    /// Closed because it did not take its verdicts within `send_timeout_ms`.
    SlowClient,
    /// Closed by graceful shutdown.
    Shutdown,
    /// Closed after a websocket protocol error (1002, 1007) or an oversize frame (1009).
    ProtocolError,
    /// Closed for sending control frames (pings) faster than `max_control_frames_per_second`.
    ControlFlood,
    /// Closed because a frame, once begun, did not arrive within `body_timeout_ms`.
    FrameTimeout,
}

impl ConnEvent {
    pub(super) const ALL: [ConnEvent; 8] = [
        ConnEvent::Unauthorized,
        ConnEvent::Full,
        ConnEvent::Idle,
        ConnEvent::SlowClient,
        ConnEvent::Shutdown,
        ConnEvent::ProtocolError,
        ConnEvent::ControlFlood,
        ConnEvent::FrameTimeout,
    ];
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ConnEvent::Unauthorized => "unauthorized",
            ConnEvent::Full => "full",
            ConnEvent::Idle => "idle",
            ConnEvent::SlowClient => "slow_client",
            ConnEvent::Shutdown => "shutdown",
            ConnEvent::ProtocolError => "protocol_error",
            ConnEvent::ControlFlood => "control_flood",
            ConnEvent::FrameTimeout => "frame_timeout",
        }
    }
}

/// What a bound refused or cut short (besides messages, counted by [`RejectReason`], and
/// connections, counted by [`ConnEvent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A request for a host name not in `allowed_hosts` (DNS rebinding).
    Host,
    /// A request from a page of an origin not in `allowed_origins`, or a cross-site request
    /// without one.
    Origin,
    /// A write with a form or plain-text content type (what a cross-site form can send).
    ContentType,
    /// A request body over `max_body_bytes`.
    BodyTooLarge,
    /// A request body slower than `body_timeout_ms`.
    BodyTimeout,
    /// A connection kept waiting because `max_http_connections` were open.
    HttpConnections,
    /// A connection that stopped being read because the frame budget was spent.
    FrameBudget,
    /// A request for a stream that would exceed `max_streams`.
    Streams,
    /// A dry run or explain past `max_console_jobs`.
    ConsoleBusy,
    /// A message `ts` outside the allowed skew, clamped.
    Timestamp,
    /// A dictionary reload that would have lost most of a list's entries (kept the old ones).
    DictionaryShrink,
}

impl Refusal {
    pub(super) const ALL: [Refusal; 11] = [
        Refusal::Host,
        Refusal::Origin,
        Refusal::ContentType,
        Refusal::BodyTooLarge,
        Refusal::BodyTimeout,
        Refusal::HttpConnections,
        Refusal::FrameBudget,
        Refusal::Streams,
        Refusal::ConsoleBusy,
        Refusal::Timestamp,
        Refusal::DictionaryShrink,
    ];
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refusal::Host => "host",
            Refusal::Origin => "origin",
            Refusal::ContentType => "content_type",
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::HttpConnections => "http_connections",
            Refusal::FrameBudget => "frame_budget",
            Refusal::Streams => "streams",
            Refusal::ConsoleBusy => "console_busy",
            Refusal::Timestamp => "timestamp",
            Refusal::DictionaryShrink => "dictionary_shrink",
        }
    }
}
