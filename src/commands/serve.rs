//! `kotae serve`: binds, says where it listens, serves until SIGTERM or SIGINT.

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::pipeline::Engine;
use crate::server::{Server, ServerError, ShutdownReport};

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called, not
/// when the future is first polled: a command may print (and a supervisor signal it) before it
/// polls its shutdown future, and a signal without a handler kills the process without a shutdown.
/// Call it inside the runtime, before the command starts its work.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
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
