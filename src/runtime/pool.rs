//! A fixed pool of named threads taking jobs from one bounded channel, each thread owning its
//! own state (an [`Analyzer`](crate::pipeline::Analyzer) in both users: the server's analysis
//! workers and `kotae classify`).
//!
//! The channel holds at most `queue` jobs; [`Pool::send`] blocks when it is full and
//! [`Pool::try_send`] gives the job back. [`Pool::close`] queues one stop per thread behind the
//! jobs already queued, so every queued job finishes; [`Pool::join`] waits for the threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};

/// How a pool is started.
#[derive(Debug, Clone, Copy)]
pub struct PoolSpec {
    /// Thread names are `{name}-{i}`.
    pub name: &'static str,
    /// Threads (at least one is started).
    pub threads: usize,
    /// Jobs the channel holds.
    pub queue: usize,
    /// Nice value added to each thread (0: the process's own). Work that can wait uses a higher
    /// one, so the threads that answer on the latency path get a core first.
    pub nice: i32,
}

enum Task<J> {
    Run(J),
    Stop,
}

/// The pool's threads and their channel.
pub struct Pool<J> {
    /// Bounded by [`PoolSpec::queue`]; a `Stop` per thread ends it ([`Pool::close`]).
    tx: Sender<Task<J>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl<J: Send + 'static> Pool<J> {
    /// Starts the threads: each gets its state from `init` (called here, on the caller's
    /// thread) and runs `work` on every job it takes.
    pub fn start<S, W>(spec: PoolSpec, mut init: impl FnMut() -> S, work: W) -> std::io::Result<Self>
    where
        S: Send + 'static,
        W: Fn(&mut S, J) + Send + Sync + 'static,
    {
        let (tx, rx) = bounded::<Task<J>>(spec.queue.max(1));
        let work = Arc::new(work);
        let mut threads = Vec::with_capacity(spec.threads.max(1));
        for i in 0..spec.threads.max(1) {
            let rx = rx.clone();
            let work = work.clone();
            let mut state = init();
            let nice = spec.nice;
            threads.push(std::thread::Builder::new().name(format!("{}-{i}", spec.name)).spawn(move || {
                super::set_thread_nice(nice);
                for task in rx {
                    match task {
                        Task::Run(job) => work(&mut state, job),
                        Task::Stop => return,
                    }
                }
            })?);
        }
        Ok(Self { tx, threads: Mutex::new(threads), closed: AtomicBool::new(false) })
    }

    /// Queues a job unless the channel is full or the pool closed; the job comes back then.
    pub fn try_send(&self, job: J) -> Result<(), J> {
        if self.closed.load(Ordering::Acquire) {
            return Err(job);
        }
        self.tx.try_send(Task::Run(job)).map_err(|e| match e.into_inner() {
            Task::Run(job) => job,
            Task::Stop => unreachable_job(),
        })
    }

    /// Queues a job, waiting for room; the job comes back if the pool has closed.
    pub fn send(&self, job: J) -> Result<(), J> {
        if self.closed.load(Ordering::Acquire) {
            return Err(job);
        }
        self.tx.send(Task::Run(job)).map_err(|e| match e.into_inner() {
            Task::Run(job) => job,
            Task::Stop => unreachable_job(),
        })
    }

    /// Jobs waiting for a thread.
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    /// Lets the queued jobs finish, then ends every thread (once; later calls do nothing).
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let n = self.threads.lock().unwrap_or_else(|e| e.into_inner()).len();
        for _ in 0..n {
            let _ = self.tx.send(Task::Stop);
        }
    }

    /// Waits for the threads to end (after [`Pool::close`]).
    pub fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }

    /// [`Pool::close`], then [`Pool::join`].
    pub fn stop(&self) {
        self.close();
        self.join();
    }
}

/// A `Stop` is only sent by `close`, never handed to `try_send` or `send`, so it never comes
/// back from them.
#[cold]
fn unreachable_job<J>() -> J {
    unreachable!("a stop task is never sent as a job")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_queued_job_runs_before_the_threads_stop_and_each_thread_keeps_its_state() {
        let (done_tx, done_rx) = bounded::<(u32, usize)>(64);
        let spec = PoolSpec { name: "test-pool", threads: 2, queue: 4, nice: 0 };
        let pool = Pool::start(
            spec,
            || 0usize,
            move |seen: &mut usize, job: u32| {
                *seen += 1;
                let _ = done_tx.send((job, *seen));
            },
        )
        .unwrap();
        for j in 0..20 {
            pool.send(j).unwrap();
        }
        pool.stop();
        assert_eq!(pool.send(99), Err(99), "a closed pool gives the job back");
        let mut jobs: Vec<u32> = done_rx.try_iter().map(|(j, _)| j).collect();
        jobs.sort_unstable();
        assert_eq!(jobs, (0..20).collect::<Vec<_>>());
    }
}
