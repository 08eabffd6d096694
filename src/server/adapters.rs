//! Platform adapters inside `kotae serve`: chat read from Twitch, YouTube or Niconico goes through
//! the same workers and stream shards as ingest frames (and is counted the same way), and a
//! message whose verdict is `block` is deleted on the platform when the adapter can.
//!
//! The adapters write into one bounded channel ([`AdaptersConfig::channel_capacity`], policy
//! `block`: a full channel slows the platform reads). They stop when shutdown starts; the bridge
//! ends once every adapter has dropped its sender and the channel is drained, and the session
//! tracker waits for it like for a websocket session.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::ingest::Item;
use serde::Serialize;

use crate::ingest::adapters::{
    self, ActionSender, AdapterMetrics, AdaptersConfig, EndReason, Ingested, ModerationAction, Platform,
};
use crate::label::Action;
use crate::stream::Out;

use super::Ctx;

/// Counters of the running adapters, by platform (labels never carry stream ids).
#[derive(Default)]
pub(crate) struct AdapterStats {
    adapters: std::sync::Mutex<Vec<(Platform, String, Arc<AdapterMetrics>)>>,
}

/// Where one stream's adapters stand, for the host screen (`adapters` in the stream summary).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StreamAdapters {
    /// Every adapter of the stream has ended because its platform said the chat is over.
    pub all_ended: bool,
    /// Adapters still reading (connecting, connected or waiting to reconnect).
    pub running: usize,
    /// Adapters whose platform ended the chat, and why.
    pub ended: Vec<EndedAdapter>,
}

/// One adapter the platform ended.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EndedAdapter {
    pub platform: Platform,
    pub reason: EndReason,
}

impl AdapterStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Platform, String, Arc<AdapterMetrics>)>> {
        match self.adapters.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The state of `stream`'s adapters; `None` when it has none.
    pub fn stream(&self, stream: &str) -> Option<StreamAdapters> {
        let adapters = self.lock();
        let mine: Vec<&(Platform, String, Arc<AdapterMetrics>)> =
            adapters.iter().filter(|(_, s, _)| s == stream).collect();
        if mine.is_empty() {
            return None;
        }
        let ended: Vec<EndedAdapter> = mine
            .iter()
            .filter_map(|(platform, _, m)| m.ended().map(|reason| EndedAdapter { platform: *platform, reason }))
            .collect();
        let running = mine.iter().filter(|(_, _, m)| m.state() != adapters::ConnState::Stopped).count();
        Some(StreamAdapters { all_ended: ended.len() == mine.len(), running, ended })
    }

    /// Prometheus text for `/metrics`: per-platform sums over the running adapters.
    pub fn render(&self) -> String {
        let adapters = self.lock();
        if adapters.is_empty() {
            return String::new();
        }
        let mut by: HashMap<String, [u64; 8]> = HashMap::new();
        let mut ended: HashMap<(String, EndReason), u64> = HashMap::new();
        for (platform, _, m) in adapters.iter() {
            let s = m.snapshot();
            let row = by.entry(platform.to_string()).or_default();
            let connected = u64::from(matches!(s.state, adapters::ConnState::Connected));
            for (slot, v) in row.iter_mut().zip([
                connected,
                s.connects,
                s.reconnects,
                s.messages,
                s.duplicates,
                s.parse_errors,
                s.actions_ok + s.actions_failed + s.actions_rejected,
                s.quota_units,
            ]) {
                *slot += v;
            }
            for reason in EndReason::ALL {
                *ended.entry((platform.to_string(), reason)).or_default() += u64::from(s.ended == Some(reason));
            }
        }
        let mut out = String::new();
        out.push_str("# HELP kotae_adapter_connected Platform adapters connected now\n");
        out.push_str("# TYPE kotae_adapter_connected gauge\n");
        for (p, row) in &by {
            let _ = writeln!(out, "kotae_adapter_connected{{platform=\"{p}\"}} {}", row[0]);
        }
        out.push_str("# HELP kotae_adapter_events_total Platform adapter connections, reconnects, messages, duplicates dropped, parse errors, actions, quota units\n");
        out.push_str("# TYPE kotae_adapter_events_total counter\n");
        let names = ["connects", "reconnects", "messages", "duplicates", "parse_errors", "actions", "quota_units"];
        for (p, row) in &by {
            for (name, v) in names.iter().zip(&row[1..]) {
                let _ = writeln!(out, "kotae_adapter_events_total{{platform=\"{p}\",event=\"{name}\"}} {v}");
            }
        }
        out.push_str("# HELP kotae_adapter_ended Platform adapters stopped because the platform said the chat is over, by reason\n");
        out.push_str("# TYPE kotae_adapter_ended gauge\n");
        let mut ended: Vec<_> = ended.into_iter().collect();
        ended.sort_by_key(|((p, r), _)| (p.clone(), *r as u8));
        for ((p, reason), n) in ended {
            let _ = writeln!(out, "kotae_adapter_ended{{platform=\"{p}\",reason=\"{}\"}} {n}", reason.as_str());
        }
        out
    }
}

/// Runs the configured adapters until shutdown, feeding their chat through the pipeline.
pub(crate) async fn run(ctx: Arc<Ctx>, config: AdaptersConfig) {
    let built = match adapters::build(&config) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "platform adapters not started");
            return;
        }
    };
    if built.is_empty() {
        return;
    }
    // Closed when every adapter has ended and dropped its sender.
    let (tx, mut rx) = mpsc::channel::<Ingested>(config.channel_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders: HashMap<(String, Platform), ActionSender> = HashMap::new();
    let mut tasks = Vec::new();
    for adapter in built {
        let running = adapters::spawn(adapter, tx.clone(), config.action_capacity, stop_rx.clone());
        ctx.adapter_stats.lock().push((running.platform, running.stream.clone(), running.metrics.clone()));
        tracing::info!(platform = %running.platform, stream = %running.stream, "platform adapter started");
        senders.insert((running.stream.clone(), running.platform), running.actions.clone());
        tasks.push((running.platform, running.stream, running.metrics, running.task));
    }
    drop(tx);
    let mut closing = ctx.closing.clone();
    let mut stopping = *closing.borrow();
    loop {
        let next = if stopping {
            rx.recv().await
        } else {
            tokio::select! {
                m = rx.recv() => m,
                changed = closing.changed() => {
                    // Shutdown (or the server gone): tell the adapters, then drain what they sent.
                    if changed.is_err() || *closing.borrow() {
                        stopping = true;
                        let _ = stop_tx.send(true);
                    }
                    continue;
                }
            }
        };
        let Some(ingested) = next else { break };
        let Ingested::Chat(chat) = ingested else { continue };
        ctx.metrics.received(1);
        let stream: Arc<str> = chat.stream.as_str().into();
        let platform = chat.platform;
        let message_id = chat.id.clone();
        let arrived = Instant::now();
        let deadline = arrived + Duration::from_millis(ctx.config.budget_ms.get());
        let items = ctx.workers.analyze(vec![Item::Parsed(chat.to_in_message())], arrived, deadline).await;
        let outs = ctx.shards.submit(stream.clone(), items).await.wait().await;
        super::ws::count_outcomes(&ctx, &outs);
        let blocked = outs.iter().any(|o| matches!(o, Out::Verdict(v) if v.verdict.action == Action::Block));
        if blocked && let Some(sender) = senders.get(&(stream.to_string(), platform)) {
            let sender = sender.clone();
            // The platform API may be slow; the next message must not wait for it.
            tokio::spawn(async move {
                if let Err(e) = sender.perform(ModerationAction::Delete { message_id }).await {
                    tracing::info!(%platform, error = %e, "delete on the platform not done");
                }
            });
        }
    }
    let _ = stop_tx.send(true);
    // Every adapter has dropped its sender, so each task is ending; its counters are final.
    for (platform, stream, metrics, task) in tasks {
        match task.await {
            Ok(Err(e)) => tracing::warn!(%platform, %stream, error = %e, "platform adapter failed"),
            Err(e) => tracing::warn!(%platform, %stream, error = %e, "platform adapter task panicked"),
            Ok(Ok(())) => {}
        }
        let m = metrics.snapshot();
        tracing::info!(
            %platform,
            %stream,
            ended = m.ended.map_or("no", EndReason::as_str),
            connects = m.connects,
            reconnects = m.reconnects,
            messages = m.messages,
            moderation_events = m.moderation_events,
            duplicates = m.duplicates,
            parse_errors = m.parse_errors,
            actions_ok = m.actions_ok,
            actions_failed = m.actions_failed,
            actions_rejected = m.actions_rejected,
            quota_units = m.quota_units,
            "platform adapter stopped"
        );
    }
}
