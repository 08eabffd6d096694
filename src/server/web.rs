//! The browser pages, embedded in the binary (no CDN, nothing fetched at run time): the host
//! screen is `web/host.html` (served by `host::screen`), the moderator console `web/moderator.html`.

use axum::response::Response;

/// `GET /moderator`: the moderator console. The page itself is public; every API it calls
/// needs a moderator token when auth is on.
pub(crate) async fn moderator_console() -> Response {
    super::guard::page(include_str!("../../web/moderator.html"))
}
