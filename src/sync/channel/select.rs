//! Waiting on several channel operations at once: [`Select`], and the machinery the
//! [`select!`](crate::select!) macro expands to.
//!
//! A select first tries every operation, starting at a random one so that no operation
//! is always preferred. If none is ready and it may wait, it makes one [`Waiter`] and puts
//! an entry for each operation in that channel's wait list, looking at the operation again
//! under the lock that lists it (an event before the entry was listed finds no entry, so
//! that look must see its effect), and parks once. Whatever
//! makes an operation ready claims the waiter with a compare-and-swap on its one
//! "selected" word, reserves the message, the room or the rendezvous partner the operation
//! needs, and wakes it; a second event finds the word taken and goes to another waiter,
//! so its message stays queued for someone else. The select then removes its other
//! entries and returns the claimed operation, which completes with what was reserved:
//! exactly one operation takes effect. A send operation's message is given only when the
//! operation completes, so the sends that were not selected keep theirs.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::error::{ReadyTimeoutError, RecvError, SelectTimeoutError, SendError, TryReadyError, TrySelectError};
use super::operand::Operand;
use super::waiter::{Selection, Waiter};
use super::{deadline_after, Receiver, Sender};
use crate::sched::budget;

/// Waits on several channel operations at once and completes exactly one of them.
///
/// Add operations with [`add_recv`](Select::add_recv) and [`add_send`](Select::add_send)
/// (channels of any message types, rendezvous channels included), then pick one with
/// [`select`](Select::select) (parks until one is ready), [`try_select`](Select::try_select)
/// (never parks) or [`select_timeout`](Select::select_timeout). The pick is a
/// [`SelectedOperation`], which must be completed with [`SelectedOperation::recv`] or
/// [`SelectedOperation::send`] on the same end: only that operation takes effect, and a
/// send's message is given only then. An operation on a disconnected channel is ready (its
/// completion reports the disconnection). When several are ready, which is picked is random.
///
/// [`ready`](Select::ready) only says which operation looks ready, without completing
/// anything. Works between green threads of any scheduler or worker and OS threads;
/// outside a scheduler it blocks the OS thread. The [`select!`](crate::select!) macro is
/// the shorter way to write most selects.
///
/// # Examples
/// ```
/// use bobbin::sync::{bounded, channel, Select};
///
/// let (num_tx, num_rx) = channel::<u32>();
/// let (word_tx, word_rx) = bounded::<&str>(0);
/// std::thread::spawn(move || word_tx.send("hello").unwrap());
///
/// let mut sel = Select::new();
/// let nums = sel.add_recv(&num_rx);
/// let words = sel.add_recv(&word_rx);
/// let oper = sel.select(); // parks until the thread above offers its word
/// assert_eq!(oper.index(), words);
/// assert_eq!(oper.recv(&word_rx), Ok("hello"));
/// # let _ = (nums, num_tx);
/// ```
#[derive(Clone)]
pub struct Select<'a> {
    opers: Opers<'a>,
}

/// An operation of a select: its end, and the end's address (which names it when the
/// operation is completed).
type Oper<'a> = (&'a dyn Operand, usize);

/// How many operations a select keeps without allocating.
const INLINE: usize = 4;

/// The operations of a select: the first few in place, so that a `select!` of a few arms
/// allocates nothing for them.
#[derive(Clone, Default)]
struct Opers<'a> {
    inline: [Option<Oper<'a>>; INLINE],
    spill: Vec<Oper<'a>>,
    len: usize,
}

impl<'a> Opers<'a> {
    fn push(&mut self, op: Oper<'a>) -> usize {
        if self.len < INLINE {
            self.inline[self.len] = Some(op);
        } else {
            self.spill.push(op);
        }
        self.len += 1;
        self.len - 1
    }

    fn get(&self, i: usize) -> Oper<'a> {
        if i < INLINE {
            self.inline[i].expect("an operation index out of range")
        } else {
            self.spill[i - INLINE]
        }
    }

    fn iter(&self) -> impl Iterator<Item = &'a dyn Operand> + '_ {
        self.inline.iter().flatten().chain(&self.spill).map(|op| op.0)
    }
}

impl<'a> Select<'a> {
    /// An empty select.
    ///
    /// # Examples
    /// ```
    /// let mut sel = bobbin::sync::Select::new();
    /// // Nothing to wait for: never ready.
    /// assert!(sel.try_select().is_err());
    /// ```
    pub fn new() -> Select<'a> {
        Select { opers: Opers::default() }
    }

    /// Adds a receive from `r`; returns its index, which [`SelectedOperation::index`] and
    /// [`ready`](Select::ready) report.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// tx.send(3).unwrap();
    /// let mut sel = bobbin::sync::Select::new();
    /// let i = sel.add_recv(&rx);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// assert_eq!(oper.recv(&rx), Ok(3));
    /// ```
    pub fn add_recv<T>(&mut self, r: &'a Receiver<T>) -> usize {
        self.opers.push((r, r as *const Receiver<T> as usize))
    }

    /// Adds a send to `s`; returns its index. The message is given when the operation is
    /// completed with [`SelectedOperation::send`].
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::bounded(1);
    /// let mut sel = bobbin::sync::Select::new();
    /// let i = sel.add_send(&tx);
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), i);
    /// oper.send(&tx, "sent").unwrap();
    /// assert_eq!(rx.recv(), Ok("sent"));
    /// ```
    pub fn add_send<T>(&mut self, s: &'a Sender<T>) -> usize {
        self.opers.push((s, s as *const Sender<T> as usize))
    }

    /// Picks an operation that is ready now, without parking.
    ///
    /// # Errors
    /// [`TrySelectError`] if none is ready (a rendezvous operation is ready only if a
    /// partner with its message in hand waits).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel::<i32>();
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_recv(&rx);
    /// assert!(sel.try_select().is_err());
    /// tx.send(1).unwrap();
    /// assert_eq!(sel.try_select().unwrap().recv(&rx), Ok(1));
    /// ```
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.run(Wait::Never, false).map(|s| self.selected(s)).ok_or(TrySelectError)
    }

    /// Parks until an operation is ready and picks it.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// let got = bobbin::run(move || {
    ///     bobbin::spawn(move || tx.send("late").unwrap());
    ///     let mut sel = bobbin::sync::Select::new();
    ///     sel.add_recv(&rx);
    ///     sel.select().recv(&rx)
    /// });
    /// assert_eq!(got, Ok("late"));
    /// ```
    pub fn select(&mut self) -> SelectedOperation<'a> {
        let s = self.run(Wait::Forever, false).expect("a select without a deadline returned nothing");
        self.selected(s)
    }

    /// Like [`select`](Select::select), giving up after `timeout`.
    ///
    /// # Errors
    /// [`SelectTimeoutError`] if no operation became ready in time.
    ///
    /// # Panics
    /// As [`select`](Select::select).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = bobbin::sync::bounded::<u8>(0);
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_send(&tx);
    /// // A rendezvous send with no receiver waiting is never ready.
    /// assert!(sel.select_timeout(Duration::from_millis(1)).is_err());
    /// # drop(rx);
    /// ```
    pub fn select_timeout(&mut self, timeout: Duration) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_deadline(deadline_after(timeout))
    }

    /// Like [`select`](Select::select), giving up at `deadline`.
    ///
    /// # Errors
    /// [`SelectTimeoutError`] if no operation became ready in time.
    ///
    /// # Panics
    /// As [`select`](Select::select).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let (tx, rx) = bobbin::sync::channel::<u8>();
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_recv(&rx);
    /// let soon = Instant::now() + Duration::from_millis(1);
    /// assert!(sel.select_deadline(soon).is_err()); // nothing is ready: it times out
    /// drop(tx);
    /// // Disconnected: ready, and the receive says so.
    /// let oper = sel.select_deadline(Instant::now() + Duration::from_secs(60)).unwrap();
    /// assert!(oper.recv(&rx).is_err());
    /// ```
    pub fn select_deadline(&mut self, deadline: Instant) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.run(Wait::Until(deadline), false).map(|s| self.selected(s)).ok_or(SelectTimeoutError)
    }

    /// The index of an operation that is ready now, without completing it.
    ///
    /// Readiness is a hint: another thread may take the message (or the room) before the
    /// caller acts on it, so follow it with a `try_` operation.
    ///
    /// # Errors
    /// [`TryReadyError`] if none is ready.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// let mut sel = bobbin::sync::Select::new();
    /// let i = sel.add_recv(&rx);
    /// assert!(sel.try_ready().is_err());
    /// tx.send(1).unwrap();
    /// assert_eq!(sel.try_ready(), Ok(i));
    /// assert_eq!(rx.try_recv(), Ok(1)); // `ready` took nothing
    /// ```
    pub fn try_ready(&mut self) -> Result<usize, TryReadyError> {
        self.run(Wait::Never, true).map(|s| s.oper).ok_or(TryReadyError)
    }

    /// Parks until an operation looks ready and returns its index, completing nothing.
    ///
    /// # Panics
    /// As [`select`](Select::select).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// std::thread::spawn(move || tx.send(9).unwrap());
    /// let mut sel = bobbin::sync::Select::new();
    /// let i = sel.add_recv(&rx);
    /// assert_eq!(sel.ready(), i);
    /// assert_eq!(rx.try_recv(), Ok(9));
    /// ```
    pub fn ready(&mut self) -> usize {
        self.run(Wait::Forever, true).expect("a ready without a deadline returned nothing").oper
    }

    /// Like [`ready`](Select::ready), giving up after `timeout`.
    ///
    /// # Errors
    /// [`ReadyTimeoutError`] if no operation became ready in time.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    ///
    /// let (tx, rx) = bobbin::sync::bounded(1);
    /// tx.send(()).unwrap();
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_send(&tx);
    /// assert!(sel.ready_timeout(Duration::from_millis(1)).is_err()); // full
    /// # drop(rx);
    /// ```
    pub fn ready_timeout(&mut self, timeout: Duration) -> Result<usize, ReadyTimeoutError> {
        self.run(Wait::Until(deadline_after(timeout)), true).map(|s| s.oper).ok_or(ReadyTimeoutError)
    }

    fn selected(&self, s: Selection) -> SelectedOperation<'a> {
        let (oper, addr) = self.opers.get(s.oper);
        SelectedOperation { index: s.oper, reserved: s.reserved, oper, addr, done: false }
    }

    /// The select itself; `watch` only looks for readiness, reserving nothing.
    fn run(&self, wait: Wait, watch: bool) -> Option<Selection> {
        let n = self.opers.len;
        loop {
            let start = if n > 1 { random_below(n) } else { 0 };
            for k in 0..n {
                let i = (start + k) % n;
                let op = self.opers.get(i).0;
                let found =
                    if watch { op.is_ready().then_some(false) } else { op.try_select(!matches!(wait, Wait::Never)) };
                if let Some(reserved) = found {
                    budget::spend();
                    return Some(Selection { oper: i, reserved });
                }
            }
            let deadline = match wait {
                Wait::Never => {
                    budget::spend();
                    return None;
                }
                Wait::Until(at) if Instant::now() >= at => return None,
                Wait::Until(at) => Some(at),
                Wait::Forever => None,
            };
            let waiter = if watch { Waiter::new(true) } else { Waiter::reuse() };
            let mut ready = false;
            for (i, op) in self.opers.iter().enumerate() {
                // Each operation is looked at again under the lock that lists it: an event
                // before that finds it ready here, one after it finds the entry.
                ready |= op.register(&waiter, i);
            }
            let picked = if ready {
                // Ready while registering: withdraw and claim it in the next round, unless
                // an operation has claimed this waiter already.
                waiter.try_abort().err().map(Some)
            } else {
                let reason = if watch {
                    "waiting for a channel operation to become ready (Select::ready)"
                } else {
                    "selecting over channel operations (Select / select!)"
                };
                Some(waiter.park(reason, deadline))
            };
            for op in self.opers.iter() {
                op.unregister(&waiter);
            }
            Waiter::keep(waiter);
            match picked {
                Some(Some(s)) => return Some(s),
                Some(None) => return None, // timed out
                None => {}                 // try again
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Wait {
    Never,
    Until(Instant),
    Forever,
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select").field("operations", &self.opers.len).finish()
    }
}

/// The operation a [`Select`] picked. Complete it with [`recv`](SelectedOperation::recv)
/// or [`send`](SelectedOperation::send), passing the same end that was added.
///
/// # Panics
/// If dropped without being completed (what was reserved for it is given back first, so
/// no message is lost).
///
/// # Examples
/// ```
/// let (tx, rx) = bobbin::sync::channel();
/// let mut sel = bobbin::sync::Select::new();
/// let send = sel.add_send(&tx);
/// let oper = sel.select(); // an unbounded channel always has room
/// assert_eq!(oper.index(), send);
/// oper.send(&tx, 1).unwrap();
/// assert_eq!(rx.recv(), Ok(1));
/// ```
#[must_use = "a selected operation must be completed with `recv` or `send`"]
pub struct SelectedOperation<'a> {
    index: usize,
    reserved: bool,
    oper: &'a dyn Operand,
    addr: usize,
    done: bool,
}

impl SelectedOperation<'_> {
    /// The index [`Select::add_recv`] or [`Select::add_send`] gave the operation.
    ///
    /// # Examples
    /// ```
    /// let (idle_tx, _idle_rx) = bobbin::sync::bounded::<u8>(0);
    /// let (tx, rx) = bobbin::sync::channel();
    /// tx.send(()).unwrap();
    /// let mut sel = bobbin::sync::Select::new();
    /// let first = sel.add_send(&idle_tx); // no receiver waits: never ready
    /// let second = sel.add_recv(&rx);
    /// assert_eq!((first, second), (0, 1));
    /// let oper = sel.select();
    /// assert_eq!(oper.index(), second);
    /// oper.recv(&rx).unwrap();
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes the picked receive: the message reserved for it, or the disconnection
    /// that made it ready.
    ///
    /// # Errors
    /// [`RecvError`] if the channel is empty and every sender is gone.
    ///
    /// # Panics
    /// If `r` is not the receiver whose receive was picked.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel();
    /// tx.send('m').unwrap();
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_recv(&rx);
    /// assert_eq!(sel.select().recv(&rx), Ok('m'));
    /// ```
    pub fn recv<T>(mut self, r: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            r as *const Receiver<T> as usize == self.addr,
            "SelectedOperation::recv: passed a receiver that was not the selected operation's"
        );
        self.done = true;
        r.complete_recv(self.reserved)
    }

    /// Completes the picked send with `msg`.
    ///
    /// # Errors
    /// [`SendError`] with the message if every receiver is gone.
    ///
    /// # Panics
    /// If `s` is not the sender whose send was picked.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = bobbin::sync::channel::<&str>();
    /// drop(rx);
    /// let mut sel = bobbin::sync::Select::new();
    /// sel.add_send(&tx);
    /// // Disconnected: ready, and the message comes back.
    /// assert_eq!(sel.select().send(&tx, "lost?").unwrap_err().0, "lost?");
    /// ```
    pub fn send<T>(mut self, s: &Sender<T>, msg: T) -> Result<(), SendError<T>> {
        assert!(
            s as *const Sender<T> as usize == self.addr,
            "SelectedOperation::send: passed a sender that was not the selected operation's"
        );
        self.done = true;
        s.complete_send(msg, self.reserved)
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.oper.release(self.reserved);
            if !std::thread::panicking() {
                panic!("a SelectedOperation was dropped without being completed");
            }
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation").field("index", &self.index).finish_non_exhaustive()
    }
}

thread_local! {
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// A number below `n` from a per-thread xorshift generator: which operation a select
/// tries first. Read out of line, as every thread-local a green thread touches.
#[inline(never)]
fn random_below(n: usize) -> usize {
    RANDOM.with(|r| {
        let mut x = r.get();
        if x == 0 {
            // Seeded from the generator's own address and the clock: distinct per thread.
            x = (r as *const Cell<u64> as u64) ^ Instant::now().elapsed().as_nanos() as u64 | 1;
            x ^= std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
            x |= 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x % n as u64) as usize
    })
}
