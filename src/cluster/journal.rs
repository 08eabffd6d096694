//! A partition's journal on `{prefix}.in.P`: the owner's appends, fenced, and how a new owner
//! catches up (newest snapshot, then the records after it).
//!
//! **Fencing.** Every append carries `Nats-Expected-Last-Subject-Sequence`: the sequence of the
//! partition's last record as this owner knows it, so JetStream refuses it when anyone else
//! wrote since. Appends therefore go one at a time, each after the previous one's ack (one
//! task per partition, [`Appender`]). A new owner's first append is a `fence` record: once it
//! is in, an owner that was paused past its lease (not dead) and resumes finds every append
//! refused (`kotae_cluster_fenced_total`), answers `Failed` (the frame gets the counted fail
//! verdict) and stops serving; its copy of the partition is forgotten, since it may hold a
//! frame the journal refused.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::context::PublishErrorKind;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

use super::snapshot::Snapshot;
use super::wire::Input;
use super::{Node, journal_stream, lock, owner, partition_of};
use crate::server::Ctx;

/// Appends waiting for their turn, per partition. Bounded: the serve loop waits when full,
/// which holds back the next request (requests wait in the NATS subscription meanwhile).
const APPEND_QUEUE: usize = 256;

/// An append JetStream acknowledged.
#[derive(Debug, Clone, Copy)]
pub(super) struct Acked {
    /// Its stream sequence.
    pub seq: u64,
    /// JetStream already held a record with its request id (nothing was written).
    pub duplicate: bool,
}

/// Why an append did not land.
#[derive(Debug, Clone)]
pub(super) enum AppendError {
    /// Another instance wrote to the partition since: this one is no longer its owner.
    Fenced,
    /// JetStream did not acknowledge (or an earlier append of this term failed).
    Failed(String),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::Fenced => f.write_str("another instance owns the partition now"),
            AppendError::Failed(e) => f.write_str(e),
        }
    }
}

enum Job {
    Append {
        rid: String,
        payload: Bytes,
        done: oneshot::Sender<Result<Acked, AppendError>>,
    },
    /// Answered, once every append before it landed, with the last sequence written (`None`
    /// after a failure: the partition's state here may then differ from the journal).
    Mark(oneshot::Sender<Option<u64>>),
}

/// The serve loop's handle on its partition's append task.
pub(super) struct Appender {
    tx: mpsc::Sender<Job>,
}

/// The result of an append, to be awaited.
pub(super) type AppendResult = oneshot::Receiver<Result<Acked, AppendError>>;

impl Appender {
    /// Starts the append task of partition `p`, whose last record is `last`.
    pub(super) fn start(node: &Arc<Node>, p: u32, last: u64) -> Self {
        let (tx, rx) = mpsc::channel(APPEND_QUEUE);
        tokio::spawn(append_loop(node.clone(), p, last, rx));
        Self { tx }
    }

    /// Queues an append; the receiver yields its outcome. Appends land in the order queued.
    pub(super) async fn append(&self, rid: &str, payload: Bytes) -> AppendResult {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Append { rid: rid.to_string(), payload, done }).await;
        rx
    }

    /// The last sequence written once every append queued before has landed; `None` when one
    /// failed.
    pub(super) async fn mark(&self) -> oneshot::Receiver<Option<u64>> {
        let (done, rx) = oneshot::channel();
        let _ = self.tx.send(Job::Mark(done)).await;
        rx
    }
}

/// Publishes one record expecting `last` as the partition's last sequence, and waits for the ack.
async fn publish(node: &Node, p: u32, rid: &str, payload: Bytes, last: u64) -> Result<Acked, AppendError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", rid);
    headers.insert("Nats-Expected-Last-Subject-Sequence", last.to_string().as_str());
    let ack = node
        .js
        .publish_with_headers(node.journal_subject(p), headers, payload)
        .await
        .map_err(|e| AppendError::Failed(e.to_string()))?;
    match ack.await {
        Ok(a) => Ok(Acked { seq: a.sequence, duplicate: a.duplicate }),
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(AppendError::Fenced),
        Err(e) => Err(AppendError::Failed(e.to_string())),
    }
}

async fn append_loop(node: Arc<Node>, p: u32, mut last: u64, mut rx: mpsc::Receiver<Job>) {
    let mut broken: Option<AppendError> = None;
    while let Some(job) = rx.recv().await {
        match job {
            Job::Mark(done) => {
                let _ = done.send(broken.is_none().then_some(last));
            }
            Job::Append { done, .. } if broken.is_some() => {
                let _ = done.send(Err(broken.clone().unwrap_or(AppendError::Fenced)));
            }
            Job::Append { rid, payload, done } => {
                let r = publish(&node, p, &rid, payload, last).await;
                match &r {
                    Ok(a) if !a.duplicate => {
                        last = a.seq;
                        owner::applied(&node, p, a.seq);
                    }
                    Ok(_) => {
                        // Only an owner that missed the journal's latest records (deposed, not
                        // yet fenced) gets a request another owner journaled: its verdict is
                        // sent (the requester took the first reply), but this copy applied the
                        // request again, so it is forgotten and the partition taken afresh.
                        node.stats.journal_duplicates.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            partition = p,
                            "cluster: a request was already journaled; partition dropped to catch up again"
                        );
                        broken = Some(AppendError::Failed("the partition's journal moved under this owner".into()));
                        lock(&node.applied).remove(&p);
                        drop(owner::stop(&node, p));
                    }
                    Err(e) => {
                        if matches!(e, AppendError::Fenced) {
                            node.stats.fenced.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(partition = p, instance = %node.id, "cluster: journal append refused: another instance owns the partition; serving stopped");
                        } else {
                            node.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(partition = p, error = %e, "cluster: journal append failed; partition dropped to catch up again");
                        }
                        broken = Some(e.clone());
                        // This copy may hold a frame the journal does not: forget where it
                        // stands, so taking the partition again starts from a snapshot.
                        lock(&node.applied).remove(&p);
                        drop(owner::stop(&node, p));
                    }
                }
                let _ = done.send(r);
            }
        }
    }
}

/// The sequence of partition `p`'s last journal record (0 when it has none).
async fn last_seq(node: &Node, p: u32) -> Result<u64, String> {
    use jetstream::stream::LastRawMessageErrorKind;
    let stream = node.js.get_stream(journal_stream(&node.config.prefix)).await.map_err(|e| e.to_string())?;
    match stream.get_last_raw_message_by_subject(&node.journal_subject(p)).await {
        Ok(m) => Ok(m.sequence),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(e) => Err(e.to_string()),
    }
}

/// What taking a partition cost.
#[derive(Debug, Default)]
pub(super) struct CaughtUp {
    /// The partition's last journal sequence: the first append expects it.
    pub last: u64,
    /// Journal records replayed.
    pub replayed: u64,
    /// The sequence of the snapshot restored, if one was.
    pub snapshot: Option<u64>,
}

/// Brings this instance's copy of partition `p` to the journal's end: the newest snapshot when
/// it is ahead of what was applied here (or nothing was), then every record after.
pub(super) async fn catch_up(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32) -> Result<CaughtUp, String> {
    let mine = lock(&node.applied).get(&p).copied();
    let parts = node.config.partitions.get();
    let pick = move |n: &str| partition_of(n, parts) == p;
    let snap = match node.load_snapshot(p).await {
        Ok(s) => s,
        Err(e) => {
            node.stats.snapshot_read_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(partition = p, error = %e, "cluster: snapshot unreadable; replaying the whole journal");
            None
        }
    };
    let mut out = CaughtUp::default();
    match snap {
        Some(Snapshot { seq, streams }) if mine.is_none_or(|m| seq > m) => {
            ctx.shards.replace(&pick, streams);
            lock(&node.applied).insert(p, seq);
            node.stats.snapshots_restored.fetch_add(1, Ordering::Relaxed);
            out.snapshot = Some(seq);
        }
        _ if mine.is_none() => ctx.shards.replace(&pick, Vec::new()),
        _ => {}
    }
    loop {
        out.replayed += replay(node, ctx, p).await?;
        out.last = last_seq(node, p).await?;
        if out.last <= lock(&node.applied).get(&p).copied().unwrap_or(0) {
            return Ok(out);
        }
    }
}

/// Writes the fence record that makes this instance the partition's only writer; when someone
/// wrote since `last`, catches up and tries again. Returns the fence's sequence.
pub(super) async fn fence(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32, mut last: u64) -> Result<u64, String> {
    let payload = serde_json::to_vec(&Input::Fence { owner: node.id.clone() }).map_err(|e| e.to_string())?;
    for _ in 0..5 {
        match publish(node, p, &node.request_id(), Bytes::from(payload.clone()), last).await {
            Ok(a) => {
                owner::applied(node, p, a.seq);
                return Ok(a.seq);
            }
            Err(AppendError::Fenced) => last = catch_up(node, ctx, p).await?.last,
            Err(AppendError::Failed(e)) => return Err(e),
        }
    }
    Err("the partition's journal kept moving under the fence".into())
}

/// Reads the partition's journal from the last sequence applied here and applies it; returns
/// the number of records applied.
async fn replay(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32) -> Result<u64, String> {
    let from = lock(&node.applied).get(&p).copied().unwrap_or(0);
    let stream = node.js.get_stream(journal_stream(&node.config.prefix)).await.map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: node.journal_subject(p),
            deliver_policy: if from == 0 {
                jetstream::consumer::DeliverPolicy::All
            } else {
                jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: from + 1 }
            },
            ack_policy: jetstream::consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut left = consumer.cached_info().num_pending;
    let mut n = 0;
    while left > 0 {
        let mut batch = consumer
            .fetch()
            .max_messages(left.min(500) as usize)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let mut got = 0;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| e.to_string())?;
            let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
            if let Ok(input) = serde_json::from_slice::<Input>(&m.payload) {
                owner::apply(ctx, input).await;
            }
            owner::applied(node, p, seq);
            got += 1;
            n += 1;
            node.stats.replayed.fetch_add(1, Ordering::Relaxed);
        }
        if got == 0 {
            return Err(format!("journal replay stalled with {left} records left"));
        }
        left = left.saturating_sub(got);
    }
    Ok(n)
}
