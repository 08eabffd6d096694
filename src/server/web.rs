//! The browser pages, embedded in the binary (no CDN, nothing fetched at run time): the host
//! screen `web/host.html` (served by `host::screen`), the moderator console `web/moderator.html`,
//! the FAQ for late joiners `web/faq.html` and the overview of every stream `web/overview.html`.
//!
//! A page's text comes from the message catalogue ([`crate::i18n`]) in `server.locale`: its
//! `{{key}}`s are filled in once per locale, and its script reads the same catalogue as JSON.
//! Error responses get a `message` in the locale beside their English `error`, which the pages
//! show.

use std::sync::{Arc, OnceLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Ctx;
use crate::i18n::{self, Locale};

/// The pages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Page {
    Host,
    Moderator,
    Faq,
    Overview,
}

impl Page {
    fn source(self) -> &'static str {
        match self {
            Page::Host => include_str!("../../web/host.html"),
            Page::Moderator => include_str!("../../web/moderator.html"),
            Page::Faq => include_str!("../../web/faq.html"),
            Page::Overview => include_str!("../../web/overview.html"),
        }
    }
}

/// A page in a locale, filled in on first use, with its Content-Security-Policy (its inline
/// code by hash).
pub(crate) fn page(locale: Locale, page: Page) -> Response {
    static FILLED: [[OnceLock<String>; 4]; 2] = [const { [const { OnceLock::new() }; 4] }; 2];
    let row = match locale {
        Locale::Ja => 0,
        Locale::En => 1,
    };
    super::guard::page(FILLED[row][page as usize].get_or_init(|| i18n::fill_page(locale, page.source())).as_str())
}

/// `GET /moderator`: the moderator console. The page itself is public; every API it calls
/// needs a moderator token when auth is on.
pub(crate) async fn moderator_console(State(ctx): State<Arc<Ctx>>) -> Response {
    page(ctx.config.locale, Page::Moderator)
}

/// Largest error body rewritten; anything bigger passes as it is.
const MAX_ERROR_BODY: usize = 256 * 1024;

/// Adds `message` (and `messages` for `problems`) in the server's locale to JSON error
/// responses, so the pages show people their own language while clients keep matching the
/// English `error`.
pub(crate) async fn localize_errors(State(ctx): State<Arc<Ctx>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if response.status().as_u16() < 400 || !json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return (parts.status, "").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    let locale = ctx.config.locale;
    if let Some(o) = value.as_object_mut() {
        if let Some(e) = o.get("error").and_then(|e| e.as_str()) {
            let message = i18n::localize_error(locale, e);
            o.insert("message".into(), message.into());
        }
        if let Some(p) = o.get("problems").and_then(|p| p.as_array()) {
            let messages: Vec<serde_json::Value> = p
                .iter()
                .map(|p| p.as_str().map(|s| i18n::localize_error(locale, s).into()).unwrap_or(p.clone()))
                .collect();
            o.insert("messages".into(), messages.into());
        }
    }
    let body = value.to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(body))
}
