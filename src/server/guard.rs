//! What every request passes before its handler, and what every response carries.
//!
//! - **Host** (DNS rebinding): the `Host` header must be an IP address, `localhost` or a name in
//!   `server.allowed_hosts`. A page on `attacker.example` whose name was re-pointed at 127.0.0.1
//!   sends `Host: attacker.example` and is refused, even though the browser thinks it is
//!   same-origin.
//! - **Origin** (cross-site requests): a request carrying `Origin` must come from the server's
//!   own origin or one in `server.allowed_origins`; `Origin: null` never passes. Browsers send it
//!   on every cross-origin fetch, every form `POST` and every websocket handshake, so pages of
//!   other sites can neither write nor open the websockets. A request without `Origin` but with
//!   `Sec-Fetch-Site: cross-site` or `same-site` (an `<img>` or `<script>` pointing here) passes
//!   only as a `GET` navigation. Platforms and scripts send neither header and are not affected.
//! - **Writes** (`POST`, `PUT`, `PATCH`, `DELETE`) with a form or plain-text content type (the
//!   only ones a cross-site page can send without asking first) get 415.
//! - **Responses** carry `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer` and a `Content-Security-Policy` with
//!   `frame-ancestors 'none'`; the pages' policy allows only their own inline code (by hash) and
//!   connections to this server.
//!
//! - **Bodies** are held to `max_body_bytes` (413) and must arrive within `body_timeout_ms` of
//!   the request's start (408), whichever handler reads them; handlers read them only after
//!   checking the token (the extractors of `extract` read a body last).
//!
//! Refusals are 403 (415 for the content type) with `{"error": …}`, counted in
//! `kotae_refused_total{what="host"|"origin"|"content_type"|"body_too_large"|"body_timeout"}`.

// The checks return the axum `Response` to send as their error; boxing it would only unbox it
// again.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::Ctx;
use super::config::ServerConfig;
use crate::metrics::{Metrics, Refusal};

/// The policy of responses that are not pages: nothing may be loaded or framed.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `scheme://host[:port]` → (scheme, lower-case host, port), the port defaulted by scheme.
pub(crate) fn parse_origin(origin: &str) -> Option<(&str, String, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = split_host_port(rest)?;
    Some((scheme, host.to_ascii_lowercase(), port.unwrap_or(default)))
}

/// `name:port`, `[v6]:port`, `name` → (host without brackets, port).
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((s, None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

/// Whether the `Host` header names this server: an IP address, `localhost`, or an allowed name.
pub(crate) fn host_allowed(config: &ServerConfig, host: &str) -> bool {
    let Some((name, port)) = split_host_port(host) else { return false };
    if name.parse::<IpAddr>().is_ok() || name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    config.allowed_hosts.iter().any(|a| {
        if a == "*" {
            return true;
        }
        match split_host_port(a) {
            Some((an, None)) => an.eq_ignore_ascii_case(name),
            Some((an, Some(ap))) => an.eq_ignore_ascii_case(name) && Some(ap) == port,
            None => false,
        }
    })
}

/// Whether a request with this `Origin` may proceed: the server's own origin (the one its
/// `Host` header names) or an allowed one.
pub(crate) fn origin_allowed(config: &ServerConfig, origin: &str, host: &str) -> bool {
    if config.allowed_origins.iter().any(|a| a == "*") {
        return origin != "null";
    }
    let Some((scheme, o_host, o_port)) = parse_origin(origin) else { return false };
    let same = split_host_port(host).is_some_and(|(h, p)| {
        let default = if scheme == "https" { 443 } else { 80 };
        h.eq_ignore_ascii_case(&o_host) && p.unwrap_or(default) == o_port
    });
    same || config.allowed_origins.iter().filter_map(|a| parse_origin(a)).any(|a| a == (scheme, o_host.clone(), o_port))
}

/// Why a request is refused before its handler, if it is.
pub(crate) fn check(config: &ServerConfig, method: &Method, headers: &HeaderMap) -> Result<(), (Refusal, Response)> {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(host) = text(header::HOST) else {
        return Err((Refusal::Host, refuse(StatusCode::BAD_REQUEST, "a Host header is required")));
    };
    if !host_allowed(config, host) {
        return Err((
            Refusal::Host,
            refuse(StatusCode::FORBIDDEN, "this host name is not served here (see server.allowed_hosts)"),
        ));
    }
    match text(header::ORIGIN) {
        Some(origin) if !origin_allowed(config, origin, host) => {
            return Err((
                Refusal::Origin,
                refuse(StatusCode::FORBIDDEN, "requests from this origin are not allowed (see server.allowed_origins)"),
            ));
        }
        Some(_) => {}
        None => {
            let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
            let navigate = headers.get("sec-fetch-mode").is_some_and(|v| v == "navigate");
            if matches!(site, Some("cross-site" | "same-site")) && !(navigate && method == Method::GET) {
                return Err((Refusal::Origin, refuse(StatusCode::FORBIDDEN, "cross-site requests are not allowed")));
            }
        }
    }
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        let essence = text(header::CONTENT_TYPE)
            .map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        if matches!(essence.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data") {
            return Err((
                Refusal::ContentType,
                refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json"),
            ));
        }
    }
    Ok(())
}

/// The middleware: [`check`], the body bounds, then the handler, then the security headers.
pub(crate) async fn middleware(State(ctx): State<Arc<Ctx>>, req: Request, next: Next) -> Response {
    if let Err((what, response)) = check(&ctx.config, req.method(), req.headers()) {
        ctx.metrics.refused(what);
        return with_headers(response);
    }
    let limit = ctx.config.max_body_bytes.get();
    let timeout = Duration::from_millis(ctx.config.body_timeout_ms.get());
    let metrics = ctx.metrics.clone();
    let req = req.map(|body| {
        axum::body::Body::new(Bounded {
            inner: http_body_util::Limited::new(body, limit),
            deadline: Box::pin(tokio::time::sleep(timeout)),
            metrics,
        })
    });
    with_headers(next.run(req).await)
}

/// A request body that did not arrive within `body_timeout_ms`.
#[derive(Debug)]
pub(crate) struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body not received in time")
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body held to a size and a deadline.
struct Bounded {
    inner: http_body_util::Limited<axum::body::Body>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    metrics: Arc<Metrics>,
}

impl http_body::Body for Bounded {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if let Some(Err(e)) = &frame
                && e.is::<http_body_util::LengthLimitError>()
            {
                self.metrics.refused(Refusal::BodyTooLarge);
            }
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.metrics.refused(Refusal::BodyTimeout);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `T` is anywhere in the error's chain of sources.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<T>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// Reads a request body (after the caller has checked the token): 413 over `max_body_bytes`,
/// 408 when it does not arrive within `body_timeout_ms`.
pub(crate) async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
        if caused_by::<http_body_util::LengthLimitError>(&e) {
            refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body is over server.max_body_bytes")
        } else if caused_by::<BodyTimeout>(&e) {
            refuse(StatusCode::REQUEST_TIMEOUT, "request body not received within server.body_timeout_ms")
        } else {
            refuse(StatusCode::BAD_REQUEST, &format!("cannot read the request body: {e}"))
        }
    })
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP));
    }
    response
}

fn sha256(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The contents of every `<tag>…</tag>` element (tags without attributes, as the pages write them).
fn elements<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The values of every `style="…"` attribute.
fn style_attributes(html: &str) -> Vec<&str> {
    html.split(" style=\"").skip(1).filter_map(|s| s.split_once('"').map(|(v, _)| v)).collect()
}

/// The Content-Security-Policy of a page: its inline scripts and styles by hash, connections
/// (fetch and websockets) to this server only, no framing, no plugins, nothing from elsewhere.
pub(crate) fn page_policy(html: &str) -> String {
    let scripts: Vec<String> = elements(html, "script").into_iter().map(sha256).collect();
    let mut styles: Vec<String> = elements(html, "style").into_iter().map(sha256).collect();
    let attributes: Vec<String> = style_attributes(html).into_iter().map(sha256).collect();
    if !attributes.is_empty() {
        styles.push("'unsafe-hashes'".into());
        styles.extend(attributes);
    }
    let list = |v: &[String]| if v.is_empty() { "'none'".to_string() } else { v.join(" ") };
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self' data:; \
         font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        list(&scripts),
        list(&styles)
    )
}

/// A page embedded in the binary, with its policy (computed once per page).
pub(crate) fn page(html: &'static str) -> Response {
    static POLICIES: OnceLock<Mutex<HashMap<usize, HeaderValue>>> = OnceLock::new();
    let key = html.as_ptr() as usize;
    let policy = {
        let mut cache = POLICIES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                HeaderValue::from_str(&page_policy(html)).unwrap_or_else(|_| HeaderValue::from_static(API_CSP))
            })
            .clone()
    };
    let mut response = Html(html).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(origins: &[&str], hosts: &[&str]) -> ServerConfig {
        ServerConfig {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ..ServerConfig::default()
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn refused(c: &ServerConfig, method: Method, pairs: &[(&'static str, &str)]) -> Option<Refusal> {
        check(c, &method, &headers(pairs)).err().map(|(r, _)| r)
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_or_allowed_names() {
        let c = config(&[], &["kotae.internal", "shop.example:8443"]);
        for ok in ["127.0.0.1:7878", "127.0.0.1", "[::1]:7878", "localhost:7878", "LOCALHOST", "kotae.internal:1"] {
            assert!(host_allowed(&c, ok), "{ok}");
        }
        assert!(host_allowed(&c, "shop.example:8443"));
        for bad in ["attacker.example:7878", "shop.example:7878", "shop.example", "", ":80", "a:b:c", "[::1"] {
            assert!(!host_allowed(&c, bad), "{bad}");
        }
        assert!(host_allowed(&config(&[], &["*"]), "anything.example"));
    }

    #[test]
    fn origins_are_the_servers_own_or_allowed_ones() {
        let c = config(&["https://shop.example"], &[]);
        let h = "127.0.0.1:7878";
        assert!(origin_allowed(&c, "http://127.0.0.1:7878", h));
        assert!(origin_allowed(&c, "https://shop.example", h));
        assert!(origin_allowed(&c, "https://shop.example:443", h));
        assert!(!origin_allowed(&c, "http://shop.example", h), "another scheme is another origin");
        assert!(!origin_allowed(&c, "http://127.0.0.1:7879", h), "another port is another origin");
        assert!(!origin_allowed(&c, "http://attacker.example", h));
        assert!(!origin_allowed(&c, "null", h));
        assert!(origin_allowed(&config(&[], &["kotae.example"]), "https://kotae.example", "kotae.example"));
        assert!(!origin_allowed(&config(&["*"], &[]), "null", h));
        assert!(origin_allowed(&config(&["*"], &[]), "http://any.example", h));
    }

    #[test]
    fn requests_are_refused_by_host_origin_fetch_site_and_form_content_types() {
        let c = config(&[], &[]);
        let host = ("host", "127.0.0.1:7878");
        assert_eq!(refused(&c, Method::GET, &[host]), None, "a platform or script");
        assert_eq!(refused(&c, Method::GET, &[]), Some(Refusal::Host));
        assert_eq!(refused(&c, Method::GET, &[("host", "rebound.example:7878")]), Some(Refusal::Host));
        assert_eq!(refused(&c, Method::POST, &[host, ("origin", "http://evil.example")]), Some(Refusal::Origin));
        assert_eq!(refused(&c, Method::GET, &[host, ("origin", "http://evil.example")]), Some(Refusal::Origin));
        assert_eq!(refused(&c, Method::POST, &[host, ("origin", "http://127.0.0.1:7878")]), None);
        let img = [host, ("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "no-cors")];
        assert_eq!(refused(&c, Method::GET, &img), Some(Refusal::Origin));
        let link = [host, ("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate")];
        assert_eq!(refused(&c, Method::GET, &link), None, "following a link to the host screen");
        assert_eq!(refused(&c, Method::POST, &link), Some(Refusal::Origin));
        for form in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "Text/Plain"]
        {
            assert_eq!(
                refused(&c, Method::POST, &[host, ("content-type", form)]),
                Some(Refusal::ContentType),
                "{form}"
            );
        }
        assert_eq!(refused(&c, Method::PUT, &[host, ("content-type", "application/json")]), None);
        assert_eq!(refused(&c, Method::GET, &[host, ("content-type", "text/plain")]), None, "reads are not writes");
    }

    #[test]
    fn a_page_policy_names_its_inline_code_by_hash_and_forbids_framing() {
        let html = "<style>a{}</style><p style=\"color:red\"><script>go()</script><script>more()</script>";
        let p = page_policy(html);
        assert!(p.contains(&sha256("go()")) && p.contains(&sha256("more()")), "{p}");
        assert!(p.contains(&sha256("a{}")) && p.contains(&sha256("color:red")), "{p}");
        assert!(p.contains("frame-ancestors 'none'") && p.contains("default-src 'none'"), "{p}");
        assert!(!p.contains("'unsafe-inline'"), "{p}");
        for html in [include_str!("../../web/host.html"), include_str!("../../web/moderator.html")] {
            let p = page_policy(html);
            assert!(p.contains("script-src 'sha256-"), "{p}");
            assert!(HeaderValue::from_str(&p).is_ok());
        }
    }
}
