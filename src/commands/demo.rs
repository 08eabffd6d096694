//! `kotae demo`: replays the bundled live stream through the pipeline and prints the host's
//! ranked questions.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::message::InMessage;
use crate::pipeline::Engine;
use crate::queue::Ranked;

/// One product of a stream's schedule.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    /// The product id, as in the catalogue and the journal.
    pub id: String,
    /// The name the shop lists it under; shown beside the questions.
    pub name: String,
    /// Offset from the stream start at which it is shown, in ms.
    pub shown_at_ms: u64,
    /// Words viewers use for it.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// A stream's product schedule (`*.products.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    /// The stream id the schedule belongs to.
    pub stream: String,
    /// The products, each with when it goes on screen.
    pub products: Vec<Product>,
}

/// The bundled demo stream (`fixtures/streams/demo.jsonl`), built in so `kotae demo` runs from
/// any directory.
pub const DEMO_STREAM: &str = include_str!("../../fixtures/streams/demo.jsonl");
/// Its product schedule (`fixtures/streams/demo.products.json`).
pub const DEMO_PRODUCTS: &str = include_str!("../../fixtures/streams/demo.products.json");

impl Schedule {
    /// Reads a schedule from a JSON file; the error names the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parses a schedule; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("{}: {e}", origin.display()))
    }

    /// The product on screen `offset` ms into the stream.
    pub fn on_screen(&self, offset: u64) -> Option<&Product> {
        self.products.iter().filter(|p| p.shown_at_ms <= offset).max_by_key(|p| p.shown_at_ms)
    }

    /// The catalogue the shop sends (`PUT /v1/streams/ID/catalog`).
    pub fn catalog(&self) -> crate::catalog::CatalogSpec {
        crate::catalog::CatalogSpec {
            products: self
                .products
                .iter()
                .map(|p| crate::catalog::ProductSpec {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    keywords: p.keywords.clone(),
                })
                .collect(),
        }
    }
}

/// Formats the top questions for a terminal.
pub fn format_top(ranked: &[Ranked], schedule: &Schedule, n: usize) -> String {
    let mut s = String::new();
    for (i, r) in ranked.iter().take(n).enumerate() {
        let product = r
            .question
            .product
            .as_deref()
            .and_then(|id| schedule.products.iter().find(|p| p.id == id))
            .map_or("", |p| p.name.as_str());
        s += &format!(
            "{:>2}. [{:>5.1}] {}  — {}\n",
            i + 1,
            r.score,
            r.question.wordings.first().map_or("", |w| &*w.text),
            r.why
        );
        if !product.is_empty() {
            s += &format!("      product: {product}\n");
        }
        for w in r.question.wordings.iter().skip(1).take(3) {
            s += &format!("      also: {}\n", w.text);
        }
    }
    s
}

/// Options of the live demo (`kotae demo`).
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The stream to replay (JSON Lines); `None`: the built-in demo stream.
    pub stream: Option<std::path::PathBuf>,
    /// Its product schedule; `None`: the built-in demo's.
    pub products: Option<std::path::PathBuf>,
    /// How many questions to print at the end.
    pub top: usize,
    /// Messages per second; ignored when `speed` is set.
    pub rate: f64,
    /// Follow the recorded timestamps this many times faster than real time.
    pub speed: Option<f64>,
    /// Shut the server down once the replay is done (CI, tests).
    pub exit_after_replay: bool,
}

/// Live demo failures.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The stream or schedule file cannot be read (the message names the file, and the line for a
    /// stream).
    #[error("{0}")]
    Input(String),
    /// The server could not start or failed while serving.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    /// The replay's websocket connection failed.
    #[error(transparent)]
    Client(#[from] super::client::ClientError),
}

/// Splits a stream at the moments products go on screen: segment 0 is before the first
/// product, segment k+1 is while product k is on screen.
pub fn segments<'a>(messages: &'a [InMessage], schedule: &Schedule) -> Vec<&'a [InMessage]> {
    let start = messages.first().and_then(|m| m.ts).unwrap_or(0);
    let mut shown: Vec<u64> = schedule.products.iter().map(|p| p.shown_at_ms).collect();
    shown.sort_unstable();
    let mut cuts = vec![0];
    for at in shown {
        let i = messages.partition_point(|m| m.ts.unwrap_or(start).saturating_sub(start) < at);
        cuts.push(i.max(*cuts.last().unwrap_or(&0)));
    }
    cuts.push(messages.len());
    cuts.windows(2).map(|w| &messages[w[0]..w[1]]).collect()
}

/// Starts a real server on loopback, replays the stream over a websocket while setting the
/// product on screen through the API, prints the live top questions and keeps serving (or
/// stops, with `exit_after_replay`). `shutdown` ends the serving.
pub async fn live(
    mut config: crate::config::Config,
    engine: Arc<Engine>,
    opts: &LiveOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    use super::client::{http, metric};
    use super::replay::{Pace, replay_segments};

    let schedule = match &opts.products {
        Some(path) => Schedule::load(path),
        None => Schedule::parse(DEMO_PRODUCTS, Path::new("demo.products.json")),
    }
    .map_err(DemoError::Input)?;
    let messages = match &opts.stream {
        Some(path) => super::replay::read_stream(path),
        None => super::replay::parse_stream(DEMO_STREAM, Path::new("demo.jsonl")),
    }
    .map_err(DemoError::Input)?;
    if config.server.journal.enabled() && config.server.journal.path == std::path::Path::new("kotae.db") {
        // The demo starts from an empty journal of its own.
        let path = config.pipeline.tokenize.cache_dir.join("demo.db");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
        config.server.journal.path = path;
    }
    let server = crate::server::Server::bind(&config, engine).await?;
    let addr = server.local_addr();
    let authority = addr.to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        tokio::select! {
            () = shutdown => {}
            _ = stop_rx => {}
        }
    }));
    println!("kotae serve listening on http://{addr} (host screen: http://{addr}/)");
    let stream_id = schedule.stream.clone();
    let url = format!("ws://{addr}/v1/ingest?stream={stream_id}");
    let pace = match opts.speed {
        Some(speed) => Pace::Timestamps { speed },
        None => Pace::Rate(opts.rate),
    };
    let catalog = serde_json::to_string(&schedule.catalog()).unwrap_or_default();
    match http(&authority, "PUT", &format!("/v1/streams/{stream_id}/catalog"), None, Some(&catalog)).await {
        Ok((200, _)) => {}
        Ok((status, body)) => eprintln!("kotae: the catalogue was refused ({status}): {body}"),
        Err(e) => eprintln!("kotae: sending the catalogue failed: {e}"),
    }
    let segs = segments(&messages, &schedule);
    let mut products = schedule.products.clone();
    products.sort_by_key(|p| p.shown_at_ms);
    let started = std::time::Instant::now();
    let report = replay_segments(&url, None, &segs, pace, 200, |i| {
        let authority = authority.clone();
        let stream_id = stream_id.clone();
        let product = i.checked_sub(1).and_then(|k| products.get(k)).cloned();
        let schedule = schedule.clone();
        async move {
            if i > 0 {
                print_top(&authority, &stream_id, &schedule, 3, "live top questions").await;
            }
            if let Some(p) = product {
                println!("\n▶ now on screen: {} ({})", p.name, p.id);
                let body = serde_json::json!({ "product": p.id }).to_string();
                if let Err(e) =
                    http(&authority, "PUT", &format!("/v1/streams/{stream_id}/product"), None, Some(&body)).await
                {
                    eprintln!("kotae: setting the product failed: {e}");
                }
            }
        }
    })
    .await?;
    println!(
        "\nreplayed {} messages of stream '{}' over a websocket in {:.1?}: {} verdicts, {} errors",
        report.sent,
        stream_id,
        started.elapsed(),
        report.verdicts,
        report.errors
    );
    println!("actions: {:?}", report.by_action);
    println!("labels:  {:?}", report.by_label);
    print_top(&authority, &stream_id, &schedule, opts.top, "top questions at the end of the stream").await;
    if let Ok((_, text)) = http(&authority, "GET", "/metrics", None, None).await {
        let received = metric(&text, "kotae_messages_received_total").unwrap_or(0.0);
        let outcomes: f64 = ["allowed", "held", "blocked", "rejected"]
            .iter()
            .filter_map(|o| metric(&text, &format!("kotae_messages_total{{outcome=\"{o}\"}}")))
            .sum();
        println!("\nmetrics: {received} received, {outcomes} with an outcome (http://{addr}/metrics)");
    }
    println!("\nFAQ for late joiners: http://{addr}/faq?stream={stream_id} · all streams: http://{addr}/overview");
    if config.server.journal.enabled() {
        println!(
            "after the stream: kotae report --journal {} --stream {stream_id} --format html --out report.html",
            config.server.journal.path.display()
        );
    }
    if opts.exit_after_replay {
        let _ = stop_tx.send(());
    } else {
        println!("\nstill serving: host screen at http://{addr}/ — Ctrl-C to stop");
    }
    let _ = serving.await;
    Ok(())
}

async fn print_top(authority: &str, stream: &str, schedule: &Schedule, n: usize, title: &str) {
    let path = format!("/v1/streams/{stream}/questions");
    let Ok((200, body)) = super::client::http(authority, "GET", &path, None, None).await else {
        eprintln!("kotae: could not list questions");
        return;
    };
    #[derive(Deserialize)]
    struct List {
        questions: Vec<Ranked>,
        #[serde(default)]
        answered_again: Vec<serde_json::Value>,
    }
    match serde_json::from_str::<List>(&body) {
        Ok(list) => {
            println!("\n{title} ({} open):", list.questions.len());
            print!("{}", format_top(&list.questions, schedule, n));
            for a in list.answered_again.iter().take(3) {
                println!("    ✓ {}", a["why"].as_str().unwrap_or(""));
            }
        }
        Err(e) => eprintln!("kotae: bad question list: {e}"),
    }
}
