//! What `kotae serve` answers a request it refuses before the endpoint's own work, endpoint by
//! endpoint: a token of the wrong role (401), a bad stream id (400), a body that is not the JSON
//! asked for (400 naming its shape), a body over `max_body_bytes` (413) — and that the token is
//! checked before any body is read.

use std::path::Path;
use std::sync::Arc;

use kotae::commands::client::http;
use kotae::config::Config;
use kotae::pipeline::Engine;
use kotae::server::config::AuthMode;
use kotae::server::{Server, ShutdownReport};
use serde_json::Value;

const HOST: &str = "host-secret-0123456789";
const MODERATOR: &str = "moderator-secret-0123456789";
const INGEST: &str = "ingest-secret-0123456789";

struct TestServer {
    addr: String,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

impl TestServer {
    async fn start() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.pipeline.dictionaries = Some(root.join("dictionaries/ja"));
        config.pipeline.tokenize.cache_dir = root.join(".kotae");
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.reload_dictionaries = false;
        config.server.workers = 2;
        config.server.journal.path = dir.path().join("journal.db");
        config.server.auth = AuthMode::Always;
        config.server.public_faq = false;
        config.server.ingest_tokens = vec![INGEST.into()];
        config.server.host_tokens = vec![HOST.into()];
        config.server.moderator_tokens = vec![MODERATOR.into()];
        config.server.max_body_bytes = 256.try_into().unwrap();
        config.validate().expect("valid test config");
        let engine: Arc<Engine> = Engine::new(config.pipeline.clone()).expect("engine");
        let server = Server::bind(&config, engine).await.expect("bind");
        let addr = server.local_addr().to_string();
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Self { addr, _dir: dir, stop, task }
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let (status, text) = http(&self.addr, method, path, token, Some(body)).await.unwrap();
        let error = serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"].as_str().map(String::from));
        (status, error.unwrap_or(text))
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

const UNAUTHORIZED: &str = "missing or invalid bearer token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_opens_only_its_own_endpoints() {
    let server = TestServer::start().await;
    let host_only = [
        ("GET", "/v1/streams/s/questions"),
        ("GET", "/v1/streams/s/catalog"),
        ("GET", "/v1/streams/s/faq"),
        ("GET", "/v1/streams"),
        ("GET", "/v1/streams/s/summary"),
    ];
    let moderator_only = [
        ("GET", "/v1/streams/s/held"),
        ("GET", "/v1/streams/s/settings"),
        ("GET", "/v1/moderator/streams"),
        ("GET", "/v1/moderator/audit"),
        ("GET", "/v1/moderator/dictionaries"),
    ];
    for (method, path) in host_only {
        for token in [None, Some(INGEST), Some(MODERATOR)] {
            assert_eq!(server.call(method, path, token, "").await, (401, UNAUTHORIZED.into()), "{path} {token:?}");
        }
        assert_eq!(server.call(method, path, Some(HOST), "").await.0, 200, "{path}");
    }
    for (method, path) in moderator_only {
        for token in [None, Some(INGEST), Some(HOST)] {
            assert_eq!(server.call(method, path, token, "").await, (401, UNAUTHORIZED.into()), "{path} {token:?}");
        }
        assert_eq!(server.call(method, path, Some(MODERATOR), "").await.0, 200, "{path}");
    }
    let by_query = format!("/v1/streams/s/questions?access_token={HOST}");
    assert_eq!(server.call("GET", &by_query, None, "").await.0, 200, "the token may come in the query");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_ids_are_refused_after_the_token() {
    let server = TestServer::start().await;
    let long = "x".repeat(129);
    for stream in ["a%01b", long.as_str()] {
        for (path, token) in [
            (format!("/v1/streams/{stream}/questions"), HOST),
            (format!("/v1/streams/{stream}/summary"), HOST),
            (format!("/v1/streams/{stream}/held"), MODERATOR),
        ] {
            assert_eq!(server.call("GET", &path, None, "").await.0, 401, "{path}");
            assert_eq!(server.call("GET", &path, Some(token), "").await, (400, "invalid stream id".into()), "{path}");
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_the_json_asked_for_name_its_shape() {
    let server = TestServer::start().await;
    let cases = [
        ("PUT", "/v1/streams/s/product", HOST, "expected {\"product\": \"id\" | null}: "),
        ("POST", "/v1/moderator/explain", MODERATOR, "expected {\"text\": \"…\"}: "),
        (
            "POST",
            "/v1/moderator/dictionaries/dry-run",
            MODERATOR,
            "expected {\"op\", \"list\", \"section\", \"term\"}: ",
        ),
        ("POST", "/v1/moderator/dictionaries/reload", MODERATOR, "expected {\"confirm\": true}: "),
        ("PUT", "/v1/streams/s/settings", MODERATOR, "expected stream settings: "),
    ];
    for (method, path, token, shape) in cases {
        let (status, error) = server.call(method, path, Some(token), "{\"nope\": 1}").await;
        assert_eq!(status, 400, "{path}: {error}");
        assert!(error.starts_with(shape) && error.contains("nope"), "{path}: {error}");
        let (status, error) = server.call(method, path, Some(token), &format!("\"{}\"", "x".repeat(300))).await;
        assert_eq!((status, error.as_str()), (413, "request body is over server.max_body_bytes"), "{path}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_checked_before_the_body_is_read() {
    let server = TestServer::start().await;
    let big = format!("{{\"answer\": \"{}\"}}", "x".repeat(300));
    for (method, path) in [
        ("POST", "/v1/streams/s/questions/q1/answered"),
        ("PUT", "/v1/streams/s/product"),
        ("PUT", "/v1/streams/s/catalog"),
        ("POST", "/v1/moderator/explain"),
        ("POST", "/v1/moderator/dictionaries/apply"),
    ] {
        assert_eq!(server.call(method, path, None, &big).await, (401, UNAUTHORIZED.into()), "{path}");
    }
    server.shutdown().await;
}
