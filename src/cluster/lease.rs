//! Partition leases in the JetStream KV bucket `{prefix}_owners`.
//!
//! `part.P` holds `{"owner": ID, "expires_ms": T}`; `member.ID` holds the instance's heartbeat
//! expiry. nats-server 2.9 has no per-key TTL, so expiry is a value compared with the wall
//! clock, and every change of a lease is a compare-and-set on the key's revision (`create` when
//! absent, `update` with the revision read): two instances never both win one partition.
//! Instances' clocks must agree to well within `lease_ms` (NTP).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Node, lock, owner};
use crate::runtime::clock::unix_ms;
use crate::server::Ctx;

#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    owner: String,
    expires_ms: u64,
}

/// Instances whose heartbeat has not expired (this one included).
async fn live_members(node: &Node, now: u64) -> Result<usize, String> {
    let mut keys = node.kv.keys().await.map_err(|e| e.to_string())?;
    let mut n = 0;
    let mut names = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| e.to_string())?;
        if k.starts_with("member.") {
            names.push(k);
        }
    }
    for k in names {
        if let Ok(Some(e)) = node.kv.entry(k).await
            && e.operation == async_nats::jetstream::kv::Operation::Put
            && std::str::from_utf8(&e.value).ok().and_then(|v| v.parse::<u64>().ok()).is_some_and(|t| t > now)
        {
            n += 1;
        }
    }
    Ok(n.max(1))
}

fn encode(owner: &str, expires_ms: u64) -> Bytes {
    Bytes::from(serde_json::to_vec(&Lease { owner: owner.into(), expires_ms }).unwrap_or_default())
}

/// Waits (at most `forward_timeout_ms`) for a stopped partition's requests to be answered.
async fn drain(node: &Node, task: Option<tokio::task::JoinHandle<()>>) {
    if let Some(t) = task {
        let within = Duration::from_millis(node.config.forward_timeout_ms.get());
        if tokio::time::timeout(within, t).await.is_err() {
            tracing::warn!("cluster: a partition's requests were not all answered before its lease was given up");
        }
    }
}

/// Renews, takes and gives up leases every `renew_ms` until the server closes; then gives up
/// every lease at once so the others take over without waiting for expiry.
pub(super) async fn run(node: Arc<Node>, ctx: Arc<Ctx>) {
    let renew = Duration::from_millis(node.config.renew_ms.get());
    let lease_ms = node.config.lease_ms.get();
    let parts = node.config.partitions.get();
    let mut tick = tokio::time::interval(renew);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing = ctx.closing.clone();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = crate::server::closed(&mut closing) => break,
        }
        let now = unix_ms();
        if let Err(e) = node.kv.put(format!("member.{}", node.id), Bytes::from((now + lease_ms).to_string())).await {
            node.stats.lease_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cluster: heartbeat failed");
            continue;
        }
        let members = match live_members(&node, now).await {
            Ok(n) => n,
            Err(e) => {
                node.stats.lease_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "cluster: cannot read members");
                continue;
            }
        };
        let target = parts.div_ceil(members as u32) as usize;
        for p in 0..parts {
            let key = format!("part.{p}");
            let entry = match node.kv.entry(key.clone()).await {
                Ok(e) => e,
                Err(e) => {
                    node.stats.lease_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, partition = p, "cluster: cannot read lease");
                    continue;
                }
            };
            let now = unix_ms();
            let lease = entry.as_ref().and_then(|e| serde_json::from_slice::<Lease>(&e.value).ok());
            let revision = entry.as_ref().map(|e| e.revision);
            let held = lock(&node.owned).contains_key(&p);
            let count = lock(&node.owned).len();
            match lease {
                Some(l) if l.owner == node.id && held => {
                    let Some(rev) = revision else { continue };
                    if count > target {
                        // More than a fair share: stop serving first (every request taken is
                        // journaled and answered), then let the lease go.
                        drain(&node, owner::stop(&node, p)).await;
                        let _ = node.kv.update(key, encode(&node.id, 0), rev).await;
                        tracing::info!(partition = p, "cluster: partition given up for balance");
                        continue;
                    }
                    if node.kv.update(key, encode(&node.id, now + lease_ms), rev).await.is_ok() {
                        owner::renewed(&node, p, now + lease_ms);
                    } else {
                        node.stats.lease_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(partition = p, "cluster: lease renewal lost a race; partition dropped");
                        drop(owner::stop(&node, p));
                    }
                }
                Some(l) if l.owner != node.id && l.expires_ms > now => {
                    if held {
                        tracing::warn!(partition = p, owner = %l.owner, "cluster: partition now owned elsewhere");
                        drop(owner::stop(&node, p));
                    }
                }
                _ => {
                    if held {
                        drop(owner::stop(&node, p));
                    }
                    if lock(&node.owned).len() >= target || owner::running(&node, p) {
                        continue;
                    }
                    let value = encode(&node.id, now + lease_ms);
                    let won = match revision {
                        None => node.kv.create(key, value).await.is_ok(),
                        Some(rev) => node.kv.update(key, value, rev).await.is_ok(),
                    };
                    if won {
                        owner::start(&node, &ctx, p, now + lease_ms);
                    }
                }
            }
        }
        node.stats.owned.store(lock(&node.owned).len() as u64, Ordering::Relaxed);
    }
    // Shutdown: give every lease up so the others need not wait for it to expire.
    let mine: Vec<u32> = lock(&node.owned).keys().copied().collect();
    let tasks: Vec<_> = mine.iter().map(|p| owner::stop(&node, *p)).collect();
    for t in tasks {
        drain(&node, t).await;
    }
    for p in mine {
        let key = format!("part.{p}");
        if let Ok(Some(e)) = node.kv.entry(key.clone()).await
            && serde_json::from_slice::<Lease>(&e.value).is_ok_and(|l| l.owner == node.id)
        {
            let _ = node.kv.update(key, encode(&node.id, 0), e.revision).await;
        }
    }
    let _ = node.kv.put(format!("member.{}", node.id), Bytes::from("0")).await;
    node.stats.owned.store(0, Ordering::Relaxed);
}
