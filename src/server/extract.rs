//! The prologue the endpoints share, as axum extractors:
//!
//! - [`Caller<R>`]: the request carries a token of role `R` ([`Ingest`], [`Host`], [`Moderator`],
//!   or [`FaqReader`], which is anyone when `server.public_faq`); else 401 (see [`auth`]).
//! - [`StreamId`]: the URL's `{stream}` is a valid stream id; else 400.
//! - [`Open`]: the server is not shutting down; else 503.
//! - [`JsonBody<T>`]: the body, read within `max_body_bytes` and `body_timeout_ms` (413, 408; see
//!   [`guard`](super::guard)), parses as `T`; else 400 `expected SHAPE: why`.
//!
//! axum runs a handler's extractors in the order of its arguments and the body last, so a
//! handler lists them in the order its checks must happen, and no body is read before the token
//! is checked. Rejections are the `{"error": …}` responses the handlers sent themselves before.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::Ctx;
use super::auth::{self, Scope};
use super::config::ServerConfig;

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// Who may call an endpoint: a token list, and whether this server asks for it at all.
pub(crate) trait Role: 'static {
    /// The token list that opens the endpoint.
    const SCOPE: Scope;

    /// Whether the endpoint is open without a token on this server.
    fn public(_config: &ServerConfig) -> bool {
        false
    }
}

/// The platform sending messages (`ingest_tokens`).
pub(crate) enum Ingest {}
/// The host screen (`host_tokens`).
pub(crate) enum Host {}
/// The moderator console (`moderator_tokens`).
pub(crate) enum Moderator {}
/// A reader of the FAQ: anyone when `server.public_faq`, else a host.
pub(crate) enum FaqReader {}

impl Role for Ingest {
    const SCOPE: Scope = Scope::Ingest;
}

impl Role for Host {
    const SCOPE: Scope = Scope::Host;
}

impl Role for Moderator {
    const SCOPE: Scope = Scope::Moderator;
}

impl Role for FaqReader {
    const SCOPE: Scope = Scope::Host;

    fn public(config: &ServerConfig) -> bool {
        config.public_faq
    }
}

/// A request whose bearer token (header or `?access_token=`) opens role `R`'s endpoints.
pub(crate) struct Caller<R: Role>(PhantomData<fn() -> R>);

impl<R: Role> FromRequestParts<Arc<Ctx>> for Caller<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, Response> {
        let Query(query) =
            Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map_err(IntoResponse::into_response)?;
        if !R::public(&ctx.config) {
            auth::check(&ctx.config, &ctx.metrics, R::SCOPE, &parts.headers, &query)
                .map_err(IntoResponse::into_response)?;
        }
        Ok(Caller(PhantomData))
    }
}

/// The server still takes requests: 503 once shutdown has started.
pub(crate) struct Open;

impl FromRequestParts<Arc<Ctx>> for Open {
    type Rejection = Response;

    async fn from_request_parts(_parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, Response> {
        if ctx.is_closing() {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down"));
        }
        Ok(Open)
    }
}

/// The `{stream}` of the URL, a valid stream id ([`valid_stream`](super::valid_stream)).
pub(crate) struct StreamId(pub String);

impl FromRequestParts<Arc<Ctx>> for StreamId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Ctx>) -> Result<Self, Response> {
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, ctx)
            .await
            .map_err(IntoResponse::into_response)?;
        match params.remove("stream") {
            Some(stream) if super::valid_stream(&stream) => Ok(StreamId(stream)),
            _ => Err(error(StatusCode::BAD_REQUEST, "invalid stream id")),
        }
    }
}

/// A JSON request body, and how to tell a client what it should have sent.
pub(crate) trait Shape: DeserializeOwned {
    /// What the body looks like, as the refusal of one that does not parse says.
    const SHAPE: &'static str;

    /// The value of an empty body, when one is allowed.
    fn when_empty() -> Option<Self> {
        None
    }
}

/// A request body parsed as `T` after being read within the server's bounds.
pub(crate) struct JsonBody<T>(pub T);

impl<T: Shape> FromRequest<Arc<Ctx>> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _ctx: &Arc<Ctx>) -> Result<Self, Response> {
        let body = super::guard::read_body(req.into_body()).await?;
        if body.is_empty()
            && let Some(value) = T::when_empty()
        {
            return Ok(JsonBody(value));
        }
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("expected {}: {e}", T::SHAPE)))
    }
}
