//! Bearer-token auth with three roles: ingest, host and moderator.
//!
//! Tokens come from `Authorization: Bearer …` (the scheme is case-insensitive, RFC 7235) or,
//! because browsers cannot set headers on a websocket, from `?access_token=…`. Required by
//! default unless the server listens on loopback. Each role has its own list and no token opens
//! another role's endpoints. Comparison is constant-time ([`subtle`]) and does not depend on the
//! configured tokens' lengths: every candidate is padded to [`MAX_TOKEN_BYTES`] and every
//! configured token is compared in full.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::{Choice, ConstantTimeEq};

use crate::metrics::{ConnEvent, Metrics};
use crate::server::config::ServerConfig;

/// Longest token accepted, in bytes (configured tokens longer than this are a configuration
/// problem; longer presented tokens are refused without comparing).
pub const MAX_TOKEN_BYTES: usize = 256;

/// Which token list an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/v1/ingest`: the platform's messages.
    Ingest,
    /// The host screen's endpoints: questions, actions, the product on screen, the summary.
    Host,
    /// The moderator console's endpoints: dictionaries, settings, held messages, audit.
    Moderator,
}

impl Scope {
    /// The configuration field listing this role's tokens.
    pub fn field(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest_tokens",
            Scope::Host => "host_tokens",
            Scope::Moderator => "moderator_tokens",
        }
    }
}

/// `token` padded with zeros to [`MAX_TOKEN_BYTES`], and its length.
fn padded(token: &[u8]) -> ([u8; MAX_TOKEN_BYTES], u64) {
    let mut buf = [0u8; MAX_TOKEN_BYTES];
    let n = token.len().min(MAX_TOKEN_BYTES);
    buf[..n].copy_from_slice(&token[..n]);
    (buf, token.len() as u64)
}

/// Whether `given` equals one of `tokens`. Every configured token is compared over the full
/// padded width, so neither the position of the first difference nor any token's length shows
/// in the time taken.
pub fn matches_any(tokens: &[String], given: &str) -> bool {
    if given.len() > MAX_TOKEN_BYTES {
        return false;
    }
    let (g, glen) = padded(given.as_bytes());
    let mut found = Choice::from(0);
    for t in tokens {
        let (k, klen) = padded(t.as_bytes());
        found |= k.ct_eq(&g) & klen.ct_eq(&glen);
    }
    found.into()
}

/// The bearer token of a request: the `Authorization` header (scheme matched without regard to
/// case), else `?access_token=`.
pub fn presented<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim_start();
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .or_else(|| query.get("access_token").map(String::as_str))
}

/// `Ok` when the request may proceed; otherwise the 401 response to send.
pub fn check(
    config: &ServerConfig,
    metrics: &Metrics,
    scope: Scope,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(), Unauthorized> {
    if !config.auth_required() {
        return Ok(());
    }
    match presented(headers, query) {
        Some(t) if matches_any(config.tokens(scope), t) => Ok(()),
        _ => {
            metrics.conn_event(ConnEvent::Unauthorized);
            Err(Unauthorized)
        }
    }
}

/// A request without a valid token; answers 401.
#[derive(Debug, Clone, Copy)]
pub struct Unauthorized;

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(serde_json::json!({"error": "missing or invalid bearer token"})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(auth: crate::server::config::AuthMode) -> ServerConfig {
        ServerConfig {
            auth,
            ingest_tokens: vec!["ingest-token-0123456789".into()],
            host_tokens: vec!["host-token-0123456789".into()],
            moderator_tokens: vec!["moderator-token-0123456789".into()],
            ..ServerConfig::default()
        }
    }

    #[test]
    fn tokens_are_checked_per_scope_from_header_or_query() {
        let c = config(crate::server::config::AuthMode::Always);
        let m = Metrics::new();
        let mut h = HeaderMap::new();
        let none = HashMap::new();
        assert!(check(&c, &m, Scope::Ingest, &h, &none).is_err());
        h.insert(header::AUTHORIZATION, "Bearer ingest-token-0123456789".parse().unwrap());
        assert!(check(&c, &m, Scope::Ingest, &h, &none).is_ok());
        assert!(check(&c, &m, Scope::Host, &h, &none).is_err(), "an ingest token is not a host token");
        let q = HashMap::from([("access_token".to_string(), "host-token-0123456789".to_string())]);
        assert!(check(&c, &m, Scope::Host, &HeaderMap::new(), &q).is_ok());
    }

    #[test]
    fn host_tokens_do_not_open_the_moderator_endpoints() {
        let c = config(crate::server::config::AuthMode::Always);
        let m = Metrics::new();
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
            h
        };
        let none = HashMap::new();
        assert!(check(&c, &m, Scope::Moderator, &bearer("host-token-0123456789"), &none).is_err());
        assert!(check(&c, &m, Scope::Moderator, &bearer("moderator-token-0123456789"), &none).is_ok());
        assert!(check(&c, &m, Scope::Host, &bearer("moderator-token-0123456789"), &none).is_err());
    }

    #[test]
    fn the_bearer_scheme_is_matched_without_regard_to_case() {
        let c = config(crate::server::config::AuthMode::Always);
        let m = Metrics::new();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, format!("{scheme} ingest-token-0123456789").parse().unwrap());
            assert!(check(&c, &m, Scope::Ingest, &h, &HashMap::new()).is_ok(), "{scheme}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Basic ingest-token-0123456789".parse().unwrap());
        assert!(check(&c, &m, Scope::Ingest, &h, &HashMap::new()).is_err(), "another scheme is not a bearer token");
    }

    #[test]
    fn comparison_needs_the_whole_token_and_nothing_more() {
        let tokens = vec!["abcdefghijklmnop".to_string(), "qrstuvwxyz0123456789".to_string()];
        assert!(matches_any(&tokens, "abcdefghijklmnop"));
        assert!(matches_any(&tokens, "qrstuvwxyz0123456789"));
        assert!(!matches_any(&tokens, "abcdefghijklmno"), "a prefix");
        assert!(!matches_any(&tokens, "abcdefghijklmnop\0"), "a zero byte past the end");
        assert!(!matches_any(&tokens, ""));
        assert!(!matches_any(&tokens, &"a".repeat(MAX_TOKEN_BYTES + 1)));
        assert!(!matches_any(&[], "abcdefghijklmnop"));
    }

    #[test]
    fn loopback_needs_no_token_in_auto_mode() {
        let c = config(crate::server::config::AuthMode::Auto);
        assert!(check(&c, &Metrics::new(), Scope::Ingest, &HeaderMap::new(), &HashMap::new()).is_ok());
    }
}
