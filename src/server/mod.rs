//! `kotae serve`: the websocket sidecar (contract: DESIGN.md §2.3, protocol: docs/protocol.md).
//!
//! ```text
//! platform ──ws──► session ──► runtime::workers (bounded pool, N threads: normalize→tokenize→classify)
//!    ▲              │  ▲                         │
//!    └── verdicts ──┘  └── runtime::shards (a lock per shard; the session runs stream::Streams::process) ──► Journal (SQLite)
//!                                     │ watch
//! host screen ◄──ws── host session ◄──┘
//! ```
//! A session keeps its frames in order with two ordered queues (analysis, then stateful), so
//! frames are pipelined yet answered in order. Shutdown: stop accepting, close sessions after
//! their in-flight frames are answered, stop workers and shards, flush the journal; all within
//! `shutdown_deadline_ms`.

mod adapters;
pub mod auth;
pub mod config;
mod extract;
mod faq;
pub(crate) mod guard;
mod host;
mod moderator;
pub mod reload;
mod upgrade;
mod web;
mod ws;

pub(crate) use moderator::{StreamRequest, answer as moderator_answer};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::{Channel, Metrics};
use crate::pipeline::Engine;
use crate::runtime::Sizing;
use crate::runtime::clock::Clock;
use crate::runtime::shards::{ShardDeps, Shards};
use crate::runtime::workers::Workers;
use crate::store::{Journal, JournalSender, StoreError};
use config::ServerConfig;

/// Start-up failures of the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound (in use, or not this machine's).
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The journal could not be opened or read back.
    #[error(transparent)]
    Journal(#[from] StoreError),
    /// A worker, shard or journal thread could not be started.
    #[error("cannot start threads: {0}")]
    Threads(std::io::Error),
    /// The dictionary directory could not be watched for hot reload.
    #[error("cannot watch dictionaries: {0}")]
    Watch(#[from] notify::Error),
    /// Cluster mode could not join NATS JetStream.
    #[error("cluster mode: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Shared by every request handler.
pub(crate) struct Ctx {
    pub config: ServerConfig,
    pub metrics: Arc<Metrics>,
    pub workers: Workers,
    pub shards: Shards,
    pub journal: JournalSender,
    /// One permit per allowed websocket connection.
    pub conn_slots: Arc<Semaphore>,
    /// Bytes of incoming websocket frames buffered in the whole process.
    pub frame_budget: Arc<upgrade::FrameBudget>,
    /// Becomes `true` when shutdown starts; sessions stop reading and drain.
    pub closing: watch::Receiver<bool>,
    /// Every websocket session, so shutdown can wait for them.
    pub tracker: TaskTracker,
    pub ready: AtomicBool,
    pub max_message_bytes: usize,
    /// Counters of the platform adapters running inside the server.
    pub adapter_stats: adapters::AdapterStats,
    /// The moderator console's state: engine, per-stream moderation, audit log.
    pub console: moderator::Console,
    /// Cluster mode (`--nats`): this instance's membership; `None` in single-instance mode.
    pub cluster: Option<Arc<crate::cluster::Node>>,
}

impl Ctx {
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    /// Every session answered its in-flight frames and closed in time.
    pub drained: bool,
    /// Workers, shards and the journal stopped and flushed in time.
    pub flushed: bool,
    /// From the stop signal to the end of the shutdown.
    pub elapsed: Duration,
}

impl ShutdownReport {
    /// Drained and flushed within `shutdown_deadline_ms`.
    pub fn in_time(&self) -> bool {
        self.drained && self.flushed
    }
}

/// A bound, not yet serving server.
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Ctx>,
    closing_tx: watch::Sender<bool>,
    journal: Journal,
    _reloader: Option<reload::Reloader>,
    /// Platform adapters to run (`[adapters]`); none by default.
    adapters: crate::ingest::adapters::AdaptersConfig,
}

impl Server {
    /// Opens the journal (restoring open questions), starts workers and shards, binds.
    pub async fn bind(config: &Config, engine: Arc<Engine>) -> Result<Self, ServerError> {
        let sc = config.server.clone();
        let metrics = Arc::new(Metrics::new());
        let (journal, mut restored) = Journal::open(&sc.journal, metrics.clone())?;
        // ── cluster hook (start-up): streams' state comes from the partition journals in
        // JetStream (replayed when a partition is taken), not from this instance's SQLite file.
        if config.cluster.enabled() {
            restored = crate::store::Restored::default();
        }
        let restored_questions: usize = restored.streams.values().map(|s| s.questions.len()).sum();
        let sizing = Sizing::of(&sc);
        let workers =
            Workers::start(&engine, sizing.workers, sc.worker_queue.get(), sizing.worker_nice, metrics.clone())
                .map_err(ServerError::Threads)?;
        let reload = reload::ReloadHandle::new(engine.clone(), metrics.clone());
        let console = moderator::Console::new(engine.clone(), &sc, reload.clone());
        let deps = ShardDeps {
            engine: engine.clone(),
            journal: journal.sender(),
            metrics: metrics.clone(),
            moderation: console.moderation.clone(),
            clock: Clock::system(),
        };
        let shards = Shards::start(&config.rank, &sc, restored, deps).map_err(ServerError::Threads)?;
        let listener = TcpListener::bind(sc.listen).await.map_err(|e| ServerError::Bind(sc.listen, e))?;
        let reloader = if sc.reload_dictionaries { Some(reload::watch(reload)?) } else { None };
        if sc.auth_required() && sc.moderator_tokens.is_empty() {
            tracing::warn!(
                "server.moderator_tokens is empty: the moderator console's endpoints are closed \
                 (set them or KOTAE_MODERATOR_TOKENS to open them)"
            );
        }
        // ── cluster hook (start-up): connect before serving; an unreachable NATS is a start-up error.
        let cluster =
            if config.cluster.enabled() { Some(crate::cluster::Node::connect(&config.cluster).await?) } else { None };
        let (closing_tx, closing) = watch::channel(false);
        tracing::info!(
            listen = %listener.local_addr().map_err(|e| ServerError::Bind(sc.listen, e))?,
            workers = sizing.workers,
            shards = sc.shards.get(),
            restored_questions,
            auth = sc.auth_required(),
            "kotae serve ready"
        );
        let ctx = Arc::new(Ctx {
            conn_slots: Arc::new(Semaphore::new(sc.max_connections.get())),
            frame_budget: Arc::new(upgrade::FrameBudget::new(sc.frame_budget_bytes.get(), metrics.clone())),
            journal: journal.sender(),
            max_message_bytes: config.pipeline.max_message_bytes,
            config: sc,
            metrics,
            workers,
            shards,
            closing,
            tracker: TaskTracker::new(),
            ready: AtomicBool::new(true),
            adapter_stats: adapters::AdapterStats::default(),
            console,
            cluster,
        });
        if let Some(node) = &ctx.cluster {
            node.start(ctx.clone()).await?;
            tracing::info!(instance = node.id(), nats = %config.cluster.nats, "cluster mode");
        }
        Ok(Self { listener, ctx, closing_tx, journal, _reloader: reloader, adapters: config.adapters.clone() })
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.ctx.config.listen)
    }

    /// Serves until `shutdown` resolves, then shuts down in order under the deadline.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let Server { listener, ctx, closing_tx, journal, _reloader, adapters: adapters_config } = self;
        // Adapters are tracked like sessions: shutdown waits for them to stop and drain.
        ctx.tracker.spawn(adapters::run(ctx.clone(), adapters_config));
        let app = router(ctx.clone());
        let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(ctx.config.handshake_timeout_ms.get()));
        let http = Arc::new(http.http1_only());
        // One permit per plain HTTP connection; a websocket gives its permit back once upgraded
        // (it then holds one of `max_connections`).
        let http_slots = Arc::new(Semaphore::new(ctx.config.max_http_connections.get()));
        tokio::pin!(shutdown);
        loop {
            let slot = match http_slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    ctx.metrics.refused(crate::metrics::Refusal::HttpConnections);
                    tokio::select! {
                        () = &mut shutdown => break,
                        p = http_slots.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => break,
                        },
                    }
                }
            };
            let (stream, _) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(app.clone());
            let http = http.clone();
            let mut closing = ctx.closing.clone();
            let handshake = Duration::from_millis(ctx.config.handshake_timeout_ms.get());
            tokio::spawn(async move {
                let _slot = slot;
                // hyper's header timeout starts with the first byte; a client that connects and
                // sends nothing is dropped here.
                let mut probe = [0u8; 1];
                if !matches!(tokio::time::timeout(handshake, stream.peek(&mut probe)).await, Ok(Ok(n)) if n > 0) {
                    return;
                }
                let conn = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = closed(&mut closing) => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
        drop(listener);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(ctx.config.shutdown_deadline_ms.get());
        tracing::info!("shutting down: no new connections, draining sessions");
        ctx.ready.store(false, Ordering::SeqCst);
        closing_tx.send_replace(true);
        ctx.tracker.close();
        let drained = tokio::time::timeout_at(deadline.into(), ctx.tracker.wait()).await.is_ok();
        let stopper = ctx.clone();
        let flushed = tokio::time::timeout_at(
            deadline.into(),
            tokio::task::spawn_blocking(move || {
                stopper.workers.stop();
                stopper.shards.stop();
                journal.close();
            }),
        )
        .await
        .is_ok();
        let report = ShutdownReport { drained, flushed, elapsed: started.elapsed() };
        if report.in_time() {
            tracing::info!(elapsed_ms = report.elapsed.as_millis() as u64, "shutdown complete");
        } else {
            tracing::warn!(
                drained,
                flushed,
                elapsed_ms = report.elapsed.as_millis() as u64,
                "shutdown deadline passed"
            );
        }
        report
    }
}

fn router(ctx: Arc<Ctx>) -> Router {
    let guard = middleware::from_fn_with_state(ctx.clone(), guard::middleware);
    Router::new()
        .route("/v1/ingest", get(ws::ingest))
        .route("/v1/streams/{stream}/questions", get(host::list))
        .route("/v1/streams/{stream}/questions/{qid}/{action}", post(host::act))
        .route("/v1/streams/{stream}/product", post(host::set_product).put(host::set_product))
        .route("/v1/streams/{stream}/catalog", get(host::get_catalog).put(host::put_catalog))
        .route("/v1/streams/{stream}/host", get(host::host_ws))
        .route("/v1/streams/{stream}/faq", get(faq::faq))
        .route("/v1/streams", get(faq::overview))
        .route("/faq", get(faq::faq_page))
        .route("/overview", get(faq::overview_page))
        .route("/", get(host::screen))
        .route("/moderator", get(web::moderator_console))
        .route("/v1/streams/{stream}/summary", get(moderator::summary))
        .route("/v1/streams/{stream}/held", get(moderator::held))
        .route("/v1/streams/{stream}/held/{id}/{decision}", post(moderator::decide))
        .route("/v1/streams/{stream}/settings", get(moderator::settings).put(moderator::put_settings))
        .route("/v1/moderator/streams", get(moderator::streams))
        .route("/v1/moderator/explain", post(moderator::explain))
        .route("/v1/moderator/dictionaries", get(moderator::dictionaries))
        .route("/v1/moderator/dictionaries/dry-run", post(moderator::dry_run))
        .route("/v1/moderator/dictionaries/apply", post(moderator::apply))
        .route("/v1/moderator/dictionaries/reload", post(moderator::reload))
        .route("/v1/moderator/audit", get(moderator::audit))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), web::localize_errors))
        .layer(guard)
        .with_state(ctx)
}

async fn metrics(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    let m = &ctx.metrics;
    m.depth(Channel::Workers).set(ctx.workers.depth() as i64);
    m.depth(Channel::Shards).set(ctx.shards.depth() as i64);
    m.depth(Channel::Journal).set(ctx.journal.depth() as i64);
    m.resident_bytes.set(crate::metrics::resident_bytes() as i64);
    m.frame_budget_used.set(ctx.frame_budget.used() as i64);
    if !ctx.is_closing() {
        let stats = ctx.shards.stats().await;
        m.streams.set(stats.streams as i64);
        m.open_questions.set(stats.open_questions as i64);
    }
    let mut text = m.render();
    text.push_str(&ctx.adapter_stats.render());
    // ── cluster hook (metrics)
    if let Some(node) = &ctx.cluster {
        text.push_str(&node.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn readyz(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    if ctx.ready.load(Ordering::SeqCst) && !ctx.is_closing() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Resolves once shutdown has started.
pub(crate) async fn closed(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

/// A stream id from a URL: 1–128 characters, no control characters.
pub(crate) fn valid_stream(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control)
}
