//! The process allocator: mimalloc, tuned to hand freed memory back.
//!
//! The pipeline allocates on one thread and frees on another (frames parsed by the runtime and
//! dropped by a worker, journal records built by a shard and written by the journal thread).
//! glibc's per-thread arenas handle that poorly: at full load a fifth of the sidecar's CPU went
//! to `malloc`, `free` and `malloc_consolidate`. mimalloc frees across threads cheaply. Left at
//! its defaults it keeps more memory resident than glibc, so [`tune`] makes it commit arena
//! arena memory on demand (compiled in: see `.cargo/config.toml`) and return freed pages after
//! 10 ms instead of a second.

use libmimalloc_sys::{mi_option_set, mi_option_t};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e` (the version libmimalloc-sys
/// builds by default; the test below checks the numbering against mimalloc's own names).
#[cfg(test)]
const ARENA_EAGER_COMMIT: mi_option_t = 4;
/// `mi_option_purge_delay`: milliseconds before freed pages are returned to the OS.
const PURGE_DELAY: mi_option_t = 15;

/// Applies the run-time memory settings. Call first thing in `main`.
pub fn tune() {
    // SAFETY: setting an option is a plain store into mimalloc's option table, read again at
    // every purge.
    unsafe { mi_option_set(PURGE_DELAY, 10) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn arenas_commit_on_demand() {
        // SAFETY: reading an option is a plain load.
        let eager = unsafe { mi_option_get(ARENA_EAGER_COMMIT) };
        assert_eq!(eager, 0, "mimalloc was built without .cargo/config.toml's CFLAGS (is CFLAGS set?)");
    }

    /// mimalloc reads `MIMALLOC_<NAME>` from the environment at start-up, so a child process
    /// started with distinctive values shows which number each name has.
    #[test]
    fn option_numbers_match_mimallocs_names() {
        if std::env::var_os("KOTAE_ALLOC_CHILD").is_some() {
            // SAFETY: reading an option is a plain load.
            let (eager, purge) = unsafe { (mi_option_get(ARENA_EAGER_COMMIT), mi_option_get(PURGE_DELAY)) };
            assert_eq!((eager, purge), (7, 4321));
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "alloc::tests::option_numbers_match_mimallocs_names", "--nocapture"])
            .env("KOTAE_ALLOC_CHILD", "1")
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "7")
            .env("MIMALLOC_PURGE_DELAY", "4321")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the child saw other option numbers: {said}");
        assert!(said.contains("1 passed"), "the child ran no test: {said}");
    }
}
