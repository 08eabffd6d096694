//! Bearer-token auth for ingest and host endpoints.
//!
//! Tokens come from `Authorization: Bearer …` or, because browsers cannot set headers on a
//! websocket, from `?access_token=…`. Required by default unless the server listens on loopback.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::metrics::{ConnEvent, Metrics};
use crate::server::config::ServerConfig;

/// Which token list an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ingest,
    Host,
}

/// Compares without an early exit on the first differing byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    let tokens = match scope {
        Scope::Ingest => &config.ingest_tokens,
        Scope::Host => &config.host_tokens,
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| query.get("access_token").map(String::as_str));
    match given {
        Some(t) if tokens.iter().any(|k| same(k, t)) => Ok(()),
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
    fn loopback_needs_no_token_in_auto_mode() {
        let c = config(crate::server::config::AuthMode::Auto);
        assert!(check(&c, &Metrics::new(), Scope::Ingest, &HeaderMap::new(), &HashMap::new()).is_ok());
    }
}
