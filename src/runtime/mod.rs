//! What runs where: the threads and channels of `kotae serve` and `kotae classify`, apart from
//! what they compute.
//!
//! - [`pool`]: a fixed pool of named threads fed by one bounded channel, each thread owning its
//!   state; [`workers`] is the server's analysis pool on it (normalize → tokenize → classify per
//!   frame), and `kotae classify` runs its workers on the same pool.
//! - [`shards`]: the stream shards, a lock each around its streams' state, taken by the
//!   connection whose frame it is (no hand-off to another thread), and one thread for their
//!   periodic work; the work itself is the synchronous core in [`crate::stream`].
//! - [`clock`]: the one clock the stateful stages read, injectable in tests.
//! - [`Sizing`]: thread counts and priorities from the cores available.
//!
//! The journal writer (one thread, [`crate::store`]) and the tokio runtime (websocket and HTTP
//! I/O) complete the picture: `docs/architecture.md` draws it.

pub mod clock;
pub mod pool;
pub mod shards;
pub mod workers;

use crate::server::config::ServerConfig;

/// Thread counts and priorities for `kotae serve`, from the configuration and the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Cores available to the process.
    pub cores: usize,
    /// Tokio runtime threads (websocket and HTTP I/O).
    pub runtime_threads: usize,
    /// Analysis workers (`server.workers`, 0 = one per core).
    pub workers: usize,
    /// Nice value of the analysis workers (`server.worker_nice`).
    pub worker_nice: i32,
}

impl Sizing {
    /// The sizing for `config` on this machine.
    pub fn of(config: &ServerConfig) -> Self {
        Self::for_cores(config, available_cores())
    }

    /// The sizing for `config` on `cores` cores.
    pub fn for_cores(config: &ServerConfig, cores: usize) -> Self {
        let cores = cores.max(1);
        let workers = if config.workers == 0 { cores } else { config.workers };
        Self { cores, runtime_threads: cores, workers, worker_nice: config.worker_nice }
    }
}

/// The tokio runtime of the async commands (`serve`, `demo`, the load tools): one thread per
/// core ([`Sizing::runtime_threads`]).
pub fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(available_cores()).enable_all().build()
}

/// Cores this process may run on (cgroup and affinity limits included); 2 if unknown.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Adds `nice` to the calling thread's nice value (Linux: a thread id is a process id to
/// `setpriority`); 0 leaves it alone. Raising it needs no privilege; a failure is logged once and
/// ignored (the thread then keeps the process's priority).
pub fn set_thread_nice(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions; setpriority reads its three integer arguments.
        let ok = unsafe {
            let tid = libc::gettid();
            let current = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, current.saturating_add(nice)) == 0
        };
        if !ok {
            tracing::debug!(error = %std::io::Error::last_os_error(), "thread priority not lowered");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_default_to_one_per_core_and_a_configured_count_wins() {
        let mut config = ServerConfig::default();
        let s = Sizing::for_cores(&config, 2);
        assert_eq!((s.runtime_threads, s.workers), (2, 2));
        config.workers = 3;
        assert_eq!(Sizing::for_cores(&config, 8).workers, 3);
        assert_eq!(Sizing::for_cores(&ServerConfig::default(), 0).cores, 1);
        config.worker_nice = 20;
        assert!(config.problems().iter().any(|p| p.contains("worker_nice")), "{:?}", config.problems());
    }
}
