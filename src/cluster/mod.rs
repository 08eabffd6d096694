//! Cluster mode: several `kotae serve` instances joined through NATS JetStream
//! (`kotae serve --nats URL`, `[cluster]`). Without it nothing here runs.
//!
//! ```text
//!  ingest ws ─► any instance ──request {prefix}.part.P──► owner of P ──► JetStream {prefix}.in.P
//!                   ▲                                       │ analyze → shard (dedupe, queue)
//!                   └──────────── verdicts, in order ◄──────┘ (after the journal's ack)
//!  leases: KV bucket {prefix}_owners, part.P = {owner, expires_ms}, taken by compare-and-set
//! ```
//! - Streams hash (FNV-1a) to `partitions`; each partition has one owner at a time, held in a
//!   JetStream KV bucket as a lease renewed every `renew_ms` and taken over by compare-and-set on
//!   the key's revision once expired (nats-server 2.9 has no per-key TTL). Each instance takes a
//!   fair share: ⌈partitions / live instances⌉, live instances heartbeating `member.ID` keys.
//! - The instance that receives a frame forwards its messages **raw** to the owner: the owner
//!   analyzes them. The analysis has no wire format (and carries nothing the owner cannot
//!   recompute in a few µs), and the journal must hold what a new owner replays, which is the raw
//!   message; so one encoding serves both, and the receiving instance spends no CPU on analysis.
//! - The owner appends every input (frames, host actions) to the partition's journal subject and
//!   sends the verdicts only after JetStream acknowledged it. Appends expect the partition's
//!   last sequence, so a deposed owner's are refused (fencing, `journal`). Every
//!   `snapshot_interval_ms` the owner snapshots the partition's streams (`snapshot`); a new
//!   owner restores the newest snapshot ahead of what it applied itself, then replays the
//!   journal after it through the same pipeline, so question ids continue and never repeat.
//! - Failure: a frame whose owner is gone (no responders) is sent again until
//!   `forward_timeout_ms`, and so is one left without a reply for `lease_ms + renew_ms` (it
//!   reached an owner that died or stalled with it; an owner takes a request id once, so a copy
//!   reaching a slow owner is dropped there); past the timeout, or on NATS errors, its messages
//!   get the fail-open or fail-closed verdict (`server.on_budget_exceeded`), counted in
//!   `kotae_cluster_forward_failed_total`.
//!
//! Hooks into the serve path (each marked `cluster hook`): start-up in `server::Server::bind`,
//! a frame handed to its stream's shard in `server::ws`, the host queue read and host actions in
//! `server::host`, the moderator's per-stream requests and the FAQ in `server::moderator`, the
//! metrics page.
//!
//! # Layout
//! - this file: the [`Node`], forwarding frames to their owner and the fail policy, counters.
//! - `config`: `[cluster]`. `lease`: partition leases. `owner`: serving a partition.
//! - `journal`: fenced appends and catching up. `snapshot`: partition snapshots.
//! - `host`: host requests (queue, actions, pushes, catalogue) answered by a stream's owner.
//! - `wire`: what instances send each other.

mod config;
mod host;
mod journal;
mod lease;
mod owner;
mod snapshot;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

pub use config::ClusterConfig;
pub use host::HostRequest;
use wire::{Input, Reply, WireOut};

use crate::ingest::{Item, message_id};
use crate::message::OutError;
use crate::server::Ctx;
use crate::server::config::FailPolicy;
use crate::stream::Out;

/// Cluster mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The credentials file (`[cluster] credentials`) could not be read: its path, and why.
    #[error("cannot read the NATS credentials file {0}: {1}")]
    Credentials(String, std::io::Error),
    /// The NATS server did not accept a connection: its address, and the client's error.
    #[error("cannot connect to NATS at {0}: {1}")]
    Connect(String, String),
    /// The JetStream stream or KV bucket could not be created or opened (is `-js` on?).
    #[error("jetstream: {0}")]
    JetStream(String),
}

/// Counters of cluster mode, rendered on `/metrics`.
#[derive(Default)]
pub struct Stats {
    forwarded: AtomicU64,
    forward_retries: AtomicU64,
    forward_resent: AtomicU64,
    repeated: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    served: AtomicU64,
    journal_errors: AtomicU64,
    journal_duplicates: AtomicU64,
    replayed: AtomicU64,
    fenced: AtomicU64,
    snapshots_written: AtomicU64,
    snapshots_restored: AtomicU64,
    snapshot_write_errors: AtomicU64,
    snapshot_read_errors: AtomicU64,
    takeovers: AtomicU64,
    released: AtomicU64,
    lapsed: AtomicU64,
    lease_errors: AtomicU64,
    owned: AtomicU64,
}

/// This instance's membership of the cluster.
pub struct Node {
    config: ClusterConfig,
    id: String,
    client: async_nats::Client,
    js: jetstream::Context,
    kv: jetstream::kv::Store,
    /// Replies to this instance's forwarded requests arrive on `{inbox}.TOKEN`.
    inbox: String,
    /// Requests waiting for their reply, by token. Bounded by the frames in flight on this
    /// instance's connections (`max_frames_in_flight` each, `max_connections`).
    waiting: Mutex<HashMap<u64, oneshot::Sender<async_nats::Message>>>,
    next: AtomicU64,
    /// Random per start, in request ids, so a restarted instance never reuses one.
    boot: String,
    /// Partitions this instance serves, each with the sender that stops its task.
    owned: Mutex<HashMap<u32, Serving>>,
    /// Partitions with a serve task on this instance, from its start to its end (a task told to
    /// stop still answers the requests it took and waits for their journal acknowledgements): a
    /// partition is not taken again before its last task ended, so two tasks of this instance
    /// never apply one partition's records to the shards at once.
    running: Mutex<HashSet<u32>>,
    /// The last journal sequence applied here, per partition: where a replay starts.
    applied: Mutex<HashMap<u32, u64>>,
    /// Counted outcomes of the cluster.
    pub stats: Stats,
}

/// A partition being served: the sender that stops its task, the task, and until when (unix
/// ms) its lease holds by this instance's clock, moved on by every renewal.
struct Serving {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    until: Arc<AtomicU64>,
}

/// A stream's partition: FNV-1a, the same on every instance and build.
pub fn partition_of(stream: &str, partitions: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(partitions.max(1))) as u32
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Node {
    /// Connects to NATS, creates (or opens) the lease bucket and the journal stream.
    pub async fn connect(config: &ClusterConfig) -> Result<Arc<Self>, ClusterError> {
        let id = if config.instance.is_empty() {
            let host = std::env::var("HOSTNAME").unwrap_or_default();
            let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
            format!("{}{}{}", host, if host.is_empty() { "" } else { "-" }, &random_token()[..8])
        } else {
            config.instance.clone()
        };
        let mut opts =
            async_nats::ConnectOptions::new().name(format!("kotae-{id}")).connection_timeout(Duration::from_secs(5));
        if let Some(path) = &config.credentials {
            opts = opts
                .credentials_file(path)
                .await
                .map_err(|e| ClusterError::Credentials(path.display().to_string(), e))?;
        }
        let client = opts
            .connect(config.nats.as_str())
            .await
            .map_err(|e| ClusterError::Connect(config.nats.clone(), e.to_string()))?;
        let js = jetstream::new(client.clone());
        let bucket = format!("{}_owners", config.prefix);
        // The bucket's stream is made here as the KV convention has it: the client's
        // `create_key_value` first reads the account's limits in a shape nats-server 2.9 does
        // not send.
        js.get_or_create_stream(jetstream::stream::Config {
            name: format!("KV_{bucket}"),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: jetstream::stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: config.replicas,
            discard: jetstream::stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::JetStream(format!("lease bucket {bucket}: {e}")))?;
        let kv = js
            .get_key_value(bucket.clone())
            .await
            .map_err(|e| ClusterError::JetStream(format!("lease bucket {bucket}: {e}")))?;
        let name = journal_stream(&config.prefix);
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.in.>", config.prefix)],
            num_replicas: config.replicas,
            storage: jetstream::stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(config.journal_max_age_hours.get().saturating_mul(3600)),
            ..Default::default()
        })
        .await
        .map_err(|e| ClusterError::JetStream(format!("journal stream {name}: {e}")))?;
        let snaps = snapshot::stream_config(&config.prefix, config.replicas);
        js.get_or_create_stream(snaps.clone())
            .await
            .map_err(|e| ClusterError::JetStream(format!("snapshot stream {}: {e}", snaps.name)))?;
        let inbox = client.new_inbox();
        Ok(Arc::new(Self {
            config: config.clone(),
            id,
            client,
            js,
            kv,
            inbox,
            waiting: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            boot: random_token(),
            owned: Mutex::new(HashMap::new()),
            running: Mutex::new(HashSet::new()),
            applied: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        }))
    }

    /// A request id unique across instances and restarts: the journal's de-duplication key.
    fn request_id(&self) -> String {
        format!("{}.{}.{}", self.id, self.boot, self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// This instance's name in the leases.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Starts the reply router and the lease loop; both end when the server starts closing.
    pub(crate) async fn start(self: &Arc<Self>, ctx: Arc<Ctx>) -> Result<(), ClusterError> {
        let mut replies = self
            .client
            .subscribe(format!("{}.*", self.inbox))
            .await
            .map_err(|e| ClusterError::JetStream(format!("reply inbox: {e}")))?;
        let node = self.clone();
        tokio::spawn(async move {
            while let Some(msg) = replies.next().await {
                let token = msg.subject.rsplit('.').next().and_then(|t| t.parse::<u64>().ok());
                if let Some(tx) = token.and_then(|t| lock(&node.waiting).remove(&t)) {
                    let _ = tx.send(msg);
                }
            }
        });
        tokio::spawn(lease::run(self.clone(), ctx));
        Ok(())
    }

    fn part_subject(&self, p: u32) -> String {
        format!("{}.part.{p}", self.config.prefix)
    }

    fn journal_subject(&self, p: u32) -> String {
        format!("{}.in.{p}", self.config.prefix)
    }

    /// Publishes a request; the reply arrives through the returned waiter. Publishing is done
    /// when this returns, so requests sent one after another reach the owner in that order.
    async fn send(self: &Arc<Self>, subject: String, payload: Bytes) -> Result<Waiter, String> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(token, tx);
        let waiter = Waiter { node: self.clone(), token, rx };
        self.client
            .publish_with_reply(subject, format!("{}.{token}", self.inbox), payload)
            .await
            .map_err(|e| e.to_string())?;
        Ok(waiter)
    }

    /// Sends a request to partition `p`'s owner and waits for its reply until `deadline`,
    /// sending it again while nobody serves the partition (an ownership change), and again after
    /// `lease_ms + renew_ms` without a reply: a request published while its owner died reached
    /// only the dead owner's subscription (the NATS server had not yet seen the connection
    /// close), and no reply or "no responders" ever comes for it; by then the lease has moved.
    /// Every copy's reply is awaited, the first one counts; an owner takes a request id once
    /// (`owner::Taken`), so a copy reaching an owner that is merely slow is dropped there.
    async fn ask(
        self: &Arc<Self>,
        p: u32,
        first: Option<Waiter>,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Reply, String> {
        let again = Duration::from_millis(self.config.lease_ms.get().saturating_add(self.config.renew_ms.get()));
        let mut copies = vec![match first {
            Some(w) => w,
            None => self.send(self.part_subject(p), payload.clone()).await?,
        }];
        let mut sent = Instant::now();
        loop {
            let next = (sent + again).min(deadline);
            let waiting = futures_util::future::select_all(copies.iter_mut().map(|w| &mut w.rx));
            match tokio::time::timeout_at(next.into(), waiting).await {
                Ok((Ok(msg), i, _)) => {
                    // Nobody serves the partition, or the instance that took this copy no longer
                    // does: this copy is done, and with none left the request goes again.
                    if msg.status != Some(async_nats::StatusCode::NO_RESPONDERS) {
                        match serde_json::from_slice::<Reply>(&msg.payload) {
                            Ok(Reply::Moved) => {}
                            Ok(r) => return Ok(r),
                            Err(e) => return Err(format!("bad reply: {e}")),
                        }
                    }
                    copies.swap_remove(i);
                    if !copies.is_empty() {
                        continue;
                    }
                    self.stats.forward_retries.fetch_add(1, Ordering::Relaxed);
                    let pause = Duration::from_millis(50);
                    if Instant::now() + pause >= deadline {
                        return Err("no owner for the partition in time".into());
                    }
                    tokio::time::sleep(pause).await;
                }
                Ok((Err(_), ..)) => return Err("reply lost".into()),
                Err(_) if next >= deadline => return Err("owner did not answer in time".into()),
                Err(_) => {
                    self.stats.forward_resent.fetch_add(1, Ordering::Relaxed);
                }
            }
            copies.push(self.send(self.part_subject(p), payload.clone()).await?);
            sent = Instant::now();
        }
    }

    /// ── cluster hook (ingest) ── Hands a frame's items to the owner of the stream's
    /// partition; the future yields one outcome per item, in order. Items already decided here
    /// (rate limited, malformed) keep their outcomes; parsed messages are forwarded raw.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        ctx: &Arc<Ctx>,
        stream: Arc<str>,
        items: Vec<Item>,
        arrived: Instant,
    ) -> BoxFuture<'static, Vec<Out>> {
        let mut slots: Vec<Option<Out>> = Vec::with_capacity(items.len());
        let mut messages = Vec::new();
        for item in items {
            match item {
                Item::Parsed(m) | Item::Analyzed(m, _) | Item::OverBudget(m) => {
                    slots.push(None);
                    messages.push(m);
                }
                Item::Rejected { id, error, reason } => slots.push(Some(Out::Error(OutError { id, error }, reason))),
            }
        }
        if messages.is_empty() {
            return futures_util::future::ready(slots.into_iter().flatten().collect()).boxed();
        }
        let p = partition_of(&stream, self.config.partitions.get());
        let rid = self.request_id();
        let input = Input::Ingest { rid, stream: stream.to_string(), messages };
        let payload = match serde_json::to_vec(&input) {
            Ok(v) => Bytes::from(v),
            Err(e) => return self.fail(ctx, stream, input, slots, e.to_string()).boxed(),
        };
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        let deadline = arrived + Duration::from_millis(self.config.forward_timeout_ms.get());
        let first = self.send(self.part_subject(p), payload.clone()).await;
        let node = self.clone();
        let ctx = ctx.clone();
        async move {
            let reply = match first {
                Ok(w) => node.ask(p, Some(w), payload, deadline).await,
                Err(e) => Err(e),
            };
            match reply {
                Ok(Reply::Outs { outs }) if outs.len() == slots.iter().filter(|s| s.is_none()).count() => {
                    let mut outs = outs.into_iter().map(WireOut::into_out);
                    slots.into_iter().filter_map(|s| s.or_else(|| outs.next())).collect()
                }
                Ok(Reply::Outs { .. }) => {
                    node.fail(&ctx, stream, input, slots, "owner answered a different count".into()).await
                }
                Ok(Reply::Failed { error }) => node.fail(&ctx, stream, input, slots, error).await,
                Ok(Reply::Json { .. } | Reply::Refused { .. } | Reply::Moved) => {
                    node.fail(&ctx, stream, input, slots, "unexpected reply".into()).await
                }
                Err(e) => node.fail(&ctx, stream, input, slots, e).await,
            }
        }
        .boxed()
    }

    /// The fail-open or fail-closed verdict for a frame the owner did not answer, counted.
    fn fail(
        self: &Arc<Self>,
        ctx: &Arc<Ctx>,
        stream: Arc<str>,
        input: Input,
        slots: Vec<Option<Out>>,
        why: String,
    ) -> impl Future<Output = Vec<Out>> + Send + 'static {
        let Input::Ingest { messages, .. } = input else {
            return futures_util::future::ready(slots.into_iter().flatten().collect::<Vec<_>>()).left_future();
        };
        let counter = match ctx.config.on_budget_exceeded {
            FailPolicy::Open => &self.stats.failed_open,
            FailPolicy::Closed => &self.stats.failed_closed,
        };
        counter.fetch_add(messages.len() as u64, Ordering::Relaxed);
        tracing::warn!(stream = %stream, messages = messages.len(), error = %why, "cluster: frame not answered by its owner; fail policy applied");
        // The shard gives over-budget items the policy's verdict without touching clusters or
        // the queue, and journals them locally.
        let ids: Vec<String> = messages.iter().map(message_id).collect();
        let items: Vec<Item> = messages.into_iter().map(Item::OverBudget).collect();
        let ctx = ctx.clone();
        async move {
            let outs = ctx.shards.submit(stream, items).await.wait().await;
            let mut outs = outs.into_iter();
            let mut ids = ids.into_iter();
            slots
                .into_iter()
                .filter_map(|s| match s {
                    Some(o) => Some(o),
                    None => {
                        let id = ids.next().unwrap_or_default();
                        outs.next().or(Some(Out::Error(
                            OutError { id, error: "server is shutting down".into() },
                            crate::metrics::RejectReason::ShuttingDown,
                        )))
                    }
                })
                .collect()
        }
        .right_future()
    }

    fn push_subject(&self, p: u32) -> String {
        format!("{}.push.{p}", self.config.prefix)
    }

    /// Announces that a stream's queue changed (the owner, after a frame or host action).
    fn announce(&self, p: u32, stream: &str) {
        let client = self.client.clone();
        let subject = self.push_subject(p);
        let name = Bytes::from(stream.to_string());
        tokio::spawn(async move {
            let _ = client.publish(subject, name).await;
        });
    }

    /// The cluster's counters in Prometheus text.
    pub fn render(&self) -> String {
        let s = &self.stats;
        let metrics: [RenderedMetric; 17] = [
            (
                "kotae_cluster_forwarded_total",
                "counter",
                "Frames sent to their partition's owner.",
                &[("", &s.forwarded)],
            ),
            (
                "kotae_cluster_forward_retries_total",
                "counter",
                "Frames sent again because no instance served the partition (ownership change).",
                &[("", &s.forward_retries)],
            ),
            (
                "kotae_cluster_forward_resent_total",
                "counter",
                "Frames and host requests sent again after lease_ms + renew_ms without a reply (an owner gone while they were in flight).",
                &[("", &s.forward_resent)],
            ),
            (
                "kotae_cluster_repeated_total",
                "counter",
                "Requests this owner had already taken, arriving again: dropped (the first copy's reply answers them).",
                &[("", &s.repeated)],
            ),
            (
                "kotae_cluster_forward_failed_total",
                "counter",
                "Messages the owner did not answer in time: given the fail-open or fail-closed verdict.",
                &[("{policy=\"open\"}", &s.failed_open), ("{policy=\"closed\"}", &s.failed_closed)],
            ),
            ("kotae_cluster_served_total", "counter", "Requests served as a partition's owner.", &[("", &s.served)]),
            (
                "kotae_cluster_journal_errors_total",
                "counter",
                "Inputs JetStream did not acknowledge: their verdicts were not sent.",
                &[("", &s.journal_errors)],
            ),
            (
                "kotae_cluster_journal_duplicates_total",
                "counter",
                "Inputs JetStream already held (same request id).",
                &[("", &s.journal_duplicates)],
            ),
            (
                "kotae_cluster_replayed_total",
                "counter",
                "Journal records replayed on taking a partition.",
                &[("", &s.replayed)],
            ),
            (
                "kotae_cluster_fenced_total",
                "counter",
                "Journal appends refused because another instance took the partition (this one was deposed).",
                &[("", &s.fenced)],
            ),
            (
                "kotae_cluster_snapshots_total",
                "counter",
                "Partition snapshots written by this instance, and restored on taking a partition.",
                &[("{op=\"written\"}", &s.snapshots_written), ("{op=\"restored\"}", &s.snapshots_restored)],
            ),
            (
                "kotae_cluster_snapshot_errors_total",
                "counter",
                "Snapshots not written, or found unreadable on taking a partition (the journal was replayed whole).",
                &[("{op=\"write\"}", &s.snapshot_write_errors), ("{op=\"read\"}", &s.snapshot_read_errors)],
            ),
            ("kotae_cluster_takeovers_total", "counter", "Partitions taken by this instance.", &[("", &s.takeovers)]),
            (
                "kotae_cluster_released_total",
                "counter",
                "Partitions given up or lost by this instance.",
                &[("", &s.released)],
            ),
            (
                "kotae_cluster_lapsed_total",
                "counter",
                "Requests left unanswered because this instance's lease on their partition had lapsed by its own clock (the requester sends them again to the next owner).",
                &[("", &s.lapsed)],
            ),
            (
                "kotae_cluster_lease_errors_total",
                "counter",
                "Lease reads or writes that failed.",
                &[("", &s.lease_errors)],
            ),
            ("kotae_cluster_partitions_owned", "gauge", "Partitions this instance serves now.", &[("", &s.owned)]),
        ];
        let mut t = String::new();
        for (name, kind, help, rows) in metrics {
            t.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in rows {
                t.push_str(&format!("{name}{labels} {}\n", v.load(Ordering::Relaxed)));
            }
        }
        t
    }
}

/// A metric as `render` writes it: name, type, help, and the counter behind each label set.
type RenderedMetric<'a> = (&'static str, &'static str, &'static str, &'a [(&'static str, &'a AtomicU64)]);

/// 16 random hex digits (the standard library's per-process random hash keys, and the clock).
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The JetStream stream holding every partition's journal (`{prefix}.in.P`).
fn journal_stream(prefix: &str) -> String {
    format!("{}_inputs", prefix.to_ascii_uppercase())
}

/// A forwarded request's pending reply; forgets its token when dropped.
struct Waiter {
    node: Arc<Node>,
    token: u64,
    rx: oneshot::Receiver<async_nats::Message>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        lock(&self.node.waiting).remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition_of("live1", 32), partition_of("live1", 32));
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let p = partition_of(&format!("stream-{i}"), 32);
            assert!(p < 32);
            seen.insert(p);
        }
        assert!(seen.len() > 24, "streams should spread over the partitions: {}", seen.len());
        // FNV-1a of "a" is 0xaf63dc4c8601ec8c: the hash must not change between builds.
        assert_eq!(partition_of("a", u32::MAX), (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32);
    }
}
