//! `[server]` and `[server.journal]`: the sidecar's limits, pipeline sizes, latency policy and
//! journal, every field documented. Durations are in milliseconds.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When bearer tokens are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Required unless the server listens on a loopback address only.
    Auto,
    /// Always required, on loopback too.
    Always,
    /// Never required (a trusted network only).
    Never,
}

/// What a message gets when the pipeline cannot answer within the latency budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailPolicy {
    /// `allow`, flagged `"degraded":"over_budget"`: chat keeps flowing.
    Open,
    /// `hold`, flagged: nothing unchecked is shown.
    Closed,
}

/// The websocket sidecar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`--listen` overrides).
    pub listen: SocketAddr,
    /// When bearer tokens are required: `auto` (unless listening on loopback), `always`, `never`.
    pub auth: AuthMode,
    /// Tokens accepted on `/v1/ingest` (`Authorization: Bearer …` or `?access_token=`).
    pub ingest_tokens: Vec<String>,
    /// Tokens accepted on the host screen's endpoints (questions, actions, product, summary and
    /// the host websocket).
    pub host_tokens: Vec<String>,
    /// Tokens accepted on the moderator console's endpoints (`/v1/moderator/…`, stream settings,
    /// held messages). Host tokens do not open them; with auth on and none set, they are closed.
    pub moderator_tokens: Vec<String>,
    /// Origins (`https://shop.example`) whose pages may call the API and open the websockets,
    /// besides the server's own pages. Requests without an `Origin` header (platforms, curl) are
    /// not affected. `"*"` allows any origin (only behind a proxy that checks it).
    pub allowed_origins: Vec<String>,
    /// Host names (`kotae.internal`, optionally with `:port`) the server answers to, besides IP
    /// addresses and `localhost`: a request for any other name is refused, which stops DNS
    /// rebinding. `"*"` allows any name.
    pub allowed_hosts: Vec<String>,
    /// Open websocket connections (ingest and host together); more are refused with 503.
    pub max_connections: NonZeroUsize,
    /// Plain HTTP connections (not upgraded to a websocket) open at once; more wait in the
    /// listen backlog until one closes.
    pub max_http_connections: NonZeroUsize,
    /// Largest HTTP request body, bytes; larger ones get 413 before they are read whole.
    pub max_body_bytes: NonZeroUsize,
    /// A request body, or a websocket frame once begun, must arrive within this time; a slower one
    /// gets 408 (HTTP) or closes the connection (1008).
    pub body_timeout_ms: NonZeroU64,
    /// Process-wide budget, bytes, for incoming websocket frames buffered in memory: frames being
    /// read and frames in the pipeline. Past it, connections stop being read (TCP pushes back).
    pub frame_budget_bytes: NonZeroUsize,
    /// Longest message `id` (bytes, as echoed); a longer one gets an error.
    pub max_id_bytes: NonZeroUsize,
    /// Longest message `user`, bytes; a longer one gets an error.
    pub max_user_bytes: NonZeroUsize,
    /// How far a message's `ts` may lie ahead of the wall clock, ms; a later `ts` is clamped to
    /// that bound (counted), so it can neither wrap nor pin the stream's clock.
    pub max_ts_skew_ms: NonZeroU64,
    /// Streams with state in memory at once; a new stream past it is refused (its messages get
    /// `"too many streams"`) until idle ones are forgotten. Reads never create a stream.
    pub max_streams: NonZeroUsize,
    /// Websocket control frames (pings) per second one connection may send (bucket of twice
    /// this); more close the connection with 1008.
    pub max_control_frames_per_second: NonZeroU32,
    /// Moderator dry runs and explains running at once; more get 429.
    pub max_console_jobs: NonZeroUsize,
    /// Largest text frame answered normally; bigger frames get an error frame. Frames over 16× this
    /// close the connection (1009), since they must be buffered before they can be refused.
    pub max_frame_bytes: NonZeroUsize,
    /// Most messages in one array frame; a longer array gets one error frame.
    pub max_batch: NonZeroUsize,
    /// Messages per second one ingest connection may send (token bucket); the excess is
    /// rejected with `"error":"rate limited"`.
    pub max_messages_per_second: NonZeroU32,
    /// Token bucket size: messages a connection may send at once above its rate.
    pub rate_burst: NonZeroU32,
    /// Time a client has to send its HTTP upgrade request after connecting.
    pub handshake_timeout_ms: NonZeroU64,
    /// An ingest connection that sends nothing for this long is closed (1001).
    pub idle_timeout_ms: NonZeroU64,
    /// A connection that does not take its verdicts for this long is closed: a slow client
    /// must not hold pipeline capacity.
    pub send_timeout_ms: NonZeroU64,
    /// Frames one connection may have in the pipeline; beyond it the server stops reading the
    /// socket, so TCP pushes back on the platform.
    pub max_frames_in_flight: NonZeroUsize,
    /// Worker threads for the stateless stages; 0 means one per CPU.
    pub workers: usize,
    /// Frames waiting for a worker (bounded channel, policy: block, then the budget verdict).
    pub worker_queue: NonZeroUsize,
    /// Nice value added to the worker threads (0–19). Raising it lets the threads that answer
    /// (websocket I/O and the stateful stage) take a core from a worker at once; only worth it
    /// when kotae has its cores to itself, since other processes then take the workers' time too.
    pub worker_nice: i32,
    /// Stream shards: locks owning dedupe, clusters and the host queue of their streams.
    pub shards: NonZeroUsize,
    /// No longer used (frames wait for their shard's lock on their own connection); accepted
    /// so configurations written for earlier versions still load.
    pub shard_queue: NonZeroUsize,
    /// Latency budget per frame, from arrival to the start of its analysis.
    pub budget_ms: NonZeroU64,
    /// Verdict when the budget is exceeded: `open` (allow, flagged) or `closed` (hold, flagged).
    pub on_budget_exceeded: FailPolicy,
    /// Questions kept per stream in the host queue (policy when full: drop closed questions
    /// first, then the lowest-ranked open one; counted).
    pub max_questions_per_stream: NonZeroUsize,
    /// A stream with no message, host action or host screen for this long and no open question
    /// is forgotten (its history stays in the journal); an answered question asked after that
    /// comes back as new.
    pub stream_idle_minutes: NonZeroU64,
    /// Host websockets get at most one update per this interval.
    pub host_push_interval_ms: NonZeroU64,
    /// Offset of the host's local time from UTC, for "answered at 12:03" (540 is JST).
    pub utc_offset_minutes: i32,
    /// Language of what people read: the pages, each question's "why", answered notes, the
    /// `message` of errors, `kotae report`: `ja` (default) or `en`.
    pub locale: crate::i18n::Locale,
    /// The FAQ for late joiners (`/faq?stream=ID` and `GET /v1/streams/ID/faq`) needs no token,
    /// so it can be shared with viewers: it holds only questions answered on stream and their
    /// answers, without viewers' names. `false`: host tokens, like the host screen.
    pub public_faq: bool,
    /// Graceful shutdown must finish (drain, flush the journal) within this time.
    pub shutdown_deadline_ms: NonZeroU64,
    /// Watch the dictionary directory and reload once the files have been quiet for 200 ms; a
    /// broken edit keeps the old ones, and so does a reload that would lose most of a list's
    /// entries until it is confirmed.
    pub reload_dictionaries: bool,
    /// The durable journal.
    pub journal: JournalConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let nz = |n: usize| NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN);
        let ms = |n: u64| NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN);
        let n32 = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            auth: AuthMode::Auto,
            ingest_tokens: Vec::new(),
            host_tokens: Vec::new(),
            moderator_tokens: Vec::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections: nz(1024),
            max_http_connections: nz(256),
            max_body_bytes: nz(1 << 20),
            body_timeout_ms: ms(10_000),
            frame_budget_bytes: nz(64 << 20),
            max_id_bytes: nz(128),
            max_user_bytes: nz(128),
            max_ts_skew_ms: ms(300_000),
            max_streams: nz(1024),
            max_control_frames_per_second: n32(10),
            max_console_jobs: nz(2),
            max_frame_bytes: nz(1 << 20),
            max_batch: nz(1000),
            max_messages_per_second: n32(50_000),
            rate_burst: n32(10_000),
            handshake_timeout_ms: ms(5_000),
            idle_timeout_ms: ms(300_000),
            send_timeout_ms: ms(10_000),
            max_frames_in_flight: nz(64),
            workers: 0,
            worker_queue: nz(256),
            worker_nice: 0,
            shards: nz(2),
            shard_queue: nz(256),
            budget_ms: ms(250),
            on_budget_exceeded: FailPolicy::Open,
            max_questions_per_stream: nz(300),
            stream_idle_minutes: ms(60),
            host_push_interval_ms: ms(250),
            utc_offset_minutes: 540,
            locale: crate::i18n::Locale::Ja,
            public_faq: true,
            shutdown_deadline_ms: ms(10_000),
            reload_dictionaries: true,
            journal: JournalConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Whether bearer tokens are required on this listen address.
    pub fn auth_required(&self) -> bool {
        match self.auth {
            AuthMode::Always => true,
            AuthMode::Never => false,
            AuthMode::Auto => !self.listen.ip().is_loopback(),
        }
    }

    /// The tokens of one role.
    pub fn tokens(&self, scope: crate::server::auth::Scope) -> &[String] {
        match scope {
            crate::server::auth::Scope::Ingest => &self.ingest_tokens,
            crate::server::auth::Scope::Host => &self.host_tokens,
            crate::server::auth::Scope::Moderator => &self.moderator_tokens,
        }
    }

    /// Worker threads to start.
    pub fn worker_threads(&self) -> usize {
        if self.workers == 0 { std::thread::available_parallelism().map_or(2, |n| n.get()) } else { self.workers }
    }

    /// Values the types cannot reject.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(0..=19).contains(&self.worker_nice) {
            p.push(format!("server.worker_nice: {} is not within 0–19", self.worker_nice));
        }
        if self.auth_required() && (self.ingest_tokens.is_empty() || self.host_tokens.is_empty()) {
            p.push(format!(
                "server.auth: tokens are required on {} but server.ingest_tokens or server.host_tokens is empty \
                 (set them or KOTAE_INGEST_TOKENS and KOTAE_HOST_TOKENS, or auth = \"never\" behind a trusted proxy)",
                self.listen
            ));
        }
        use crate::server::auth::{MAX_TOKEN_BYTES, Scope};
        let scopes = [Scope::Ingest, Scope::Host, Scope::Moderator];
        for scope in scopes {
            let tokens = self.tokens(scope);
            if tokens.iter().any(|t| t.len() < 16 || t.len() > MAX_TOKEN_BYTES) {
                p.push(format!("server.{}: every token must be 16–{MAX_TOKEN_BYTES} characters", scope.field()));
            }
            for other in scopes.iter().filter(|o| (**o as u8) > (scope as u8)) {
                if tokens.iter().any(|t| self.tokens(*other).contains(t)) {
                    p.push(format!(
                        "server.{} and server.{} share a token: each role needs its own",
                        scope.field(),
                        other.field()
                    ));
                }
            }
        }
        for o in &self.allowed_origins {
            if o != "*" && crate::server::guard::parse_origin(o).is_none() {
                p.push(format!("server.allowed_origins: {o:?} is not an origin like \"https://shop.example\""));
            }
        }
        for h in &self.allowed_hosts {
            if h.is_empty() || h.contains(['/', ' ', '@']) {
                p.push(format!("server.allowed_hosts: {h:?} is not a host name"));
            }
        }
        if self.rate_burst.get() < self.max_batch.get() as u32 {
            p.push(format!(
                "server.rate_burst {} is below server.max_batch {}: a full batch could never pass",
                self.rate_burst, self.max_batch
            ));
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            p.push(format!("server.utc_offset_minutes {} is not within -720–840", self.utc_offset_minutes));
        }
        p.extend(self.journal.problems());
        p
    }
}

/// The SQLite journal of messages, verdicts, questions and host actions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Database file; an empty path disables the journal (nothing survives a restart).
    pub path: PathBuf,
    /// Also journal every message with its verdict (questions and host actions are always kept).
    pub record_messages: bool,
    /// Records waiting to be written (bounded channel, policy: block the shard, counted). A
    /// queued record holds its message's texts (a question's whole state), so this also bounds
    /// the memory a slow disk can take: two full batches by default.
    pub queue: NonZeroUsize,
    /// Most records per write transaction.
    pub batch_max: NonZeroUsize,
    /// A partial batch is written after at most this long.
    pub flush_interval_ms: NonZeroU64,
    /// Questions asked are journaled at most this often, each once in its latest state (0: after
    /// every batch a shard handles). A question changes with nearly every message asking it and
    /// each write rewrites its table page; a crash can lose this long of question changes.
    pub question_interval_ms: u64,
    /// Messages, host actions and closed questions older than this are deleted; open questions stay.
    pub retention_hours: NonZeroU64,
    /// At most this many message rows are kept; older ones are deleted first.
    pub max_messages: NonZeroU64,
    /// Nice value added to the journal's writer thread (0–19). The writer is off the verdict
    /// path and its transactions run for milliseconds; at a lower priority a thread with a
    /// verdict to finish takes the core from it at once, but at full load the writer then falls
    /// behind and the frames wait for its queue (counted as backpressure). Default 0.
    pub nice: i32,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("kotae.db"),
            record_messages: true,
            queue: NonZeroUsize::new(8192).unwrap_or(NonZeroUsize::MIN),
            batch_max: NonZeroUsize::new(4096).unwrap_or(NonZeroUsize::MIN),
            flush_interval_ms: NonZeroU64::new(10).unwrap_or(NonZeroU64::MIN),
            question_interval_ms: 250,
            retention_hours: NonZeroU64::new(72).unwrap_or(NonZeroU64::MIN),
            max_messages: NonZeroU64::new(5_000_000).unwrap_or(NonZeroU64::MIN),
            nice: 0,
        }
    }
}

impl JournalConfig {
    /// Whether a journal is kept.
    pub fn enabled(&self) -> bool {
        !self.path.as_os_str().is_empty()
    }

    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.batch_max > self.queue {
            p.push("server.journal.batch_max must not exceed server.journal.queue".to_string());
        }
        if !(0..=19).contains(&self.nice) {
            p.push(format!("server.journal.nice: {} is not within 0–19", self.nice));
        }
        p
    }
}
