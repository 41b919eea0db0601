//! What a scheduler takes work from beyond its own green threads: the interface the
//! multi-threaded runtime implements for each of its workers.
//!
//! The scheduler is the lower layer and owns this interface; `runtime` implements it (its
//! deques, injector, stealing, idle list and migration permit) without the scheduler
//! knowing any of them. The scheduler calls it only where it looks for new work, goes idle
//! or stops, never on the switch path: whether ready green threads may move to another
//! worker is cached in the scheduler as a flag.

use std::time::Duration;

use super::driver::Driver;
use crate::park::Waker;

use super::join::join_key;
use super::scheduler::MigrantTask;
use super::{JoinError, SendAbort, SendBody};

/// A green thread that has not started: `Send` closures, so any worker may start it.
/// If it is dropped unstarted (the runtime shut down first), its joiner is told so.
///
/// The body is boxed apart, or `None` when the abort hook (the join state) holds it.
pub(crate) struct StartJob {
    parts: Option<(Option<SendBody>, SendAbort)>,
}

impl StartJob {
    pub(crate) fn new(body: Option<SendBody>, abort: SendAbort) -> StartJob {
        StartJob { parts: Some((body, abort)) }
    }

    /// The body and abort hook, for the worker that starts the green thread.
    pub(crate) fn into_parts(mut self) -> (Option<SendBody>, SendAbort) {
        match self.parts.take() {
            Some(parts) => parts,
            None => unreachable!("a start job is taken apart once"),
        }
    }

    /// Whether this starts the green thread whose join state (its abort hook) is at `key`.
    pub(crate) fn is_for(&self, key: *const ()) -> bool {
        self.parts.as_ref().is_some_and(|(_, abort)| join_key(abort) == key)
    }

    /// Drops the green thread unstarted, telling its joiner `reason`.
    pub(crate) fn abandon(mut self, reason: String) {
        if let Some((body, abort)) = self.parts.take() {
            drop(body);
            abort.abort(JoinError::stopped(reason));
        }
    }
}

impl Drop for StartJob {
    fn drop(&mut self) {
        if let Some((_, abort)) = self.parts.take() {
            abort.abort(JoinError::stopped("bobbin: the runtime shut down before this green thread started".into()));
        }
    }
}

/// Work handed to a scheduler from outside its own queues.
pub(crate) enum Job {
    /// A green thread to start.
    Start(StartJob),
    /// A suspended green thread, ready to continue here.
    Resume(MigrantTask),
}

/// Where a runtime worker's scheduler finds work beyond its own green threads.
pub(crate) trait WorkSource {
    /// A job of this worker's own, if one is queued (cheap: nothing shared is scanned).
    fn pop_local(&self) -> Option<Job>;
    /// A job from anywhere: this worker's own, the runtime's shared queue, other workers.
    fn find_job(&self) -> Option<Job>;
    /// The newest green thread spawned on this worker, if it has not started and its join
    /// state is at `key` (see [`StartJob::is_for`]); otherwise `None`, and nothing moves.
    fn take_newest_start(&self, key: *const ()) -> Option<Job>;
    /// Offers a ready green thread that may continue on any worker. Called only when the
    /// scheduler was started with migration allowed.
    fn push_migrant(&self, task: MigrantTask);
    /// Whether the scheduler should stop.
    fn is_shutdown(&self) -> bool;
    /// The scheduler has started on its thread; `waker` wakes its driver's sleep.
    fn started(&self, waker: Waker);
    /// Sleeps in `driver`, when the scheduler has nothing to run, until woken, `timeout`
    /// passes, or work shows up; `has_remote` tells whether wake-ups for this scheduler
    /// are queued.
    fn park_idle(&self, driver: &dyn Driver, timeout: Option<Duration>, has_remote: &dyn Fn() -> bool);
    /// At shutdown: drops every job held for this worker; whether there was any.
    fn drop_jobs(&self) -> bool;
    /// What the joiners of green threads unwound at shutdown are told.
    fn stop_reason(&self) -> String;
    /// The scheduler failed with an internal error, described by `reason`.
    fn fail(&self, reason: String);
    /// The worker's index, for messages.
    fn index(&self) -> usize;
}
