//! The FAQ for late joiners and the overview of a shop's streams:
//!
//! - `GET /v1/streams/ID/faq`: `{"stream", "answered": [{"id", "question", "answer", "product",
//!   "product_name", "shop", "at", "answered_at", "askers"}]}`, newest first; and `GET /faq?stream=ID`,
//!   the same as a page to show or share. Without a token when `server.public_faq` (the default):
//!   it holds only questions answered on stream, without viewers' names.
//! - `GET /v1/streams`: every stream in memory with its open, pinned and answered questions, the
//!   most urgent one, the product on screen, purchase intents and blocked counts (host tokens);
//!   and `GET /overview`, the same as a page.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Ctx;
use super::extract::{Caller, FaqReader, Host, Open, StreamId};
use super::web::{Page, page};
use crate::stream::views::StreamOverview;

/// `GET /v1/streams/ID/faq`.
pub(crate) async fn faq(
    State(ctx): State<Arc<Ctx>>,
    _: Caller<FaqReader>,
    StreamId(stream): StreamId,
    _: Open,
) -> Response {
    // The FAQ is read where the stream's queue is: at its owner in cluster mode.
    super::moderator::route(&ctx, &stream, super::moderator::StreamRequest::Faq).await
}

/// `GET /faq?stream=ID`: the FAQ page.
pub(crate) async fn faq_page(State(ctx): State<Arc<Ctx>>) -> Response {
    page(ctx.config.locale, Page::Faq)
}

/// One stream of the overview: the shard's view and the moderation counts.
#[derive(Debug, Serialize)]
struct OverviewRow {
    #[serde(flatten)]
    queue: StreamOverview,
    /// Purchase intents, in total.
    intents: u64,
    /// Blocked messages, and held ones awaiting a moderator.
    blocked: u64,
    held_pending: usize,
    messages: u64,
}

/// `GET /v1/streams`.
pub(crate) async fn overview(State(ctx): State<Arc<Ctx>>, _: Caller<Host>, _: Open) -> Response {
    let rows: Vec<OverviewRow> = ctx
        .shards
        .overview()
        .await
        .into_iter()
        .map(|queue| {
            let m = ctx.console.moderation.stream(&queue.stream);
            let s = m.lock().unwrap_or_else(|e| e.into_inner()).summary(&queue.stream);
            OverviewRow {
                intents: s.intents.values().map(|&n| u64::from(n)).sum(),
                blocked: s.blocked,
                held_pending: s.held_pending,
                messages: s.messages,
                queue,
            }
        })
        .collect();
    axum::Json(serde_json::json!({ "streams": rows })).into_response()
}

/// `GET /overview`: the overview page.
pub(crate) async fn overview_page(State(ctx): State<Arc<Ctx>>) -> Response {
    page(ctx.config.locale, Page::Overview)
}
