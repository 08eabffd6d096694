//! Serving a partition: replay its journal, then answer requests on `{prefix}.part.P` in
//! arrival order, journaling each input in JetStream before its verdicts go out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::wire::{Input, Reply, WireOut};
use super::{Node, journal_stream, lock};
use crate::ingest::Item;
use crate::server::Ctx;
use crate::stream::{AnswerText, HostAction};

/// Starts serving partition `p` (the lease was just won).
pub(super) fn start(node: &Arc<Node>, ctx: &Arc<Ctx>, p: u32) {
    let (stop_tx, stop) = watch::channel(false);
    node.stats.takeovers.fetch_add(1, Ordering::Relaxed);
    // The map's lock is held across the spawn so the task cannot look for its entry before it
    // is there.
    let mut owned = lock(&node.owned);
    let task = tokio::spawn(serve(node.clone(), ctx.clone(), p, stop));
    owned.insert(p, (stop_tx, task));
}

/// Stops serving partition `p`: its subscription ends; requests already taken are journaled
/// and answered. The returned task ends when they are: a lease given up willingly is given
/// up only then, so the next owner's replay sees every record.
pub(super) fn stop(node: &Node, p: u32) -> Option<tokio::task::JoinHandle<()>> {
    let (tx, task) = lock(&node.owned).remove(&p)?;
    let _ = tx.send(true);
    node.stats.released.fetch_add(1, Ordering::Relaxed);
    Some(task)
}

fn applied(node: &Node, p: u32, seq: u64) {
    let mut a = lock(&node.applied);
    let e = a.entry(p).or_insert(0);
    *e = (*e).max(seq);
}

async fn serve(node: Arc<Node>, ctx: Arc<Ctx>, p: u32, mut stop: watch::Receiver<bool>) {
    let started = Instant::now();
    match replay(&node, &ctx, p).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(
                    partition = p,
                    records = n,
                    ms = started.elapsed().as_millis() as u64,
                    "cluster: partition replayed"
                );
            }
        }
        Err(e) => {
            // Serving without the journal's state would answer from a wrong queue: let the
            // lease lapse so another instance (or this one, on a later tick) tries again.
            tracing::warn!(partition = p, error = %e, "cluster: replay failed; partition dropped");
            stop_self(&node, p);
            return;
        }
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
    // Replies waiting for the journal's ack and the shard's outcomes.
    let mut replies = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            Some(_) = replies.join_next(), if !replies.is_empty() => {}
            msg = sub.next() => {
                let Some(msg) = msg else { break };
                handle(&node, &ctx, p, msg, &mut replies).await;
            }
        }
    }
    // Requests already delivered are served; later ones find no responder and are sent again
    // to the next owner.
    let _ = sub.unsubscribe().await;
    while let Some(msg) = sub.next().await {
        handle(&node, &ctx, p, msg, &mut replies).await;
    }
    while replies.join_next().await.is_some() {}
}

/// Drops a partition this task could not serve (the lease loop may take it again later).
fn stop_self(node: &Node, p: u32) {
    // The handle is this task's own: nothing to wait for.
    drop(stop(node, p));
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
                apply(ctx, input).await;
            }
            applied(node, p, seq);
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

/// Applies one journaled input to this instance's shards, its outcome discarded.
async fn apply(ctx: &Arc<Ctx>, input: Input) {
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
        Input::List { .. } | Input::GetCatalog { .. } => {}
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

/// Journals a request's input; the ack future resolves once JetStream holds it.
async fn journal(
    node: &Node,
    p: u32,
    rid: &str,
    payload: Bytes,
) -> Result<jetstream::context::PublishAckFuture, String> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", rid);
    node.js.publish_with_headers(node.journal_subject(p), headers, payload).await.map_err(|e| e.to_string())
}

/// Journals a host request and waits for JetStream's acknowledgement, then marks its sequence
/// applied; a failure is counted and comes back as the reply to send.
async fn journal_acked(node: &Node, p: u32, rid: &str, payload: Bytes) -> Result<(), Reply> {
    let acked = match journal(node, p, rid, payload).await {
        Ok(ack) => ack.await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match acked {
        Ok(ack) => {
            applied(node, p, ack.sequence);
            Ok(())
        }
        Err(e) => {
            node.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
            Err(Reply::Failed { error: format!("journal: {e}") })
        }
    }
}

/// Serves one request. Frames are journaled and handed to the shard here, in arrival order;
/// their verdicts are sent from a task once both the journal's ack and the shard's outcomes
/// are in, so the next frame need not wait.
async fn handle(
    node: &Arc<Node>,
    ctx: &Arc<Ctx>,
    p: u32,
    msg: async_nats::Message,
    replies: &mut tokio::task::JoinSet<()>,
) {
    node.stats.served.fetch_add(1, Ordering::Relaxed);
    let input = match serde_json::from_slice::<Input>(&msg.payload) {
        Ok(i) => i,
        Err(e) => {
            respond(node, msg.reply, &Reply::Failed { error: format!("bad request: {e}") });
            return;
        }
    };
    match input {
        Input::Ingest { rid, stream, messages } => {
            let ack = match journal(node, p, &rid, msg.payload.clone()).await {
                Ok(a) => a,
                Err(e) => {
                    node.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
                    respond(node, msg.reply, &Reply::Failed { error: format!("journal: {e}") });
                    return;
                }
            };
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
                    Ok(a) => {
                        if a.duplicate {
                            node.stats.journal_duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        applied(&node, p, a.sequence);
                        Reply::Outs { outs: outs.into_iter().map(WireOut::from_out).collect() }
                    }
                    Err(e) => {
                        node.stats.journal_errors.fetch_add(1, Ordering::Relaxed);
                        Reply::Failed { error: format!("journal: {e}") }
                    }
                };
                respond(&node, msg.reply, &reply);
                node.announce(p, &stream);
            });
        }
        Input::Act { rid, stream, cluster, action, answer } => {
            let Some(a) = HostAction::parse(&action) else {
                respond(node, msg.reply, &Reply::Failed { error: format!("unknown action {action}") });
                return;
            };
            let reply = match journal_acked(node, p, &rid, msg.payload.clone()).await {
                Ok(()) => {
                    let q = ctx.shards.act_with(Arc::from(stream.as_str()), cluster, a, answer_text(answer)).await;
                    node.announce(p, &stream);
                    Reply::Json { value: serde_json::to_value(q).unwrap_or_default() }
                }
                Err(failed) => failed,
            };
            respond(node, msg.reply, &reply);
        }
        Input::Catalog { ref rid, ref stream, .. } | Input::Product { ref rid, ref stream, .. } => {
            let (rid, stream) = (rid.clone(), stream.clone());
            let reply = match journal_acked(node, p, &rid, msg.payload.clone()).await {
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
        }
        Input::GetCatalog { stream } => {
            let reply = match ctx.shards.catalog(Arc::from(stream)).await {
                Ok(c) => Reply::Json { value: serde_json::to_value(c.spec()).unwrap_or_default() },
                Err(_) => Reply::Failed { error: "server is shutting down".into() },
            };
            respond(node, msg.reply, &reply);
        }
        Input::List { stream } => {
            let reply = match ctx.shards.list(Arc::from(stream)).await {
                Some(l) => Reply::Json { value: serde_json::to_value(l).unwrap_or_default() },
                None => Reply::Failed { error: "server is shutting down".into() },
            };
            respond(node, msg.reply, &reply);
        }
    }
}
