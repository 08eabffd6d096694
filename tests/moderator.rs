//! The moderator endpoints of `kotae serve` on 127.0.0.1:0, without a browser: dictionary edits
//! (validated, dry-run, applied to the running pipeline, audited), per-stream settings, held
//! messages and the host screen's summary. The pages themselves are driven in Chromium by
//! `tests/e2e`.

mod common;

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kotae::commands::client::{Ws, connect, http};
use kotae::config::Config;
use kotae::pipeline::Engine;
use kotae::server::{Server, ShutdownReport};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::copy_dir;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A server with its own copy of the dictionaries (edits write files) and journal.
struct TestServer {
    addr: String,
    dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

impl TestServer {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&root().join("dictionaries/ja"), &dir.path().join("dict"));
        let mut config = Config::default();
        config.pipeline.dictionaries = Some(dir.path().join("dict"));
        config.pipeline.tokenize.cache_dir = root().join(".kotae");
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.reload_dictionaries = false;
        config.server.workers = 2;
        config.server.journal.path = dir.path().join("journal.db");
        let engine = Engine::new(config.pipeline.clone()).expect("engine");
        let server = Server::bind(&config, engine).await.expect("bind");
        let addr = server.local_addr().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Self { addr, dir, stop, task }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(&self.addr, method, path, None, body.as_deref()).await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn ws(&self, stream: &str) -> Ws {
        connect(&format!("ws://{}/v1/ingest?stream={stream}", self.addr), None).await.expect("connect")
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Sends messages as one frame and returns their verdicts.
async fn verdicts(ws: &mut Ws, messages: Value) -> Vec<Value> {
    let n = messages.as_array().map_or(1, Vec::len);
    ws.send(Message::Text(messages.to_string().into())).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => out.push(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a verdict, got {other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_edit_is_validated_dry_run_applied_and_audited() {
    let server = TestServer::start().await;
    let mut ws = server.ws("s1").await;
    let text = "へなちょこ配信";
    let v = verdicts(&mut ws, json!([{"id": "a", "user": "u1", "text": text}])).await;
    assert_eq!(v[0]["action"], "allow");

    let edit = json!({"op": "add", "list": "abuse", "section": "insult", "term": "へなちょこ", "stream": "s1"});
    let (status, dry) = server.call("POST", "/v1/moderator/dictionaries/dry-run", Some(edit.clone())).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["changed"][0]["text"], text, "{dry}");
    assert_eq!(dry["changed"][0]["before"]["action"], "allow");
    let v = verdicts(&mut ws, json!([{"id": "b", "user": "u2", "text": text}])).await;
    assert_eq!(v[0]["action"], "allow", "a dry run changes nothing");

    let (status, applied) = server.call("POST", "/v1/moderator/dictionaries/apply", Some(edit)).await;
    assert_eq!(status, 200, "{applied}");
    let v = verdicts(&mut ws, json!([{"id": "c", "user": "u3", "text": text}])).await;
    assert!(v[0]["labels"].as_array().unwrap().contains(&json!("abuse")), "{}", v[0]);
    let file = std::fs::read_to_string(server.dir.path().join("dict/abuse.txt")).unwrap();
    assert!(file.lines().any(|l| l == "へなちょこ"));

    // Broken edits are refused with their place and change nothing.
    for (edit, expect) in [
        (json!({"op": "add", "list": "abuse", "section": "insult", "term": "・・・"}), "normalizes to nothing"),
        (json!({"op": "add", "list": "abuse", "section": "insult", "term": "ﾍﾅﾁｮｺ"}), "duplicate of abuse.txt:"),
        (json!({"op": "add", "list": "abuse", "section": "insult", "term": "a#b"}), "cannot contain"),
        (json!({"op": "add", "list": "abuse", "section": "insult", "term": "x", "flags": ["loud"]}), "unknown flag"),
    ] {
        let (status, body) = server.call("POST", "/v1/moderator/dictionaries/apply", Some(edit)).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"].as_str().unwrap().contains(expect), "{body}");
    }
    let (status, body) = server
        .call(
            "POST",
            "/v1/moderator/dictionaries/apply",
            Some(json!({"op": "add", "list": "../x", "section": "a", "term": "b"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(std::fs::read_to_string(server.dir.path().join("dict/abuse.txt")).unwrap(), file);

    let (_, audit) = server.call("GET", "/v1/moderator/audit", None).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1, "only the applied edit: {audit}");
    assert_eq!(audit["entries"][0]["action"], "dictionary.add");
    let log = std::fs::read_to_string(server.dir.path().join("journal.audit.jsonl")).unwrap();
    assert!(log.contains("へなちょこ"), "{log}");

    let remove = json!({"op": "remove", "list": "abuse", "section": "insult", "term": "ヘナチョコ"});
    let (status, body) = server.call("POST", "/v1/moderator/dictionaries/apply", Some(remove)).await;
    assert_eq!(status, 200, "removing matches the normalized term: {body}");
    let v = verdicts(&mut ws, json!([{"id": "d", "user": "u4", "text": text}])).await;
    assert_eq!(v[0]["action"], "allow");
    server.shutdown().await;
}

/// The console reads the lists as the loader does: a section flagged `| weak` or `| shop` is
/// listed with its flags, and edits to it apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sections_with_flags_are_listed_with_them_and_editable() {
    let server = TestServer::start().await;
    let (status, lists) = server.call("GET", "/v1/moderator/dictionaries", None).await;
    assert_eq!(status, 200, "{lists}");
    let section = |list: &str, name: &str| -> Value {
        let l = lists["lists"].as_array().unwrap().iter().find(|l| l["list"] == list).unwrap();
        l["sections"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(section("synonyms", "price")["flags"], json!(["weak"]), "{}", section("synonyms", "price"));
    assert_eq!(section("synonyms", "payment")["flags"], json!(["weak", "shop"]));
    assert_eq!(section("abuse", "insult")["flags"], json!([]));

    for (list, name) in [("synonyms", "price"), ("synonyms", "payment")] {
        let edit = json!({"op": "add", "list": list, "section": name, "term": "ぷらいすてすと"});
        let (status, body) = server.call("POST", "/v1/moderator/dictionaries/apply", Some(edit)).await;
        assert_eq!(status, 200, "[{name}] in {list}.txt: {body}");
        let file = std::fs::read_to_string(server.dir.path().join(format!("dict/{list}.txt"))).unwrap();
        assert!(file.lines().any(|l| l == "ぷらいすてすと"), "{list}.txt");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_settings_hold_slow_mode_and_held_decisions() {
    let server = TestServer::start().await;
    let mut ws = server.ws("s2").await;
    let settings = json!({"block_at": 1.0, "slow_mode_seconds": 30});
    let (status, body) = server.call("PUT", "/v1/streams/s2/settings", Some(settings)).await;
    assert_eq!(status, 200, "{body}");
    let v = verdicts(
        &mut ws,
        json!([
            {"id": "m1", "user": "a", "ts": 1_000, "text": "死ね"},
            {"id": "m2", "user": "b", "ts": 2_000, "text": "こんにちは"},
            {"id": "m3", "user": "b", "ts": 10_000, "text": "かわいい"},
            {"id": "m4", "user": "b", "ts": 40_000, "text": "ポチった！"},
        ]),
    )
    .await;
    let actions: Vec<&str> = v.iter().map(|v| v["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["hold", "allow", "block", "allow"], "{v:?}");

    let (_, held) = server.call("GET", "/v1/streams/s2/held", None).await;
    assert_eq!(held["held"][0]["id"], "m1");
    assert!(held["held"][0]["why"].as_str().unwrap().starts_with("abuse"), "{held}");
    let (status, _) = server.call("POST", "/v1/streams/s2/held/m1/approve", None).await;
    assert_eq!(status, 200);
    let (status, _) = server.call("POST", "/v1/streams/s2/held/nope/deny", None).await;
    assert_eq!(status, 404);
    let (_, held) = server.call("GET", "/v1/streams/s2/held", None).await;
    assert_eq!(held["held"].as_array().unwrap().len(), 0);

    let (_, summary) = server.call("GET", "/v1/streams/s2/summary", None).await;
    assert_eq!(summary["blocked_by"]["slow_mode"], 1, "{summary}");
    assert_eq!(summary["intents"][""], 1, "{summary}");

    let (status, body) = server.call("PUT", "/v1/streams/s2/settings", Some(json!({"hold_at": 2.0}))).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = server.call("PUT", "/v1/streams/s2/settings", Some(json!({"slow": 1}))).await;
    assert_eq!(status, 400, "unknown fields are refused");
    let (_, other) = server.call("GET", "/v1/streams/other/settings", None).await;
    assert_eq!(other["settings"]["block_at"], Value::Null, "settings are per stream");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_are_served_and_name_no_other_host() {
    let server = TestServer::start().await;
    for path in ["/", "/moderator"] {
        let (status, body) = http(&server.addr, "GET", path, None, None).await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("<!doctype html>"));
        for outside in ["http://", "https://", "//cdn", "@import", "fonts.googleapis"] {
            assert!(!body.contains(outside), "{path} refers to {outside}");
        }
    }
    let (status, body) =
        server.call("POST", "/v1/moderator/explain", Some(json!({"text": "敏感肌でも使えますか？"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["labels"], json!(["question"]));
    assert!(body["tokens"].as_array().unwrap().iter().any(|t| t["pos"] == "noun"), "{body}");
    server.shutdown().await;
}
