//! `kotae serve` over real websockets on 127.0.0.1:0: the ingest contract, limits, auth,
//! backpressure, the latency budget, outcome accounting and the host queue.

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kotae::commands::client::{Ws, connect, http, metric};
use kotae::config::Config;
use kotae::pipeline::Engine;
use kotae::server::config::{AuthMode, FailPolicy};
use kotae::server::{Server, ShutdownReport};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::copy_dir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(base_config().pipeline).expect("engine")).clone()
}

fn base_config() -> Config {
    let mut c = Config::default();
    c.pipeline.dictionaries = Some(root().join("dictionaries/ja"));
    c.pipeline.tokenize.cache_dir = root().join(".kotae");
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.server.reload_dictionaries = false;
    c.server.workers = 2;
    c
}

struct TestServer {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<ShutdownReport>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(engine(), tune).await
    }

    async fn start_with(engine: Arc<Engine>, tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = base_config();
        config.server.journal.path = dir.path().join("journal.db");
        tune(&mut config);
        config.validate().expect("valid test config");
        let server = Server::bind(&config, engine).await.expect("bind");
        let addr = server.local_addr().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Self { addr, stop: Some(stop), task, _dir: dir }
    }

    fn ingest(&self, stream: &str) -> String {
        format!("ws://{}/v1/ingest?stream={stream}", self.addr)
    }

    async fn ws(&self, stream: &str) -> Ws {
        connect(&self.ingest(stream), None).await.expect("connect")
    }

    async fn metrics(&self) -> String {
        http(&self.addr, "GET", "/metrics", None, None).await.unwrap().1
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = http(&self.addr, "GET", path, None, None).await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Option<&str>) -> (u16, Value) {
        let (status, body) = http(&self.addr, "POST", path, None, body).await.unwrap();
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Waits until every received message has its outcome, then checks the sum.
    async fn assert_outcomes_add_up(&self) -> String {
        let started = Instant::now();
        loop {
            let text = self.metrics().await;
            let received = metric(&text, "kotae_messages_received_total").unwrap_or(-1.0);
            let total: f64 = ["allowed", "held", "blocked", "rejected"]
                .iter()
                .map(|o| metric(&text, &format!("kotae_messages_total{{outcome=\"{o}\"}}")).unwrap_or(0.0))
                .sum();
            if received == total {
                return text;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "received {received} but {total} outcomes:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn shutdown(mut self) -> ShutdownReport {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap()
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: &Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

fn m(name: &str, key: &str) -> String {
    format!("{name}{{{key}}}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_come_back_in_order_one_per_message_even_when_pipelined() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("order").await;
    let texts = ["これって敏感肌でも使えますか", "ポチった！", "LINE交換しよ ID:abc123", "こんばんは〜"];
    for i in 0..200 {
        send(&mut ws, &json!({"id": format!("m{i}"), "user": format!("u{i}"), "text": texts[i % 4]})).await;
    }
    for i in 0..200 {
        let v = recv(&mut ws).await;
        assert_eq!(v["id"], format!("m{i}"), "frame {i}: {v}");
        match i {
            0 => {
                assert_eq!(v["labels"], json!(["question"]));
                assert_eq!(v["action"], "allow");
                assert!(v["cluster"].as_str().unwrap().starts_with('q'), "{v}");
                for k in ["question", "purchase_intent", "spam", "abuse"] {
                    assert!(v["scores"][k].is_number());
                }
            }
            1 => assert_eq!(v["labels"], json!(["purchase_intent"])),
            2 => assert_eq!(v["action"], "block"),
            3 => assert_eq!(v["labels"], json!(["other"])),
            _ => {}
        }
    }
    server.assert_outcomes_add_up().await;
    assert!(server.shutdown().await.in_time());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_frame_gets_one_verdict_per_message_in_order() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("batch").await;
    let batch: Vec<Value> = (0..50)
        .map(|i| {
            if i % 10 == 3 {
                json!({"text": "サイズ感どうですか"})
            } else {
                json!({"id": i, "text": "かわいい"})
            }
        })
        .collect();
    send(&mut ws, &Value::Array(batch)).await;
    for i in 0..50u64 {
        let v = recv(&mut ws).await;
        // Messages without an id are numbered by their position on the connection (1-based).
        let expected = if i % 10 == 3 { (i + 1).to_string() } else { i.to_string() };
        assert_eq!(v["id"], expected.as_str(), "{v}");
        assert!(v.get("action").is_some(), "{v}");
    }
    server.assert_outcomes_add_up().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_gets_an_error_and_the_connection_stays_open() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("bad").await;
    ws.send(Message::Text("{not json".into())).await.unwrap();
    let e = recv(&mut ws).await;
    assert!(e["error"].as_str().unwrap().contains("invalid json"), "{e}");
    send(&mut ws, &json!([{"id": "a", "text": "ok"}, {"id": "b"}, 5, {"id": "c", "text": "   "}])).await;
    assert_eq!(recv(&mut ws).await["id"], "a");
    let e = recv(&mut ws).await;
    assert_eq!(e["id"], "b");
    assert!(e["error"].as_str().unwrap().contains("text"), "{e}");
    assert!(recv(&mut ws).await["error"].is_string());
    let e = recv(&mut ws).await;
    assert_eq!((e["id"].as_str(), e["error"].as_str()), (Some("c"), Some("message text is empty")));
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert!(recv(&mut ws).await["error"].as_str().unwrap().contains("binary"));
    send(&mut ws, &json!({"id": "after", "text": "在庫ありますか"})).await;
    assert_eq!(recv(&mut ws).await["id"], "after");
    let text = server.assert_outcomes_add_up().await;
    assert_eq!(metric(&text, &m("kotae_rejected_total", "reason=\"malformed\"")), Some(4.0));
    assert_eq!(metric(&text, &m("kotae_rejected_total", "reason=\"empty\"")), Some(1.0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_frames_and_messages_get_errors_and_the_connection_stays_open() {
    let server = TestServer::start(|c| {
        c.server.max_frame_bytes = 2048.try_into().unwrap();
        c.server.max_batch = 3.try_into().unwrap();
        c.server.rate_burst = 3.try_into().unwrap();
        c.pipeline.max_message_bytes = 100;
    })
    .await;
    let mut ws = server.ws("big").await;
    send(&mut ws, &json!({"id": "huge", "text": "あ".repeat(1000)})).await;
    let e = recv(&mut ws).await;
    assert!(e["error"].as_str().unwrap().contains("over the limit of 2048"), "{e}");
    send(&mut ws, &json!({"id": "long", "text": "あ".repeat(50)})).await;
    let e = recv(&mut ws).await;
    assert_eq!(e["id"], "long");
    assert!(e["error"].as_str().unwrap().contains("over the limit of 100"), "{e}");
    send(&mut ws, &json!([{"text": "a"}, {"text": "b"}, {"text": "c"}, {"text": "d"}])).await;
    assert!(recv(&mut ws).await["error"].as_str().unwrap().contains("batch of 4"));
    send(&mut ws, &json!({"id": "fine", "text": "送料いくらですか"})).await;
    assert_eq!(recv(&mut ws).await["id"], "fine");
    let text = server.assert_outcomes_add_up().await;
    assert_eq!(metric(&text, &m("kotae_rejected_total", "reason=\"too_large\"")), Some(3.0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_rate_per_connection_is_limited_with_errors() {
    let server = TestServer::start(|c| {
        c.server.max_messages_per_second = 1.try_into().unwrap();
        c.server.max_batch = 5.try_into().unwrap();
        c.server.rate_burst = 5.try_into().unwrap();
    })
    .await;
    let mut ws = server.ws("rate").await;
    let batch: Vec<Value> = (0..5).map(|i| json!({"id": i, "text": "かわいい"})).collect();
    send(&mut ws, &Value::Array(batch.clone())).await;
    send(&mut ws, &Value::Array(batch)).await;
    let mut limited = 0;
    for _ in 0..10 {
        if recv(&mut ws).await["error"] == "rate limited" {
            limited += 1;
        }
    }
    assert!(limited >= 4, "{limited}");
    let text = server.assert_outcomes_add_up().await;
    assert_eq!(metric(&text, &m("kotae_rejected_total", "reason=\"rate_limited\"")), Some(limited as f64));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_token_is_refused() {
    let server = TestServer::start(|c| {
        c.server.auth = AuthMode::Always;
        c.server.ingest_tokens = vec!["ingest-secret-0123456789".into()];
        c.server.host_tokens = vec!["host-secret-0123456789".into()];
    })
    .await;
    let url = server.ingest("auth");
    let err = connect(&url, None).await.expect_err("refused without a token").to_string();
    assert!(err.contains("401"), "{err}");
    let err = connect(&url, Some("wrong-token-0123456789")).await.expect_err("refused").to_string();
    assert!(err.contains("401"), "{err}");
    assert!(connect(&url, Some("host-secret-0123456789")).await.is_err(), "a host token is not an ingest token");
    let mut ws = connect(&url, Some("ingest-secret-0123456789")).await.expect("accepted");
    send(&mut ws, &json!({"id": "1", "text": "こんにちは"})).await;
    assert_eq!(recv(&mut ws).await["id"], "1");
    let (status, _) = server.get("/v1/streams/auth/questions").await;
    assert_eq!(status, 401);
    let (status, _) =
        http(&server.addr, "GET", "/v1/streams/auth/questions", Some("host-secret-0123456789"), None).await.unwrap();
    assert_eq!(status, 200);
    let text = server.metrics().await;
    assert_eq!(metric(&text, &m("kotae_connection_events_total", "reason=\"unauthorized\"")), Some(4.0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_and_others_stay_fast() {
    let server = TestServer::start(|c| {
        c.server.send_timeout_ms = 300.try_into().unwrap();
        c.server.max_messages_per_second = 1_000_000.try_into().unwrap();
        c.server.rate_burst = 1_000_000.try_into().unwrap();
    })
    .await;
    // A small receive buffer so the slow client's socket fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr.parse().unwrap()).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(server.ingest("slow"), tcp).await.unwrap();
    let frame: Vec<Value> = (0..1000).map(|i| json!({"id": i, "text": "ワンピースの着丈は何センチですか"})).collect();
    let frame = Value::Array(frame).to_string();
    let writer = tokio::spawn(async move {
        for _ in 0..30 {
            if slow.send(Message::Text(frame.clone().into())).await.is_err() {
                break;
            }
        }
        slow
    });
    let mut fast = server.ws("fast").await;
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let t = Instant::now();
        send(&mut fast, &json!({"id": i, "text": "在庫ありますか"})).await;
        assert_eq!(recv(&mut fast).await["id"], i.to_string());
        worst = worst.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(worst < Duration::from_secs(3), "a slow client delayed others by {worst:?}");
    let started = Instant::now();
    loop {
        let text = server.metrics().await;
        if metric(&text, &m("kotae_connection_events_total", "reason=\"slow_client\"")) == Some(1.0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "slow client never closed:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(writer);
    server.assert_outcomes_add_up().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pipeline_applies_backpressure_counts_it_and_drops_nothing() {
    let server = TestServer::start(|c| {
        c.server.workers = 1;
        c.server.worker_queue = 1.try_into().unwrap();
        c.server.shard_queue = 1.try_into().unwrap();
        c.server.budget_ms = 60_000.try_into().unwrap();
    })
    .await;
    let mut clients = Vec::new();
    for c in 0..4 {
        let mut ws = server.ws(&format!("bp{c}")).await;
        clients.push(tokio::spawn(async move {
            for f in 0..25 {
                let frame: Vec<Value> =
                    (0..20).map(|i| json!({"id": format!("{f}-{i}"), "text": "これ何色ありますか"})).collect();
                send(&mut ws, &Value::Array(frame)).await;
            }
            let mut n = 0;
            for f in 0..25 {
                for i in 0..20 {
                    let v = recv(&mut ws).await;
                    assert_eq!(v["id"], format!("{f}-{i}"));
                    assert!(v.get("degraded").is_none(), "no budget verdicts with a 60 s budget: {v}");
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    assert_eq!(total, 2000);
    let text = server.assert_outcomes_add_up().await;
    assert!(metric(&text, &m("kotae_backpressure_total", "channel=\"workers\"")).unwrap() > 0.0, "{text}");
    assert_eq!(metric(&text, "kotae_messages_received_total"), Some(2000.0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_latency_budget_the_fail_closed_verdict_is_given_and_counted() {
    let server = TestServer::start(|c| {
        c.server.workers = 1;
        c.server.worker_queue = 1.try_into().unwrap();
        c.server.budget_ms = 1.try_into().unwrap();
        c.server.on_budget_exceeded = FailPolicy::Closed;
    })
    .await;
    let mut ws = server.ws("budget").await;
    for f in 0..40 {
        let frame: Vec<Value> = (0..50).map(|i| json!({"id": format!("{f}-{i}"), "text": "送料無料ですか"})).collect();
        send(&mut ws, &Value::Array(frame)).await;
    }
    let mut degraded = 0;
    for _ in 0..2000 {
        let v = recv(&mut ws).await;
        if v.get("degraded").is_some() {
            assert_eq!(v["degraded"], "over_budget");
            assert_eq!(v["action"], "hold");
            degraded += 1;
        }
    }
    assert!(degraded > 0, "a 1 ms budget with one worker must be exceeded");
    let text = server.assert_outcomes_add_up().await;
    assert_eq!(metric(&text, &m("kotae_over_budget_total", "policy=\"closed\"")), Some(degraded as f64));
    let (status, held) = server.get("/v1/streams/budget/held").await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["degraded"]["total"], degraded, "the console's per-stream degraded count: {held}");
    assert!(held["degraded"]["last_at"].as_u64().is_some(), "{held}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_counters_add_up_to_messages_received() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("count").await;
    send(&mut ws, &json!([{"text": "こんばんは"}, {"text": "LINE交換しよ ID:abc123"}, {"text": ""}, {"nope": 1}]))
        .await;
    ws.send(Message::Text("]".into())).await.unwrap();
    send(&mut ws, &json!({"text": "ブス"})).await;
    for _ in 0..6 {
        recv(&mut ws).await;
    }
    let text = server.assert_outcomes_add_up().await;
    assert_eq!(metric(&text, "kotae_messages_received_total"), Some(6.0));
    assert_eq!(metric(&text, &m("kotae_messages_total", "outcome=\"rejected\"")), Some(3.0));
    let blocked_or_held = metric(&text, &m("kotae_messages_total", "outcome=\"blocked\"")).unwrap()
        + metric(&text, &m("kotae_messages_total", "outcome=\"held\"")).unwrap();
    assert_eq!(blocked_or_held, 2.0, "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_queue_ranks_acts_and_shows_answered_questions_asked_again() {
    let server = TestServer::start(|_| {}).await;
    let (status, _) =
        http(&server.addr, "PUT", "/v1/streams/shop/product", None, Some(r#"{"product":"p1"}"#)).await.unwrap();
    assert_eq!(status, 200);
    let mut host = connect(&format!("ws://{}/v1/streams/shop/host", server.addr), None).await.unwrap();
    let snapshot = recv(&mut host).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["current_product"], "p1");
    let mut ws = server.ws("shop").await;
    let t0 = 1_795_316_400_000u64; // 2026-11-22 03:00 UTC, 12:00 in Japan
    let asks = [
        ("a", "敏感肌でも使えますか"),
        ("b", "敏感肌でも大丈夫ですか？"),
        ("c", "肌弱いんですけど使えますか"),
        ("d", "送料いくらですか"),
    ];
    for (i, (user, text)) in asks.iter().enumerate() {
        send(&mut ws, &json!({"id": i, "user": user, "text": text, "ts": t0 + i as u64 * 1000})).await;
        recv(&mut ws).await;
    }
    let update = recv(&mut host).await;
    assert_eq!(update["type"], "update");
    let (_, list) = server.get("/v1/streams/shop/questions").await;
    let questions = list["questions"].as_array().unwrap();
    assert!(questions.len() >= 2, "{list}");
    let top = &questions[0];
    assert!(top["askers"].as_u64().unwrap() >= 2, "the question more viewers asked is first: {list}");
    assert!(top["why"].as_str().unwrap().contains("紹介中"), "the why is Japanese by default: {top}");
    let qid = top["id"].as_str().unwrap().to_string();

    // Answered at 12:03 (stream time), then asked again: not a new item but "12:03に回答済み".
    send(&mut ws, &json!({"id": "t", "text": "こんにちは", "ts": t0 + 180_000})).await;
    recv(&mut ws).await;
    let (status, body) = server.post(&format!("/v1/streams/shop/questions/{qid}/answered"), None).await;
    assert_eq!(status, 200, "{body}");
    send(&mut ws, &json!({"id": "again", "user": "e", "text": "敏感肌でも使えますか？", "ts": t0 + 200_000})).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["cluster"], qid.as_str());
    assert_eq!(v["answered_at"], "12:03", "{v}");
    let (_, list) = server.get("/v1/streams/shop/questions").await;
    assert!(list["questions"].as_array().unwrap().iter().all(|q| q["id"] != qid.as_str()), "{list}");
    let again = &list["answered_again"][0];
    assert_eq!(again["id"], qid.as_str());
    assert!(again["why"].as_str().unwrap().starts_with("12:03に回答済み・また聞かれた×1"), "{again}");

    let other = list["questions"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(server.post(&format!("/v1/streams/shop/questions/{other}/pin"), None).await.0, 200);
    let (_, list) = server.get("/v1/streams/shop/questions").await;
    assert_eq!(list["questions"][0]["state"], "pinned");
    assert_eq!(server.post(&format!("/v1/streams/shop/questions/{other}/dismiss"), None).await.0, 200);
    let (_, list) = server.get("/v1/streams/shop/questions").await;
    assert!(list["questions"].as_array().unwrap().iter().all(|q| q["id"] != other.as_str()));
    assert_eq!(server.post("/v1/streams/shop/questions/q999/answered", None).await.0, 404);
    assert_eq!(server.post(&format!("/v1/streams/shop/questions/{other}/explode"), None).await.0, 404);
    server.shutdown().await;
}

/// Asks `text` as `user` at `ts` and returns the verdict.
async fn ask(ws: &mut Ws, id: &str, user: &str, text: &str, ts: u64) -> Value {
    send(ws, &json!({"id": id, "user": user, "text": text, "ts": ts})).await;
    recv(ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_text_reach_later_verdicts_and_the_faq_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("answers.db");
    let server = TestServer::start(|c| c.server.journal.path = journal.clone()).await;
    let catalog = r#"{"products":[{"id":"p1","name":"リネンシャツワンピース","keywords":["ワンピ","ワンピース"]}]}"#;
    assert_eq!(http(&server.addr, "PUT", "/v1/streams/live/catalog", None, Some(catalog)).await.unwrap().0, 200);
    assert_eq!(
        http(&server.addr, "PUT", "/v1/streams/live/product", None, Some(r#"{"product":"p1"}"#)).await.unwrap().0,
        200
    );
    let mut ws = server.ws("live").await;
    let t0 = 1_795_316_400_000u64; // 12:00 in Japan
    let length =
        ask(&mut ws, "1", "a", "ワンピの着丈は何センチですか", t0).await["cluster"].as_str().unwrap().to_string();
    let shipping = ask(&mut ws, "2", "b", "送料いくらですか", t0 + 1000).await["cluster"].as_str().unwrap().to_string();
    assert_ne!(length, shipping);

    // Answered with a text at 12:01, then the other one without a text at 12:05.
    ask(&mut ws, "3", "c", "こんにちは", t0 + 60_000).await;
    let (status, body) = server
        .post(&format!("/v1/streams/live/questions/{length}/answered"), Some(r#"{"answer":"着丈は105cmです"}"#))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["question"]["answer"], "着丈は105cmです");
    ask(&mut ws, "4", "c", "こんばんは", t0 + 300_000).await;
    assert_eq!(server.post(&format!("/v1/streams/live/questions/{shipping}/answered"), None).await.0, 200);

    // Asked again: the verdict carries the answer beside the time, for the platform to reply.
    let v = ask(&mut ws, "5", "d", "ワンピの着丈は何センチですか？", t0 + 310_000).await;
    assert_eq!(v["cluster"], length.as_str());
    assert_eq!((v["answered_at"].as_str(), v["answer"].as_str()), (Some("12:01"), Some("着丈は105cmです")), "{v}");
    let v = ask(&mut ws, "6", "e", "送料いくらですか？", t0 + 311_000).await;
    assert_eq!(v["answered_at"], "12:05");
    assert!(v.get("answer").is_none(), "answered without a text: {v}");
    let (_, list) = server.get("/v1/streams/live/questions").await;
    let again = list["answered_again"].as_array().unwrap();
    assert!(again.iter().any(|q| q["answer"] == "着丈は105cmです"), "{list}");

    // The FAQ: newest first, with the product's name, no viewer names.
    let (status, faq) = server.get("/v1/streams/live/faq").await;
    assert_eq!(status, 200);
    let answered = faq["answered"].as_array().unwrap();
    assert_eq!(answered.len(), 2, "{faq}");
    assert_eq!(answered[0]["id"], shipping.as_str(), "newest first: {faq}");
    assert_eq!((answered[0]["answer"].clone(), answered[0]["shop"].clone()), (Value::Null, json!(true)));
    assert_eq!(answered[1]["question"], "ワンピの着丈は何センチですか");
    assert_eq!(answered[1]["answer"], "着丈は105cmです");
    assert_eq!(
        (answered[1]["product"].as_str(), answered[1]["product_name"].as_str()),
        (Some("p1"), Some("リネンシャツワンピース"))
    );
    assert_eq!((answered[1]["answered_at"].as_str(), answered[1]["askers"].as_u64()), (Some("12:01"), Some(2)));
    let first_at = answered[1]["at"].as_u64().unwrap();
    assert!(!faq.to_string().contains("\"user\""), "no viewer names in the FAQ: {faq}");

    // Editable: a new text replaces the old one; the time it was answered stays.
    let (status, _) = server
        .post(
            &format!("/v1/streams/live/questions/{length}/answered"),
            Some(r#"{"answer":"  着丈は105cm（Mサイズ）です "}"#),
        )
        .await;
    assert_eq!(status, 200);
    let (_, faq) = server.get("/v1/streams/live/faq").await;
    let edited = faq["answered"].as_array().unwrap().iter().find(|e| e["id"] == length.as_str()).unwrap().clone();
    assert_eq!(
        (edited["answer"].as_str(), edited["at"].as_u64()),
        (Some("着丈は105cm（Mサイズ）です"), Some(first_at))
    );

    // Bad answers: a clear error (with a Japanese message for the pages), nothing changes.
    let (status, e) =
        server.post(&format!("/v1/streams/live/questions/{length}/answered"), Some(r#"{"answer":5}"#)).await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().starts_with("expected {\"answer\""), "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("回答の形が正しくありません"), "{e}");
    let long = json!({ "answer": "あ".repeat(501) }).to_string();
    let (status, e) = server.post(&format!("/v1/streams/live/questions/{length}/answered"), Some(&long)).await;
    assert_eq!(status, 422);
    assert_eq!(e["message"], "回答は 500 文字までです");
    let (status, _) = server.post(&format!("/v1/streams/live/questions/{length}/pin"), Some(r#"{"answer":"x"}"#)).await;
    assert_eq!(status, 400, "only answered takes a text");
    let (status, e) = server.post("/v1/streams/live/questions/q999/answered", Some(r#"{"answer":"x"}"#)).await;
    assert_eq!((status, e["error"].as_str()), (404, Some("no such question")));

    // The overview of streams names the product on screen.
    let (status, overview) = server.get("/v1/streams").await;
    assert_eq!(status, 200);
    let live = overview["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "live").unwrap().clone();
    assert_eq!(
        (live["answered"].as_u64(), live["current_product_name"].as_str()),
        (Some(2), Some("リネンシャツワンピース"))
    );
    drop(ws);
    server.shutdown().await;

    // Journaled: the texts come back after a restart, and every edit is in the host actions.
    let conn = rusqlite::Connection::open(&journal).unwrap();
    let details: Vec<String> = conn
        .prepare("SELECT detail FROM host_actions WHERE action = 'answered' AND detail IS NOT NULL ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(details, ["着丈は105cmです", "着丈は105cm（Mサイズ）です"]);
    drop(conn);
    let server = TestServer::start(|c| c.server.journal.path = journal.clone()).await;
    let (_, faq) = server.get("/v1/streams/live/faq").await;
    let restored = faq["answered"].as_array().unwrap().iter().find(|e| e["id"] == length.as_str()).unwrap().clone();
    assert_eq!(restored["answer"], "着丈は105cm（Mサイズ）です", "{faq}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_locale_sets_the_language_of_the_why_the_pages_and_error_messages() {
    let ja = TestServer::start(|_| {}).await;
    let en = TestServer::start(|c| c.server.locale = kotae::i18n::Locale::En).await;
    for (server, why, page, message) in [
        (&ja, "×1人", "<html lang=\"ja\">", "その質問は見つかりません（もう消えたかもしれません）"),
        (&en, "×1 asked", "<html lang=\"en\">", "no such question"),
    ] {
        let mut ws = server.ws("s").await;
        ask(&mut ws, "1", "a", "敏感肌でも使えますか", 1_795_316_400_000).await;
        let (_, list) = server.get("/v1/streams/s/questions").await;
        assert!(list["questions"][0]["why"].as_str().unwrap().starts_with(why), "{list}");
        for path in ["/", "/moderator", "/faq?stream=s", "/overview"] {
            let (status, body) = http(&server.addr, "GET", path, None, None).await.unwrap();
            assert_eq!(status, 200);
            assert!(body.contains(page) && !body.contains("{{"), "{path} is filled in: {}", &body[..200]);
        }
        let (_, e) = server.post("/v1/streams/s/questions/q999/answered", None).await;
        assert_eq!((e["error"].as_str(), e["message"].as_str()), (Some("no such question"), Some(message)));
        drop(ws);
    }
    ja.shutdown().await;
    en.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_are_served() {
    let server = TestServer::start(|_| {}).await;
    assert_eq!(http(&server.addr, "GET", "/healthz", None, None).await.unwrap().0, 200);
    assert_eq!(http(&server.addr, "GET", "/readyz", None, None).await.unwrap().0, 200);
    let text = server.metrics().await;
    for name in [
        "kotae_messages_received_total",
        "kotae_stage_seconds_bucket",
        "kotae_queue_depth{channel=\"workers\"}",
        "kotae_connections{endpoint=\"ingest\"}",
        "kotae_journal_lag_records",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let (status, body) = http(&server.addr, "GET", "/", None, None).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("/host"));
    server.shutdown().await;
}

async fn wait_for_reloads(server: &TestServer, result: &str, n: f64) {
    let started = Instant::now();
    let key = m("kotae_dictionary_reloads_total", &format!("result=\"{result}\""));
    while metric(&server.metrics().await, &key) < Some(n) {
        assert!(started.elapsed() < Duration::from_secs(15), "no {result} reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dictionaries_reload_on_change_and_a_broken_edit_keeps_the_old_ones() {
    let dicts = tempfile::tempdir().unwrap();
    copy_dir(&root().join("dictionaries/ja"), dicts.path());
    let mut config = base_config();
    config.pipeline.dictionaries = Some(dicts.path().to_path_buf());
    let engine = Engine::new(config.pipeline.clone()).unwrap();
    let server = TestServer::start_with(engine, |c| {
        c.pipeline.dictionaries = Some(dicts.path().to_path_buf());
        c.server.reload_dictionaries = true;
    })
    .await;
    let mut ws = server.ws("reload").await;
    let probe = json!({"id": "p", "text": "ほげぴよ会に参加しよう"});
    send(&mut ws, &probe).await;
    assert_eq!(recv(&mut ws).await["action"], "allow");

    let spam = dicts.path().join("spam.txt");
    let mut text = std::fs::read_to_string(&spam).unwrap();
    text += "\n[reload_test => spam]\nほげぴよ会\n";
    std::fs::write(&spam, &text).unwrap();
    wait_for_reloads(&server, "ok", 1.0).await;
    send(&mut ws, &probe).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["labels"], json!(["spam"]), "{v}");

    text += "\n[broken section\n";
    std::fs::write(&spam, &text).unwrap();
    wait_for_reloads(&server, "error", 1.0).await;
    send(&mut ws, &probe).await;
    assert_eq!(recv(&mut ws).await["labels"], json!(["spam"]), "the previous dictionaries stay in force");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_handshake_and_idle_timeouts() {
    let server = TestServer::start(|c| {
        c.server.handshake_timeout_ms = 300.try_into().unwrap();
        c.server.idle_timeout_ms = 400.try_into().unwrap();
    })
    .await;
    // A TCP connection that never sends its upgrade request.
    let mut tcp = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut tcp, &mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "closed without a response: {n:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A websocket that sends nothing. Timed from before the handshake: the server's idle timer
    // starts after it, so at least 400 ms pass on this clock however late the handshake returns.
    let started = Instant::now();
    let mut ws = server.ws("idle").await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("closed in time") {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.unwrap().reason.as_str(), "idle timeout");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let text = server.metrics().await;
    assert_eq!(metric(&text, &m("kotae_connection_events_total", "reason=\"idle\"")), Some(1.0));
    server.shutdown().await;
}

/// A platform adapter running inside `kotae serve`: YouTube chat from a fake Data API goes through
/// the pipeline, is counted like ingest traffic, and its counters appear in `/metrics`.
#[tokio::test]
async fn youtube_chat_read_by_an_adapter_goes_through_the_pipeline_and_is_counted() {
    use axum::extract::Query;
    let page = std::fs::read_to_string(root().join("fixtures/platforms/youtube/page1.json")).unwrap();
    let mut page: Value = serde_json::from_str(&page).unwrap();
    let items = page["items"].as_array().unwrap().len();
    page["pollingIntervalMillis"] = 60_000.into();
    page.as_object_mut().unwrap().remove("nextPageToken");
    let body = page.to_string();
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = polls.clone();
    let app = axum::Router::new().route(
        "/youtube/v3/liveChat/messages",
        axum::routing::get(move |_q: Query<std::collections::HashMap<String, String>>| {
            let body = body.clone();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // SAFETY: set once, before any adapter reads it, in this test's own process.
    unsafe { std::env::set_var("KOTAE_TEST_YT_KEY", "AIza-test") };
    let server = TestServer::start(|c| {
        let mut yt = kotae::ingest::adapters::YoutubeConfig::for_chat("chat-1");
        yt.api_url = format!("http://{api}/youtube/v3");
        yt.api_key_env = Some("KOTAE_TEST_YT_KEY".into());
        yt.min_poll_ms = 0;
        c.adapters.streams.push(kotae::ingest::adapters::StreamAdapters {
            stream: "yt-shop".into(),
            twitch: None,
            youtube: Some(yt),
            niconico: None,
        });
    })
    .await;
    let started = Instant::now();
    let text = loop {
        let text = server.metrics().await;
        let received = metric(&text, "kotae_messages_received_total").unwrap_or(0.0);
        if received >= 1.0 {
            break server.assert_outcomes_add_up().await;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no adapter message arrived:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(polls.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let messages = metric(&text, "kotae_adapter_events_total{platform=\"youtube\",event=\"messages\"}").unwrap_or(0.0);
    assert!(messages >= 1.0 && messages <= items as f64, "{text}");
    let (status, questions) = server.get("/v1/streams/yt-shop/questions").await;
    assert_eq!(status, 200);
    assert!(questions.to_string().contains("在庫"), "the fixture's stock question is queued: {questions}");
    assert!(server.shutdown().await.in_time());
}

/// Paid messages keep amount, currency and exponent from the ingest frame to the host's list and
/// its "why" (¥100, US$1.00, 200 bits), and rank by their value in yen through the rate table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_questions_show_their_own_currency_and_rank_by_their_value_in_yen() {
    let server = TestServer::start(|_| {}).await;
    let mut ws = server.ws("paid").await;
    let t0 = 1_795_316_400_000u64;
    let asks = [
        json!({"id": "yen", "user": "a", "text": "Mサイズの着丈は何センチですか", "ts": t0, "paid": 100}),
        json!({"id": "usd", "user": "b", "text": "Lサイズの肩幅は何センチですか", "ts": t0 + 1000,
               "paid": 100, "paid_currency": "USD", "paid_exponent": 2}),
        json!({"id": "bits", "user": "c", "text": "Sサイズの袖丈は何センチですか", "ts": t0 + 2000,
               "paid": 200, "paid_currency": "BITS"}),
    ];
    for a in &asks {
        send(&mut ws, a).await;
        let v = recv(&mut ws).await;
        assert!(v["cluster"].is_string(), "a question: {v}");
    }
    let (_, list) = server.get("/v1/streams/paid/questions").await;
    let questions = list["questions"].as_array().unwrap();
    let by_text = |needle: &str| -> &Value {
        questions
            .iter()
            .find(|q| q["wordings"][0]["text"].as_str().is_some_and(|t| t.starts_with(needle)))
            .unwrap_or_else(|| panic!("no question {needle}: {list}"))
    };
    let (yen, usd, bits) = (by_text("Mサイズ"), by_text("Lサイズ"), by_text("Sサイズ"));
    assert!(yen["why"].as_str().unwrap().contains("投げ銭 ¥100"), "{yen}");
    assert!(usd["why"].as_str().unwrap().contains("投げ銭 US$1.00"), "{usd}");
    assert!(bits["why"].as_str().unwrap().contains("投げ銭 200 bits"), "{bits}");
    assert_eq!(usd["paid_amounts"], json!([{"amount": 100, "currency": "USD", "exponent": 2, "display": "US$1.00"}]));
    let score = |q: &Value| q["score"].as_f64().unwrap();
    assert!(score(usd) > score(yen), "US$1.00 is worth more than ¥100: {list}");
    assert!(score(bits) > score(usd), "200 bits are worth more than US$1.00 at the default rates: {list}");

    // A currency that is not a code, or one kotae cannot scale without an exponent: a clear error.
    send(&mut ws, &json!({"id": "bad1", "text": "いくらですか", "paid": 5, "paid_currency": "us dollars"})).await;
    let e = recv(&mut ws).await;
    assert!(e["error"].as_str().unwrap().contains("paid_currency"), "{e}");
    send(&mut ws, &json!({"id": "bad2", "text": "いくらですか", "paid": 5, "paid_currency": "ABC"})).await;
    let e = recv(&mut ws).await;
    assert!(e["error"].as_str().unwrap().contains("paid_exponent"), "{e}");
    server.assert_outcomes_add_up().await;
    server.shutdown().await;
}

/// A YouTube chat that ends (403 `liveChatEnded`) ends its adapter: the stream's summary, which
/// the host screen polls, says all its adapters have ended, and `/metrics` counts it by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_adapters_have_all_ended_says_so_to_the_host_screen() {
    use axum::extract::Query;
    let page = std::fs::read_to_string(root().join("fixtures/platforms/youtube/page1.json")).unwrap();
    let mut page: Value = serde_json::from_str(&page).unwrap();
    page["pollingIntervalMillis"] = 20.into();
    let page = page.to_string();
    let ended = std::fs::read_to_string(root().join("fixtures/platforms/youtube/error-chat-ended.json")).unwrap();
    let app = axum::Router::new().route(
        "/youtube/v3/liveChat/messages",
        axum::routing::get(move |q: Query<std::collections::HashMap<String, String>>| {
            let (page, ended) = (page.clone(), ended.clone());
            async move {
                use axum::response::IntoResponse;
                let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                if q.contains_key("pageToken") {
                    (axum::http::StatusCode::FORBIDDEN, json, ended).into_response()
                } else {
                    (json, page).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = TestServer::start(|c| {
        let mut yt = kotae::ingest::adapters::YoutubeConfig::for_chat("chat-1");
        yt.api_url = format!("http://{api}/youtube/v3");
        yt.min_poll_ms = 0;
        c.adapters.reconnect_min_ms = 10;
        c.adapters.streams.push(kotae::ingest::adapters::StreamAdapters {
            stream: "yt-ended".into(),
            twitch: None,
            youtube: Some(yt),
            niconico: None,
        });
    })
    .await;
    let started = Instant::now();
    let summary = loop {
        let (status, summary) = server.get("/v1/streams/yt-ended/summary").await;
        assert_eq!(status, 200);
        if summary["adapters"]["all_ended"] == true {
            break summary;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the adapter never ended: {summary}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(summary["adapters"]["ended"][0]["platform"], "youtube", "{summary}");
    assert_eq!(summary["adapters"]["ended"][0]["reason"], "chat_ended", "{summary}");
    let text = server.metrics().await;
    assert_eq!(metric(&text, "kotae_adapter_ended{platform=\"youtube\",reason=\"chat_ended\"}"), Some(1.0), "{text}");
    let (_, other) = server.get("/v1/streams/other/summary").await;
    assert!(other.get("adapters").is_none(), "a stream without adapters says nothing about them: {other}");
    assert!(server.shutdown().await.in_time());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_ties_questions_to_products_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("kept.db");
    let catalog = json!({"products": [
        {"id": "p1", "name": "リネンシャツワンピース", "keywords": ["ワンピ", "ワンピース"]},
        {"id": "p5", "name": "レザー調トートバッグ", "keywords": ["トート"]},
    ]});
    let path = journal.clone();
    let server = TestServer::start(move |c| c.server.journal.path = path).await;
    let put = |server: &TestServer, body: String| {
        let addr = server.addr.clone();
        async move { http(&addr, "PUT", "/v1/streams/live/catalog", None, Some(&body)).await.unwrap() }
    };
    assert_eq!(put(&server, catalog.to_string()).await.0, 200);
    let (status, body) = put(&server, r#"{"products":[{"id":"a","name":""},{"id":"a","name":"b"}]}"#.into()).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("empty name") && body.contains("duplicate id"), "every problem listed: {body}");
    assert_eq!(put(&server, "not json".into()).await.0, 400);
    let mut ws = server.ws("live").await;
    send(&mut ws, &json!({"id": "1", "user": "a", "text": "トートのお値段いくらですか", "ts": 1_000})).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["product"], "p5", "{v}");
    let (_, list) = server.get("/v1/streams/live/questions").await;
    assert_eq!(list["questions"][0]["product_name"], "レザー調トートバッグ", "{list}");
    assert_eq!(list["products"].as_array().unwrap().len(), 2, "{list}");
    assert!(server.shutdown().await.in_time());

    let path = journal.clone();
    let server = TestServer::start(move |c| c.server.journal.path = path).await;
    let (_, kept) = server.get("/v1/streams/live/catalog").await;
    assert_eq!(kept, catalog, "restored from the journal");
    let mut ws = server.ws("live").await;
    send(&mut ws, &json!({"id": "2", "user": "b", "text": "ワンピースの素材は？", "ts": 2_000})).await;
    let v = recv(&mut ws).await;
    assert_eq!(v["product"], "p1", "matched against the restored catalogue: {v}");
    server.shutdown().await;
}
