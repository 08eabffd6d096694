//! `kotae serve`: binds, says where it listens, serves until SIGTERM or SIGINT.

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::Engine;
use crate::server::{Server, ServerError, ShutdownReport};

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves until `shutdown` resolves. Prints `kotae listening on http://ADDR` on stdout once
/// bound (tests and scripts read the port from it).
pub async fn run(
    config: &Config,
    engine: Arc<Engine>,
    shutdown: impl Future<Output = ()>,
) -> Result<ShutdownReport, ServerError> {
    let server = Server::bind(config, engine).await?;
    println!("kotae listening on http://{}", server.local_addr());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    Ok(server.run(shutdown).await)
}
