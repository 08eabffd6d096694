//! Serving a partition: catch up (newest snapshot, then the journal after it) and fence the
//! journal, then answer requests on `{prefix}.part.P` in arrival order, journaling each input
//! in JetStream before its verdicts go out, and snapshot the partition every
//! `snapshot_interval_ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::journal::{self, AppendError, Appender};
use super::snapshot::Snapshot;
use super::wire::{Input, Reply, WireOut};
use super::{Node, Serving, lock, partition_of};
use crate::ingest::Item;
use crate::runtime::clock::unix_ms;
use crate::server::Ctx;
use crate::stream::{AnswerText, HostAction};

/// Starts serving partition `p` (the lease was just won, and holds until `until`, unix ms).
pub(super) fn start(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32, until: u64) {
    let (stop_tx, stop) = watch::channel(false);
    node.stats.takeovers.fetch_add(1, Ordering::Relaxed);
    let until = Arc::new(AtomicU64::new(until));
    // In `running` from now until the task's future is dropped: when it ends, or if it never ran.
    lock(&node.running).insert(p);
    let ended = Ended { node: node.clone(), p };
    // The map's lock is held across the spawn so the task cannot look for its entry before it
    // is there.
    let mut owned = lock(&node.owned);
    let serving = serve(node.clone(), ctx.clone(), p, stop, until.clone());
    let task = tokio::spawn(async move {
        let _ended = ended;
        serving.await;
    });
    owned.insert(p, Serving { stop: stop_tx, task, until });
}

/// Whether a serve task of partition `p` is still running on this instance (serving, or told to
/// stop and still answering what it took): the partition may not be taken again until it ends.
pub(super) fn running(node: &Node, p: u32) -> bool {
    lock(&node.running).contains(&p)
}

/// Marks the end of a partition's serve task.
struct Ended {
    node: Arc<Node>,
    p: u32,
}

impl Drop for Ended {
    fn drop(&mut self) {
        lock(&self.node.running).remove(&self.p);
    }
}

/// Partition `p`'s lease was renewed: it holds until `until` (unix ms).
pub(super) fn renewed(node: &Node, p: u32, until: u64) {
    if let Some(s) = lock(&node.owned).get(&p) {
        s.until.fetch_max(until, Ordering::Relaxed);
    }
}

/// Stops serving partition `p`: its subscription ends; requests already taken are journaled
/// and answered. The returned task ends when they are: a lease given up willingly is given
/// up only then, so the next owner's replay sees every record.
pub(super) fn stop(node: &Node, p: u32) -> Option<tokio::task::JoinHandle<()>> {
    let serving = lock(&node.owned).remove(&p)?;
    let _ = serving.stop.send(true);
    node.stats.released.fetch_add(1, Ordering::Relaxed);
    Some(serving.task)
}

/// Records that partition `p`'s journal is applied here up to `seq`.
pub(super) fn applied(node: &Node, p: u32, seq: u64) {
    let mut a = lock(&node.applied);
    let e = a.entry(p).or_insert(0);
    *e = (*e).max(seq);
}

async fn serve(node: Arc<Node>, ctx: Arc<Ctx>, p: u32, mut stop: watch::Receiver<bool>, until: Arc<AtomicU64>) {
    let started = Instant::now();
    let caught = match journal::catch_up(&node, &ctx, p).await {
        Ok(c) => c,
        Err(e) => {
            // Serving without the journal's state would answer from a wrong queue: let the
            // lease lapse so another instance (or this one, on a later tick) tries again.
            tracing::warn!(partition = p, error = %e, "cluster: replay failed; partition dropped");
            stop_self(&node, p);
            return;
        }
    };
    let last = match journal::fence(&node, &ctx, p, caught.last).await {
        Ok(seq) => seq,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "cluster: cannot fence the journal; partition dropped");
            stop_self(&node, p);
            return;
        }
    };
    if caught.replayed > 0 || caught.snapshot.is_some() {
        tracing::info!(
            partition = p,
            records = caught.replayed,
            snapshot = caught.snapshot,
            ms = started.elapsed().as_millis() as u64,
            "cluster: partition restored"
        );
    }
    if *stop.borrow() {
        return;
    }
    let mut sub = match node.client.subscribe(node.part_subject(p)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(partition = p, error = %e, "cluster: cannot subscribe; partition dropped");
            stop_self(&node, p);
            return;
        }
    };
    tracing::info!(partition = p, instance = %node.id, ms = started.elapsed().as_millis() as u64, "cluster: serving partition");
    let appender = Appender::start(&node, p, last);
    let every = node.config.snapshot_interval_ms;
    let mut snap_tick = tokio::time::interval(Duration::from_millis(every.max(1)));
    snap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    snap_tick.tick().await;
    // Journal records since the last snapshot: a partition with none is not written again.
    let mut since = caught.replayed;
    let mut writing: Option<tokio::task::JoinHandle<()>> = None;
    // Replies waiting for the journal's ack and the shard's outcomes.
    let mut replies = tokio::task::JoinSet::new();
    let mut taken = Taken::default();
    // The lease's end by this instance's clock. An instance whose renewals stall (a loaded
    // machine, a pause) stops serving there, before another instance may take the partition
    // (clocks agreeing), instead of at its next renewal.
    let lapse = tokio::time::sleep(left(&until));
    tokio::pin!(lapse);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            () = &mut lapse => {
                let rest = left(&until);
                if rest.is_zero() {
                    tracing::warn!(partition = p, "cluster: lease not renewed in time; partition dropped");
                    stop_self(&node, p);
                    break;
                }
                lapse.as_mut().reset(tokio::time::Instant::now() + rest);
            }
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
            _ = snap_tick.tick(), if every > 0 && since > 0 && writing.as_ref().is_none_or(|w| w.is_finished()) => {
                writing = Some(snapshot(&node, &ctx, p, &appender).await);
                since = 0;
            }
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                since += handle(&node, &ctx, p, msg, &appender, &mut replies, &mut taken, &until).await;
            }
        }
    }
    // Requests already delivered are served; later ones find no responder and are sent again
    // to the next owner.
    let _ = sub.unsubscribe().await;
    while let Some(msg) = sub.next().await {
        since += handle(&node, &ctx, p, msg, &appender, &mut replies, &mut taken, &until).await;
    }
    while replies.join_next().await.is_some() {}
    if let Some(w) = writing {
        let _ = w.await;
    }
    // Handing over (balance, shutdown): a last snapshot spares the next owner the replay. Not
    // past the lease's end: another owner (or this instance again, replaying into the same
    // shards) may be at work on the partition by then.
    if every > 0 && since > 0 && !left(&until).is_zero() {
        let _ = snapshot(&node, &ctx, p, &appender).await.await;
    }
}

/// How long the lease that holds until `until` (unix ms) has left, by this instance's clock.
fn left(until: &AtomicU64) -> Duration {
    Duration::from_millis(until.load(Ordering::Relaxed).saturating_sub(unix_ms()))
}

/// The request ids this task has taken, the last [`Taken::CAP`] of them, as 64-bit hashes. A
/// requester sends a request again after `lease_ms + renew_ms` without a reply; a copy reaching
/// the owner that took the first one is dropped, never applied twice.
#[derive(Default)]
struct Taken {
    set: std::collections::HashSet<u64>,
    order: std::collections::VecDeque<u64>,
}

impl Taken {
    /// Eight seconds (the default `forward_timeout_ms`) at 8,000 requests a second.
    const CAP: usize = 1 << 16;

    /// Remembers `rid`; false if it was taken already.
    fn insert(&mut self, rid: &str) -> bool {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        rid.hash(&mut h);
        let h = h.finish();
        if !self.set.insert(h) {
            return false;
        }
        self.order.push_back(h);
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// Takes partition `p`'s state as it stands after every request handled so far and writes it
/// once the journal holds all of them, from a task (returned).
async fn snapshot(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32, appender: &Appender) -> tokio::task::JoinHandle<()> {
    let parts = node.config.partitions.get();
    let streams = ctx.shards.export(&|n: &str| partition_of(n, parts) == p);
    let mark = appender.mark().await;
    let node = node.clone();
    tokio::spawn(async move {
        // No sequence: an append failed, so this state may hold what the journal does not.
        let Ok(Some(seq)) = mark.await else { return };
        let started = Instant::now();
        let n = streams.len();
        match node.save_snapshot(p, &Snapshot { seq, streams }).await {
            Ok(bytes) => {
                node.stats.snapshots_written.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    partition = p,
                    seq,
                    streams = n,
                    bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "cluster: snapshot written"
                );
            }
            Err(e) => {
                node.stats.snapshot_write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(partition = p, error = %e, "cluster: snapshot not written");
            }
        }
    })
}

/// Drops a partition this task could not serve (the lease loop may take it again later).
fn stop_self(node: &Node, p: u32) {
    // The handle is this task's own: nothing to wait for.
    drop(stop(node, p));
}

/// Applies one journaled input to this instance's shards, its outcome discarded.
pub(super) async fn apply(ctx: &Arc<Ctx>, input: Input) {
    match input {
        Input::Ingest { stream, messages, .. } => {
            let now = Instant::now();
            let items = messages.into_iter().map(Item::Parsed).collect();
            // No budget on replay: every record must reach the state it reached before.
            let items = ctx.workers.analyze(items, now, now + Duration::from_secs(60)).await;
            let _ = ctx.shards.submit(Arc::from(stream), items).await.wait().await;
        }
        Input::Act { stream, cluster, action, answer, .. } => {
            if let Some(a) = HostAction::parse(&action) {
                let _ = ctx.shards.act_with(Arc::from(stream), cluster, a, answer_text(answer)).await;
            }
        }
        Input::Catalog { stream, spec, .. } => {
            if let Ok(c) = crate::catalog::Catalog::compile(spec, &ctx.console.engine.config.normalize) {
                let _ = ctx.shards.set_catalog(Arc::from(stream), Arc::new(c)).await;
            }
        }
        Input::Product { stream, product, .. } => {
            let _ = ctx.shards.set_product(Arc::from(stream), product).await;
        }
        Input::Moderate { stream, request, .. } => {
            if request.changes() {
                let _ = crate::server::moderator_answer(ctx, &stream, request, false).await;
            }
        }
        Input::List { .. } | Input::GetCatalog { .. } | Input::Fence { .. } => {}
    }
}

fn answer_text(a: Option<String>) -> AnswerText {
    match a {
        None => AnswerText::Keep,
        Some(s) if s.is_empty() => AnswerText::Clear,
        Some(s) => AnswerText::Set(s.into()),
    }
}

fn respond(node: &Node, reply: Option<async_nats::Subject>, r: &Reply) {
    let Some(to) = reply else { return };
    let body = serde_json::to_vec(r).unwrap_or_default();
    let client = node.client.clone();
    tokio::spawn(async move {
        let _ = client.publish(to, Bytes::from(body)).await;
    });
}

/// Journals a host request and waits for JetStream's acknowledgement; a failure comes back as
/// the reply to send.
async fn journal_acked(appender: &Appender, rid: &str, payload: Bytes) -> Result<(), Reply> {
    match appender.append(rid, payload).await.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(AppendError::Fenced)) => Err(Reply::Moved),
        Ok(Err(e)) => Err(Reply::Failed { error: format!("journal: {e}") }),
        Err(_) => Err(Reply::Failed { error: "journal: stopped".into() }),
    }
}

/// Serves one request. Frames are journaled and handed to the shard here, in arrival order;
/// their verdicts are sent from a task once both the journal's ack and the shard's outcomes
/// are in, so the next frame need not wait. A request that comes after the lease's end (by this
/// instance's clock) is left unanswered: the requester sends it again, and the next owner
/// answers it. (Replying `moved` could reach the requester before the next owner's answer to
/// the same copy and have that answer dropped.)
#[allow(clippy::too_many_arguments)]
async fn handle(
    node: &Arc<Node>,
    ctx: &Arc<Ctx>,
    p: u32,
    msg: async_nats::Message,
    appender: &Appender,
    replies: &mut tokio::task::JoinSet<()>,
    taken: &mut Taken,
    until: &AtomicU64,
) -> u64 {
    if left(until).is_zero() {
        node.stats.lapsed.fetch_add(1, Ordering::Relaxed);
        return 0;
    }
    node.stats.served.fetch_add(1, Ordering::Relaxed);
    let input = match serde_json::from_slice::<Input>(&msg.payload) {
        Ok(i) => i,
        Err(e) => {
            respond(node, msg.reply, &Reply::Failed { error: format!("bad request: {e}") });
            return 0;
        }
    };
    if let Some(rid) = input.rid()
        && !taken.insert(rid)
    {
        // A copy sent again because the first one's reply was late: that reply answers it.
        node.stats.repeated.fetch_add(1, Ordering::Relaxed);
        return 0;
    }
    match input {
        Input::Ingest { rid, stream, messages } => {
            let ack = appender.append(&rid, msg.payload.clone()).await;
            let now = Instant::now();
            let deadline = now + Duration::from_millis(ctx.config.budget_ms.get());
            let items = messages.into_iter().map(Item::Parsed).collect();
            let items = ctx.workers.analyze(items, now, deadline).await;
            let pending = ctx.shards.submit(Arc::from(stream.as_str()), items).await;
            let node = node.clone();
            replies.spawn(async move {
                let acked = ack.await;
                let outs = pending.wait().await;
                let reply = match acked {
                    Ok(Ok(_)) => Reply::Outs { outs: outs.into_iter().map(WireOut::from_out).collect() },
                    // Counted by the appender (`journal_errors`, `fenced`, `journal_duplicates`).
                    Ok(Err(AppendError::Fenced)) => Reply::Moved,
                    Ok(Err(e)) => Reply::Failed { error: format!("journal: {e}") },
                    Err(_) => Reply::Failed { error: "journal: stopped".into() },
                };
                respond(&node, msg.reply, &reply);
                node.announce(p, &stream);
            });
            1
        }
        Input::Act { rid, stream, cluster, action, answer } => {
            let Some(a) = HostAction::parse(&action) else {
                respond(node, msg.reply, &Reply::Failed { error: format!("unknown action {action}") });
                return 0;
            };
            let reply = match journal_acked(appender, &rid, msg.payload.clone()).await {
                Ok(()) => {
                    let q = ctx.shards.act_with(Arc::from(stream.as_str()), cluster, a, answer_text(answer)).await;
                    node.announce(p, &stream);
                    Reply::Json { value: serde_json::to_value(q).unwrap_or_default() }
                }
                Err(failed) => failed,
            };
            respond(node, msg.reply, &reply);
            1
        }
        Input::Catalog { ref rid, ref stream, .. } | Input::Product { ref rid, ref stream, .. } => {
            let (rid, stream) = (rid.clone(), stream.clone());
            let reply = match journal_acked(appender, &rid, msg.payload.clone()).await {
                Ok(()) => {
                    let value = match &input {
                        Input::Catalog { spec, .. } => serde_json::json!({ "products": spec.products.len() }),
                        Input::Product { product, .. } => serde_json::json!({ "current_product": product }),
                        _ => serde_json::Value::Null,
                    };
                    apply(ctx, input).await;
                    node.announce(p, &stream);
                    Reply::Json { value }
                }
                Err(failed) => failed,
            };
            respond(node, msg.reply, &reply);
            1
        }
        Input::GetCatalog { stream } => {
            let reply = match ctx.shards.catalog(Arc::from(stream)).await {
                Ok(c) => Reply::Json { value: serde_json::to_value(c.spec()).unwrap_or_default() },
                Err(_) => Reply::Failed { error: "server is shutting down".into() },
            };
            respond(node, msg.reply, &reply);
            0
        }
        Input::List { stream } => {
            let reply = match ctx.shards.list(Arc::from(stream)).await {
                Some(l) => Reply::Json { value: serde_json::to_value(l).unwrap_or_default() },
                None => Reply::Failed { error: "server is shutting down".into() },
            };
            respond(node, msg.reply, &reply);
            0
        }
        Input::Moderate { rid, stream, request } => {
            let changes = request.changes();
            if changes && let Err(failed) = journal_acked(appender, &rid, msg.payload.clone()).await {
                respond(node, msg.reply, &failed);
                return 0;
            }
            let reply = match crate::server::moderator_answer(ctx, &stream, request, true).await {
                Ok(value) => Reply::Json { value },
                Err((status, error)) => Reply::Refused { status: status.as_u16(), error },
            };
            respond(node, msg.reply, &reply);
            u64::from(changes)
        }
        Input::Fence { .. } => {
            respond(node, msg.reply, &Reply::Failed { error: "a fence is a journal record, not a request".into() });
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Taken;

    #[test]
    fn a_request_id_is_taken_once_until_it_is_among_the_oldest_forgotten() {
        let mut taken = Taken::default();
        assert!(taken.insert("k1.boot.1"));
        assert!(!taken.insert("k1.boot.1"), "a copy of a request already taken");
        assert!(taken.insert("k1.boot.2"));
        for i in 0..Taken::CAP {
            assert!(taken.insert(&format!("k2.boot.{i}")));
        }
        assert!(taken.insert("k1.boot.1"), "forgotten once CAP later ids came");
        assert!(!taken.insert("k2.boot.5"));
        assert_eq!(taken.set.len(), Taken::CAP);
    }
}
