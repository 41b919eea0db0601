//! The permission to move suspended green threads between OS threads, and the wrapper
//! that lets one cross. The runtime decides when; the unsafe promise lives here, with the
//! rest of the engine's unsafe code.

/// Proof that the user allowed suspended green threads to change OS thread.
///
/// Made only by `runtime::Builder::allow_migration`, an `unsafe fn` whose caller promises
/// that no green thread of that runtime keeps the address of a thread-local (or any other
/// thread-affine state) across a point where it can be suspended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MigrationPermit(());

impl MigrationPermit {
    /// Records the promise described on the type. Call only from an `unsafe fn` whose
    /// `# Safety` section puts that promise on its caller.
    pub(crate) fn granted() -> MigrationPermit {
        MigrationPermit(())
    }
}

/// A value that may cross to another thread although its type is not `Send`: a suspended
/// green thread (its coroutine and what is on its stack) under a [`MigrationPermit`].
pub(crate) struct Movable<T>(T);

// SAFETY: what makes a suspended coroutine !Send is that its stack may hold values tied to
// the thread it ran on (thread-local addresses, !Send values created from them). A Movable
// is only made with a MigrationPermit, whose grantor promised that the green threads it
// covers hold no such state across a suspension point, and the closures those green threads
// were started from are `Send` (runtime jobs require it). Everything else a coroutine owns
// (its stack mapping, heap-pinned context, run information) is plain memory that any
// thread may use once the coroutine is suspended.
unsafe impl<T> Send for Movable<T> {}

impl<T> Movable<T> {
    pub(crate) fn new(value: T, _permit: MigrationPermit) -> Movable<T> {
        Movable(value)
    }

    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}
