//! `kotae adapt`: runs the configured platform adapters and prints every message they read, as
//! `kotae classify` input (InMessage JSON Lines), until the lives end or shutdown.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::ingest::adapters::{self, AdaptersConfig, IngestError, Ingested, MetricsSnapshot, Platform};

/// How long adapters get to stop after shutdown.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Why `kotae adapt` could not run.
#[derive(Debug, thiserror::Error)]
pub enum AdaptError {
    /// No `[[adapters.streams]]` table in the configuration: nothing to run.
    #[error("no adapters configured: add an [[adapters.streams]] table to the configuration")]
    NoAdapters,
    /// An adapter could not be built or stopped with an error.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Writing to the output failed (a closed pipe, a full disk).
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

impl AdaptError {
    /// Whether this is a configuration problem (exit code 64).
    pub fn is_config(&self) -> bool {
        matches!(self, AdaptError::NoAdapters | AdaptError::Ingest(IngestError::Setup(_)))
    }
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One `InMessage` line per chat message (moderation events are only logged).
    InMessage,
    /// The full normalized item: every chat message and moderation event.
    Full,
}

/// One adapter's counters at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterReport {
    /// The platform the adapter reads.
    pub platform: Platform,
    /// The kotae stream it feeds.
    pub stream: String,
    /// Its counters when it stopped: connects, messages, duplicates, parse errors…
    pub metrics: MetricsSnapshot,
}

/// Runs every configured adapter, writing lines to `out` until they all end or `shutdown`
/// resolves. Must be called inside a tokio runtime.
pub async fn run(
    config: &AdaptersConfig,
    mut out: impl Write,
    output: Output,
    shutdown: impl Future<Output = ()>,
) -> Result<Vec<AdapterReport>, AdaptError> {
    let adapters = adapters::build(config)?;
    if adapters.is_empty() {
        return Err(AdaptError::NoAdapters);
    }
    // Closed when every adapter has ended and dropped its sender.
    let (tx, mut rx) = mpsc::channel(config.channel_capacity.max(1));
    let (stop, stop_rx) = watch::channel(false);
    let running: Vec<_> =
        adapters.into_iter().map(|a| adapters::spawn(a, tx.clone(), config.action_capacity, stop_rx.clone())).collect();
    drop(tx);
    tokio::pin!(shutdown);
    let mut stopping = false;
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            _ = &mut shutdown, if !stopping => {
                stopping = true;
                let _ = stop.send(true);
                continue;
            }
        };
        let Some(item) = item else { break };
        match (&item, output) {
            (Ingested::Chat(m), Output::InMessage) => serde_json::to_writer(&mut out, &m.to_in_message()),
            (Ingested::Moderation(n), Output::InMessage) => {
                tracing::info!(platform = %n.platform, stream = %n.stream, event = ?n.event, "moderation event");
                continue;
            }
            (_, Output::Full) => serde_json::to_writer(&mut out, &item),
        }
        .map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    let mut reports = Vec::new();
    for r in running {
        match tokio::time::timeout(STOP_DEADLINE, r.task).await {
            Ok(Ok(Err(e))) => tracing::warn!(platform = %r.platform, stream = %r.stream, error = %e, "adapter failed"),
            Ok(Err(e)) => tracing::warn!(platform = %r.platform, error = %e, "adapter task panicked"),
            Err(_) => tracing::warn!(platform = %r.platform, "adapter did not stop in time"),
            Ok(Ok(Ok(()))) => {}
        }
        reports.push(AdapterReport { platform: r.platform, stream: r.stream, metrics: r.metrics.snapshot() });
    }
    Ok(reports)
}

/// `kotae adapt` from `main`: its own runtime, SIGTERM or Ctrl-C as shutdown, counters on stderr
/// at the end (after the adapters have stopped, so they are final).
pub fn run_blocking(config: &AdaptersConfig, output: Output) -> Result<(), AdaptError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // The signal handlers are installed inside the runtime, before any adapter starts.
    let reports = runtime.block_on(async {
        run(config, std::io::stdout().lock(), output, crate::commands::serve::shutdown_signal()).await
    })?;
    for r in reports {
        eprintln!("{}", serde_json::to_string(&r).unwrap_or_default());
    }
    Ok(())
}
