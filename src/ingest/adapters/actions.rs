//! The moderation back-channel every adapter runs: actions taken one at a time from the
//! adapter's channel, each performed on the platform, counted, and its outcome sent back to
//! whoever asked.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use super::chat::{ActionError, ActionOutcome, ModerationAction, Platform};
use super::{ActionRequest, AdapterMetrics};

/// What an adapter does for one action on its platform.
pub(super) trait Perform: Sync {
    /// Performs `action`: a request to the platform, or nothing when it is only local.
    fn perform<'a>(&'a self, action: &'a ModerationAction) -> BoxFuture<'a, Result<ActionOutcome, ActionError>>;
}

/// Performs actions through `platform_api` until every sender is dropped. Failures are counted in
/// `actions_failed` and logged, except actions the platform does not support, which only
/// its caller needs to hear about.
pub(super) async fn serve_actions(
    mut actions: mpsc::Receiver<ActionRequest>,
    platform: Platform,
    metrics: &AdapterMetrics,
    platform_api: &impl Perform,
) {
    while let Some(req) = actions.recv().await {
        let result = platform_api.perform(&req.action).await;
        match &result {
            Ok(_) => AdapterMetrics::inc(&metrics.actions_ok),
            Err(e) => {
                AdapterMetrics::inc(&metrics.actions_failed);
                if !matches!(e, ActionError::Unsupported { .. }) {
                    tracing::warn!(%platform, action = req.action.name(), error = %e, "action failed");
                }
            }
        }
        if let Some(reply) = req.reply {
            let _ = reply.send(result);
        }
    }
}
