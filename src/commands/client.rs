//! A small client for kotae's own endpoints, used by `replay`, `demo`, `bench-load` and tests:
//! websocket connections with a bearer token, and HTTP requests (reqwest, with timeouts).

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client websocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The websocket could not be opened or failed.
    #[error("websocket {url}: {source}")]
    Ws {
        /// The address that was opened.
        url: String,
        /// The websocket client's error.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// A socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The URL is not `ws://host:port/…` or `http://…`.
    #[error("bad url {0}: expected ws://host:port/…")]
    Url(String),
    /// The request failed or the answer could not be read.
    #[error("{0}")]
    Protocol(String),
}

/// Opens a websocket, sending `token` as a bearer token.
pub async fn connect(url: &str, token: Option<&str>) -> Result<Ws, ClientError> {
    let err = |source| ClientError::Ws { url: url.to_string(), source: Box::new(source) };
    let mut request = url.into_client_request().map_err(err)?;
    if let Some(t) = token {
        let value = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| ClientError::Url(url.to_string()))?;
        request.headers_mut().insert("authorization", value);
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await.map_err(err)?;
    Ok(ws)
}

/// `host:port` of a `ws://` or `http://` URL.
pub fn authority(url: &str) -> Result<&str, ClientError> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ClientError::Url(url.to_string()))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

/// How long a request may take to connect, and in all.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One HTTP/1.1 request to `http://authority path`; returns the status and body. A client per
/// call: callers run in many short-lived runtimes (tests), and a pooled connection belongs to
/// the runtime that opened it.
pub async fn http(
    authority: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), ClientError> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .http1_only()
        .build()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let url = format!("http://{authority}{path}");
    let mut request = client
        .request(method, &url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.unwrap_or("").to_string());
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let err = |e: reqwest::Error| ClientError::Protocol(format!("{url}: {e}"));
    let response = request.send().await.map_err(err)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(err)?;
    Ok((status, text))
}

/// The value of an unlabelled (or fully labelled) sample in Prometheus text, e.g.
/// `metric(text, "kotae_messages_total{outcome=\"allowed\"}")`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}
