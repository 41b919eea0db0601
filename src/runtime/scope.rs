//! Scoped green threads on a runtime: [`Runtime::scope`] and its [`Scope`], whose green
//! threads may run on any worker and borrow what the caller shares (`Send` borrows).
//!
//! The waiting, and why it is sound, are those of `bobbin::scope` (`sched/scope.rs`); this
//! file only places the green threads on the runtime.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::worker::{self, RtJob, RtShared};
use super::Runtime;
use crate::engine;
use crate::sched::scope::{self as scoped, ScopeData, Teardown};
use crate::sched::work::StartJob;
use crate::sched::ScopedJoinHandle;

impl Runtime {
    /// Runs `f` with a [`Scope`] whose green threads run on this runtime and may borrow
    /// anything that outlives the call; returns once `f` and all of them have finished.
    ///
    /// The runtime's version of [`bobbin::scope`](crate::scope): the scoped green threads
    /// may start on any worker, so their closures and values must be `Send`, and what they
    /// borrow `Sync`, as with [`std::thread::scope`]. Callable from anywhere: from a plain
    /// thread (it blocks until they have finished), from a green thread of this runtime or
    /// of another scheduler (it parks). Green threads left unjoined are joined before it
    /// returns, even if a handle was leaked.
    ///
    /// # Panics
    /// - If a scoped green thread that was not joined panicked (or overflowed its stack, or
    ///   was stopped by the runtime failing before it finished): after every one has
    ///   finished. If `f` panicked, its panic is resumed instead, after the same wait.
    /// - On the stack of a coroutine or generator that a green thread runs (only the green
    ///   thread's own stack can park); the panic comes before `f` runs.
    ///
    /// # Aborts
    /// As [`bobbin::scope`](crate::scope), if the stack running the scope overflows while
    /// scoped green threads borrow from it; and if the green thread running it on one of
    /// this runtime's workers is unwound by the runtime failing while some of them are left
    /// that only that worker could have run.
    ///
    /// # Examples
    /// From a plain thread, the work spread over the workers:
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let data: Vec<u64> = (1..=1000).collect();
    /// let total = AtomicU64::new(0);
    /// rt.scope(|s| {
    ///     for chunk in data.chunks(100) {
    ///         let total = &total;
    ///         s.spawn(move || total.fetch_add(chunk.iter().sum(), Ordering::Relaxed));
    ///     }
    /// });
    /// assert_eq!(total.into_inner(), 500_500);
    /// ```
    ///
    /// What the scoped green threads borrow must be shareable between threads:
    /// ```compile_fail,E0277
    /// use std::cell::Cell;
    ///
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let count = Cell::new(0); // not Sync
    /// rt.scope(|s| {
    ///     s.spawn(|| count.set(count.get() + 1));
    /// });
    /// ```
    ///
    /// A handle cannot leave the scope:
    /// ```compile_fail
    /// let rt = bobbin::Runtime::builder().workers(1).build().unwrap();
    /// let escaped = rt.scope(|s| s.spawn(|| 1));
    /// escaped.join().unwrap();
    /// ```
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        if crate::sched::scheduler::on_green_thread() && !scoped::can_park_here() {
            panic!(
                "bobbin: Runtime::scope called in a coroutine or generator that a green thread runs: \
                 only the green thread's own stack can wait for the scope"
            );
        }
        // On one of this runtime's workers, scoped green threads may be queued there, and
        // nothing would run them if that worker stopped while the scope waits.
        let teardown = if worker::current_runtime().is_some_and(|rt| Arc::ptr_eq(&rt, &self.shared)) {
            Teardown::Abort
        } else {
            Teardown::Block
        };
        let scope =
            Scope { rt: Arc::clone(&self.shared), data: ScopeData::new(), _scope: PhantomData, _env: PhantomData };
        scoped::run_scope(&scope.data, || f(&scope), teardown)
    }
}

/// A scope of green threads on a [`Runtime`], made by [`Runtime::scope`].
///
/// `'scope` is the life of the scope, `'env` that of what its green threads borrow. `Sync`:
/// its green threads, on any worker, can spawn more into it.
///
/// # Examples
/// A scoped green thread spawning into its own scope, from whichever worker it runs on:
/// ```
/// use std::sync::Mutex;
///
/// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
/// let found = Mutex::new(Vec::new());
/// rt.scope(|s| {
///     s.spawn(|| {
///         for i in 0..4 {
///             let found = &found;
///             s.spawn(move || found.lock().unwrap().push(i));
///         }
///     });
/// });
/// let mut found = found.into_inner().unwrap();
/// found.sort();
/// assert_eq!(found, [0, 1, 2, 3]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    rt: Arc<RtShared>,
    data: Arc<ScopeData>,
    /// Invariant in both lifetimes, as std's.
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a green thread in the scope, onto the runtime: from one of its workers on that
    /// worker's deque, from anywhere else on its injector (as [`Runtime::spawn`]). The scope
    /// waits for it even if the handle is dropped or leaked.
    ///
    /// # Examples
    /// ```
    /// let rt = bobbin::Runtime::builder().workers(2).build().unwrap();
    /// let words = ["green", "threads"];
    /// let lengths = rt.scope(|s| {
    ///     let handles: Vec<_> = words.iter().map(|w| s.spawn(move || w.len())).collect();
    ///     handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    /// });
    /// assert_eq!(lengths, [5, 7]);
    /// ```
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let (body, abort, handle) = scoped::scoped_parts(&self.data, f);
        let body: Box<dyn FnOnce() + Send + 'scope> = Box::new(body);
        // `run_scope` does not return, unwind past its wait, or let its stack be given back
        // while this body's green thread has not reported its end, which the body reports
        // only after it and its value are gone (or, dropped unrun by a stopping runtime,
        // from its `Drop`).
        // SAFETY: so the body's borrows outlive it: `'scope` ends only after `run_scope`.
        let body = unsafe { engine::erase_send_body(body) };
        let job = RtJob::Start(StartJob::new(Some(body), abort));
        if let Err(job) = worker::push_worker_job(&self.rt, job) {
            self.rt.inject(job);
        }
        handle
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.data.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::sched::scheduler;
    use crate::Runtime;

    /// Counts its drop, late: a drop that came after the scope returned would be missed.
    struct Counted<'a>(&'a AtomicUsize);

    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            std::thread::yield_now();
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_failing_runtime_drops_unstarted_scoped_threads_before_the_scope_returns() {
        let rt = Runtime::builder().workers(1).build().unwrap();
        let dropped = AtomicUsize::new(0);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            rt.scope(|s| {
                let (tx, rx) = std::sync::mpsc::channel();
                s.spawn(move || {
                    // The worker fails at its next step, with the jobs below queued.
                    rx.recv().unwrap();
                    scheduler::inject_fault();
                    crate::yield_now();
                });
                for _ in 0..20 {
                    let counted = Counted(&dropped);
                    s.spawn(move || drop(counted));
                }
                tx.send(()).unwrap();
            })
        }));
        let payload = outcome.expect_err("the scoped threads were stopped");
        assert_eq!(crate::error::panic_message(payload.as_ref()), "a scoped green thread panicked");
        assert_eq!(dropped.load(Ordering::SeqCst), 20);
    }
}
