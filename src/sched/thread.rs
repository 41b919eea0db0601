//! Who a green thread is: [`GreenThread`] (its id and name), [`current`], and the panic
//! hook that says which green thread panicked.

use std::cell::Cell;
use std::fmt;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use super::scheduler;

/// A green thread's identifier: unique among every green thread of the process for its
/// lifetime, never reused. Like [`std::thread::ThreadId`], it has no meaning beyond that.
///
/// # Examples
/// ```
/// let (a, b, same) = bobbin::run(|| {
///     let a = bobbin::spawn(|| bobbin::current().id());
///     let b = bobbin::spawn(|| bobbin::current().id());
///     let expected = a.thread().id();
///     let a = a.join().unwrap();
///     (a, b.join().unwrap(), a == expected)
/// });
/// assert_ne!(a, b);
/// assert!(same);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct GreenThreadId(NonZeroU64);

impl GreenThreadId {
    /// The id as a number (for logs; numbers are handed out in blocks per OS thread, so
    /// their order says nothing about which green thread was spawned first).
    ///
    /// # Examples
    /// ```
    /// let id = bobbin::run(|| bobbin::current().id());
    /// assert!(id.as_u64() > 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// A new id. Never inlined: it reads a thread-local (see the crate's migration rule).
    /// Each OS thread takes ids from the process-wide counter a block at a time,
    /// so spawning does not contend on one cache line across workers.
    #[inline(never)]
    pub(crate) fn next() -> GreenThreadId {
        const BLOCK: u64 = 1024;
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }
        let take = |(next, end): (u64, u64)| {
            if next < end {
                (next, end)
            } else {
                let start = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                (start, start + BLOCK)
            }
        };
        let n = RANGE
            .try_with(|r| {
                let (next, end) = take(r.get());
                r.set((next + 1, end));
                next
            })
            .unwrap_or_else(|_| NEXT_BLOCK.fetch_add(1, Ordering::Relaxed));
        GreenThreadId(NonZeroU64::new(n).expect("the id counter never wraps"))
    }
}

impl fmt::Display for GreenThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A handle on a green thread's identity: its [`id`](GreenThread::id) and
/// [`name`](GreenThread::name), as [`std::thread::Thread`] is for an OS thread. Cloning it
/// is cheap.
///
/// Get one from [`current`] inside the green thread or from
/// [`JoinHandle::thread`](crate::JoinHandle::thread) outside it; name a green thread with
/// [`Builder::name`](crate::Builder::name).
///
/// # Examples
/// ```
/// let handle = bobbin::run(|| {
///     let h = bobbin::Builder::new()
///         .name("parser".into())
///         .spawn(|| bobbin::current().name().map(str::to_owned))
///         .unwrap();
///     assert_eq!(h.thread().name(), Some("parser"));
///     h.join().unwrap()
/// });
/// assert_eq!(handle.as_deref(), Some("parser"));
/// ```
#[derive(Clone)]
pub struct GreenThread {
    id: GreenThreadId,
    /// What a [`Builder`](crate::Builder) set, shared by every clone; `None` for the rest.
    /// One pointer, so the join state that holds it stays small.
    built: Option<Arc<Built>>,
}

/// What a [`Builder`](crate::Builder) gives a green thread.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<NonZeroUsize>,
}

impl GreenThread {
    pub(crate) fn new(built: Option<Arc<Built>>) -> GreenThread {
        GreenThread { id: GreenThreadId::next(), built }
    }

    /// The stack size it was built with, if not its scheduler's.
    pub(crate) fn stack_size(&self) -> Option<usize> {
        self.built.as_ref()?.stack_size.map(NonZeroUsize::get)
    }

    /// The green thread's unique id.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     let me = bobbin::current();
    ///     assert_eq!(me.id(), bobbin::current().id());
    /// });
    /// ```
    pub fn id(&self) -> GreenThreadId {
        self.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name), if any (green threads
    /// started by [`spawn`](crate::spawn), `run` and a runtime have none).
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     assert_eq!(bobbin::current().name(), None);
    ///     let h = bobbin::Builder::new().name("io".into()).spawn(|| ()).unwrap();
    ///     assert_eq!(h.thread().name(), Some("io"));
    /// });
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.built.as_ref()?.name.as_deref()
    }
}

impl fmt::Debug for GreenThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenThread").field("id", &self.id).field("name", &self.name()).finish()
    }
}

/// Names the green thread in messages: `'name' (id 7)`, or `(id 7)` without a name.
impl fmt::Display for GreenThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "'{name}' (id {})", self.id),
            None => write!(f, "(id {})", self.id),
        }
    }
}

/// The green thread running the caller.
///
/// # Panics
/// Outside a green thread (on a plain OS thread, or in a scheduler's own code); use
/// [`try_current`] where that can happen. Unlike [`std::thread::current`], there is
/// nothing to fall back to there.
///
/// # Examples
/// ```
/// bobbin::run(|| {
///     let h = bobbin::Builder::new().name("child".into()).spawn(|| bobbin::current()).unwrap();
///     let id = h.thread().id();
///     let inside = h.join().unwrap();
///     assert_eq!(inside.id(), id);
///     assert_eq!(inside.name(), Some("child"));
/// });
/// ```
pub fn current() -> GreenThread {
    try_current().expect("bobbin::current called outside a green thread (use bobbin::try_current)")
}

/// The green thread running the caller, or `None` outside one.
///
/// # Examples
/// ```
/// assert!(bobbin::try_current().is_none());
/// assert!(bobbin::run(|| bobbin::try_current().is_some()));
/// ```
pub fn try_current() -> Option<GreenThread> {
    scheduler::with_current_record(|r| r.thread().clone())
}

/// Installs, once per process, the panic hook that names the green thread a panic happens
/// on before the previous hook (std's default one prints only the OS thread) reports it.
///
/// Installed when the first scheduler starts or the first named green thread is spawned,
/// so a hook the program set before then runs after the line it adds; a hook set later
/// replaces it (and can call [`try_current`] to say the same).
pub(crate) fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(thread) = scheduler::current_thread_in_hook() {
                eprintln!("green thread {thread} panicked (the report below names the OS thread it ran on):");
            }
            previous(info);
        }));
    });
}
