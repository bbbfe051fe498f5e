//! A tiny persistent thread pool: `run(f)` calls `f(0)`, …, `f(n − 1)` on `n` threads at once
//! and returns when all have finished.
//!
//! Training steps are short (a millisecond or less), so spawning threads per step would cost
//! as much as the work; these workers are spawned once, when the model is told its thread
//! count, and sleep on a condition variable between jobs. The calling thread does share 0
//! itself, so `n` threads means `n − 1` workers.
//!
//! The job is a borrowed closure, not a `'static` one, so that it can capture the model's
//! buffers by reference. That is the one thing `std` cannot express safely here, and the one
//! `unsafe` block below: see its SAFETY comment.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker (and the caller, waiting for workers) spins before sleeping. Training
/// steps come back to back, so the next job usually arrives within this window and the
/// condition variable's wake-up latency (tens of microseconds) is paid only between bursts.
const SPIN: Duration = Duration::from_micros(50);

/// A job as workers see it: a type-erased pointer to the caller's `&(dyn Fn(usize) + Sync)`.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync + 'static));

// SAFETY: a `Job` is only dereferenced while the `run` call that created it is blocked
// waiting for every worker to finish it (see `ThreadPool::run`), and the closure behind it is
// `Sync`, so sharing the pointer between threads is sharing a `&(dyn Fn + Sync)`.
unsafe impl Send for Job {}

#[derive(Default)]
struct State {
    job: Option<Job>,
    panicked: Option<Box<dyn std::any::Any + Send>>,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
    /// Incremented (under the lock) for every job, so a worker never runs one twice; read
    /// without the lock while spinning.
    generation: AtomicU64,
    /// Workers that have not yet finished the current job.
    pending: AtomicUsize,
}

/// Spins until `ready()` or `SPIN` has passed; true if it became ready.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if t0.elapsed() > SPIN {
            return ready();
        }
    }
}

impl Shared {
    // A worker that panicked has already recorded the panic; the state stays consistent, so
    // a poisoned lock is still safe to use.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fixed set of worker threads, joined when the pool is dropped.
pub struct ThreadPool {
    threads: usize,
    /// Held for the whole of a `run`: two callers sharing a pool (clones of one model used from
    /// two threads) take turns instead of overwriting each other's job.
    running: Mutex<()>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads)
            .finish()
    }
}

impl ThreadPool {
    /// A pool that runs jobs on `threads` threads (the caller plus `threads − 1` workers).
    /// `threads == 0` is treated as 1. Fails only if the OS refuses to spawn a thread.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared::default());
        let mut workers = Vec::with_capacity(threads - 1);
        for index in 1..threads {
            let shared = Arc::clone(&shared);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("downhill-{index}"))
                    .spawn(move || worker(index, &shared))?,
            );
        }
        Ok(ThreadPool {
            threads,
            running: Mutex::new(()),
            shared,
            workers,
        })
    }

    /// Number of threads a job runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f(i)` for every `i` in `0..threads()`, concurrently, and returns when all are
    /// done. A panic in any share is re-raised here.
    pub fn run(&self, f: &(dyn Fn(usize) + Sync)) {
        if self.threads == 1 {
            return f(0);
        }
        let _turn = self.running.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: this only erases the lifetime of `f` so workers can hold the pointer. Every
        // worker's use of it happens between the `start` notification below and its
        // decrement of `pending`; this function does not return (nor unwind: the caller's
        // own share runs under `catch_unwind`) until `pending == 0` and the job is cleared,
        // so `f` outlives every dereference.
        let job = Job(unsafe {
            std::mem::transmute::<
                *const (dyn Fn(usize) + Sync + '_),
                *const (dyn Fn(usize) + Sync + 'static),
            >(f as *const _)
        });
        let shared = &*self.shared;
        {
            let mut s = shared.lock();
            s.job = Some(job);
            shared.pending.store(self.threads - 1, Ordering::Release);
            shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        shared.start.notify_all();
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        spin_until(|| shared.pending.load(Ordering::Acquire) == 0);
        let mut s = shared.lock();
        while shared.pending.load(Ordering::Acquire) > 0 {
            s = shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.job = None;
        let theirs = s.panicked.take();
        drop(s);
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if let Some(p) = theirs {
            resume_unwind(p);
        }
    }
}

impl ThreadPool {
    /// Hands `shares[i]` to thread `i` (one share per thread; threads beyond the shares idle)
    /// and runs `f(i, &mut share)` on each, concurrently. Returns the first error in share
    /// order, so which error is reported does not depend on timing.
    pub fn run_each<S: Send, E: Send>(
        &self,
        shares: Vec<S>,
        f: impl Fn(usize, &mut S) -> Result<(), E> + Sync,
    ) -> Result<(), E> {
        // Each slot is locked by exactly one thread, once: the mutexes are never contended;
        // they only prove to the compiler that the shares are handed out disjointly.
        let slots: Vec<Mutex<(S, Option<E>)>> =
            shares.into_iter().map(|s| Mutex::new((s, None))).collect();
        self.run(&|i| {
            if let Some(slot) = slots.get(i) {
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                let (share, error) = &mut *slot;
                if let Err(e) = f(i, share) {
                    *error = Some(e);
                }
            }
        });
        for slot in slots {
            if let (_, Some(e)) = slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                return Err(e);
            }
        }
        Ok(())
    }
}

fn worker(index: usize, shared: &Shared) {
    let mut seen = 0u64;
    loop {
        spin_until(|| shared.generation.load(Ordering::Acquire) != seen);
        let job = {
            let mut s = shared.lock();
            while !s.shutdown && shared.generation.load(Ordering::Acquire) == seen {
                s = shared.start.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.shutdown {
                return;
            }
            seen = shared.generation.load(Ordering::Acquire);
            s.job
        };
        if let Some(Job(f)) = job {
            // SAFETY: `run` keeps the closure alive until `pending` reaches 0, which happens
            // only after this call returns (see `ThreadPool::run`).
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*f)(index) }));
            if let Err(p) = result {
                shared.lock().panicked.get_or_insert(p);
            }
            if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Take the lock so the caller cannot check `pending` and then miss this.
                let _s = shared.lock();
                shared.done.notify_all();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        {
            let mut s = self.shared.lock();
            s.shutdown = true;
            // A new generation ends every worker's spin, so each one locks and sees the flag.
            self.shared.generation.fetch_add(1, Ordering::AcqRel);
        }
        self.shared.start.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_share_runs_once_per_job() {
        let pool = ThreadPool::new(3).unwrap();
        let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..100 {
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 100));
    }

    #[test]
    fn a_panicking_share_is_reraised_and_the_pool_survives() {
        let pool = ThreadPool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(&|i| assert_ne!(i, 1))));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }
}
