//! A small client for kotae's own endpoints, used by `replay`, `demo`, `bench-load` and tests:
//! websocket connections with a bearer token, and plain HTTP/1.1 requests without a client
//! library (one request per connection).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client websocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket {url}: {source}")]
    Ws { url: String, source: Box<tokio_tungstenite::tungstenite::Error> },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad url {0}: expected ws://host:port/…")]
    Url(String),
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

/// One HTTP/1.1 request; returns the status and body.
pub async fn http(
    authority: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), ClientError> {
    let mut stream = TcpStream::connect(authority).await?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req += &format!("Authorization: Bearer {t}\r\n");
    }
    let body = body.unwrap_or("");
    req += &format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| ClientError::Protocol("no http header".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Protocol(format!("bad status line: {head}")))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding") && l.contains("chunked")
    });
    Ok((status, if chunked { dechunk(rest) } else { rest.to_string() }))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The value of an unlabelled (or fully labelled) sample in Prometheus text, e.g.
/// `metric(text, "kotae_messages_total{outcome=\"allowed\"}")`.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}
