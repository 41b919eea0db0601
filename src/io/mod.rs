//! Waiting for any file descriptor without blocking the scheduler: [`Async`].
//!
//! `Async<T>` owns an I/O object with a descriptor (a pipe, a terminal, another library's
//! socket: anything `AsFd`), puts the descriptor in non-blocking mode, and turns "would
//! block" into a wait that parks only the calling green thread: the descriptor is
//! registered with the I/O poller of the green thread's scheduler, and its readiness
//! event makes the green thread ready again. Outside a scheduler the same calls block the
//! OS thread in `poll(2)`, so code using them runs anywhere. [`crate::net`] is built on it.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use bobbin::io::Async;
//!
//! bobbin::run(|| {
//!     let (a, b) = UnixStream::pair().unwrap();
//!     let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
//!     // The reader parks until the writer, a green thread of the same scheduler, writes.
//!     let reader = bobbin::spawn(move || {
//!         let mut buf = [0; 5];
//!         (&b).read_exact(&mut buf).unwrap();
//!         buf
//!     });
//!     (&a).write_all(b"hello").unwrap();
//!     assert_eq!(&reader.join().unwrap(), b"hello");
//! });
//! ```
//!
//! A descriptor may be used from green threads of several schedulers (a runtime's
//! workers, or schedulers of different threads): it is registered with each poller it is
//! waited on from, and each registration is removed when the `Async` is dropped, before
//! the descriptor is closed.

use std::fmt;
use std::io::{self, Read, Write};
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::sched::budget;
use crate::sched::reactor::{Direction, Registration, WaitError};
use crate::sched::scheduler::with_current_reactor;

/// An I/O object whose operations park the calling green thread instead of blocking its
/// scheduler. See the [module docs](self).
///
/// # Examples
/// Reading a pipe whose other end another green thread writes:
/// ```
/// use std::io::{Read, Write};
/// use bobbin::io::Async;
///
/// bobbin::run(|| {
///     let (r, w) = std::io::pipe().unwrap();
///     let (r, w) = (Async::new(r).unwrap(), Async::new(w).unwrap());
///     bobbin::spawn(move || w.write_with(|mut w| w.write(b"ping")).unwrap());
///     let mut buf = [0; 4];
///     let n = r.read_with(|mut r| r.read(&mut buf)).unwrap();
///     assert_eq!(&buf[..n], b"ping");
/// });
/// ```
pub struct Async<T: AsFd> {
    // Declared before `io`, so dropped first: a registration is removed while its
    // descriptor is still open.
    regs: Registrations,
    io: T,
}

/// The registrations of one descriptor: usually one, with the poller of the scheduler it
/// is used on; one more per other scheduler it is waited on from.
#[derive(Default)]
struct Registrations {
    first: OnceLock<Arc<Registration>>,
    more: Mutex<Vec<Arc<Registration>>>,
}

/// A registration found for the current scheduler.
enum Found<'a> {
    Borrowed(&'a Registration),
    Shared(Arc<Registration>),
}

impl Deref for Found<'_> {
    type Target = Registration;
    fn deref(&self) -> &Registration {
        match self {
            Found::Borrowed(r) => r,
            Found::Shared(r) => r,
        }
    }
}

impl Registrations {
    fn more(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Registration>>> {
        self.more.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registration with the poller named `reactor`, if there is one.
    fn find(&self, reactor: usize) -> Option<Found<'_>> {
        match self.first.get() {
            Some(r) if r.is_of(reactor) => Some(Found::Borrowed(r)),
            Some(_) => self.more().iter().find(|r| r.is_of(reactor)).map(|r| Found::Shared(Arc::clone(r))),
            None => None,
        }
    }

    /// Registers `fd` with the current scheduler's poller.
    fn add(&self, fd: RawFd) -> io::Result<Found<'_>> {
        let reg = Arc::new(with_current_reactor(|r| r.register(fd)).expect("called on a green thread")??);
        match self.first.set(Arc::clone(&reg)) {
            Ok(()) => Ok(Found::Borrowed(self.first.get().expect("just set"))),
            Err(reg) => {
                self.more().push(Arc::clone(&reg));
                Ok(Found::Shared(reg))
            }
        }
    }
}

/// What a wait that ended without readiness means to the caller.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OnTimeout {
    /// `ErrorKind::TimedOut` (this module's timeouts, `connect_timeout`).
    TimedOut,
    /// `ErrorKind::WouldBlock`, as std reports a read or write timeout on Unix.
    WouldBlock,
}

impl OnTimeout {
    fn error(self) -> io::Error {
        match self {
            OnTimeout::TimedOut => io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the descriptor"),
            OnTimeout::WouldBlock => {
                io::Error::new(io::ErrorKind::WouldBlock, "Resource temporarily unavailable (the timeout passed)")
            }
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "bobbin: the descriptor was closed while a green thread waited on it")
}

/// A timeout as a deadline; a zero timeout is refused as std refuses it.
pub(crate) fn deadline(timeout: Duration) -> io::Result<Instant> {
    if timeout.is_zero() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
    }
    Ok(crate::sched::deadline_after(timeout))
}

impl<T: AsFd> Async<T> {
    /// Puts `io`'s descriptor in non-blocking mode and wraps it. Registration with a
    /// poller happens at the first wait, on whichever scheduler it happens.
    ///
    /// # Errors
    /// If the descriptor's flags cannot be read or set.
    ///
    /// # Examples
    /// ```
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let r = bobbin::io::Async::new(r).unwrap();
    /// // Nothing written yet: the read would block, and with a timeout reports that.
    /// let mut buf = [0; 1];
    /// let e = r.read_with_timeout(std::time::Duration::from_millis(1), |mut r| std::io::Read::read(&mut r, &mut buf));
    /// assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn new(io: T) -> io::Result<Async<T>> {
        set_nonblocking(io.as_fd())?;
        Ok(Async { regs: Registrations::default(), io })
    }

    /// Wraps `io`, whose descriptor the caller has put in non-blocking mode.
    pub(crate) fn new_nonblocking(io: T) -> Async<T> {
        Async { regs: Registrations::default(), io }
    }

    /// The I/O object. Calling its own methods bypasses the waiting: its descriptor is
    /// non-blocking, so they return `WouldBlock` where `Async`'s operations would wait.
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::io::Async::new(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    /// assert_ne!(l.get_ref().local_addr().unwrap().port(), 0);
    /// // No connection is pending, and the std listener's own accept does not wait.
    /// assert_eq!(l.get_ref().accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The I/O object, mutably. Its descriptor must stay the same one, open and
    /// non-blocking.
    ///
    /// # Examples
    /// For methods that take `&mut self`, such as `Write::write` on a `PipeWriter`:
    /// ```
    /// use std::io::{Read, Write};
    /// let (r, w) = std::io::pipe().unwrap();
    /// let (r, mut w) = (bobbin::io::Async::new(r).unwrap(), bobbin::io::Async::new(w).unwrap());
    /// assert_eq!(w.get_mut().write(b"hi").unwrap(), 2);
    /// let mut buf = [0; 2];
    /// (&r).read_exact(&mut buf).unwrap();
    /// assert_eq!(&buf, b"hi");
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Removes the descriptor from every poller and returns the I/O object, still in
    /// non-blocking mode.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let mut r = bobbin::io::Async::new(r).unwrap().into_inner();
    /// // Still non-blocking: an empty pipe's read returns at once instead of waiting.
    /// assert_eq!(r.read(&mut [0; 1]).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn into_inner(self) -> T {
        let Async { regs, io } = self;
        drop(regs);
        io
    }

    /// Waits until the descriptor is reported readable (or closed, or in error). May
    /// return when a read would still block (readiness that an earlier read consumed):
    /// callers retry. Parks the green thread; outside a scheduler, blocks the OS thread.
    ///
    /// # Examples
    /// The waiting green thread parks; the writer, a green thread of the same scheduler,
    /// runs meanwhile:
    /// ```
    /// use std::io::{Read, Write};
    /// bobbin::run(|| {
    ///     let (r, mut w) = std::io::pipe().unwrap();
    ///     let r = bobbin::io::Async::new(r).unwrap();
    ///     bobbin::spawn(move || w.write_all(b"x").unwrap());
    ///     r.wait_readable().unwrap();
    ///     // The data is there: the std reader's own read does not fail with `WouldBlock`.
    ///     let mut buf = [0; 1];
    ///     assert_eq!(r.get_ref().read(&mut buf).unwrap(), 1);
    ///     assert_eq!(&buf, b"x");
    /// });
    /// ```
    pub fn wait_readable(&self) -> io::Result<()> {
        self.wait(Direction::Read, None, OnTimeout::TimedOut)
    }

    /// Waits until the descriptor is reported writable (or closed, or in error); see
    /// [`Async::wait_readable`].
    ///
    /// # Examples
    /// Waiting for a reader to make room in a full pipe:
    /// ```
    /// use std::io::{Read, Write};
    /// bobbin::run(|| {
    ///     let (r, w) = std::io::pipe().unwrap();
    ///     let (r, w) = (bobbin::io::Async::new(r).unwrap(), bobbin::io::Async::new(w).unwrap());
    ///     // Fill the pipe through the std writer, which does not wait.
    ///     let mut filled = 0;
    ///     while let Ok(n) = w.get_ref().write(&[0; 4096]) {
    ///         filled += n;
    ///     }
    ///     let reader = bobbin::spawn(move || {
    ///         (&r).read_exact(&mut vec![0; filled]).unwrap();
    ///         let mut last = [0; 1];
    ///         (&r).read_exact(&mut last).unwrap();
    ///         last
    ///     });
    ///     // Parks until the reader has made room.
    ///     w.wait_writable().unwrap();
    ///     assert_eq!(w.get_ref().write(b"x").unwrap(), 1);
    ///     assert_eq!(&reader.join().unwrap(), b"x");
    /// });
    /// ```
    pub fn wait_writable(&self) -> io::Result<()> {
        self.wait(Direction::Write, None, OnTimeout::TimedOut)
    }

    /// [`Async::wait_readable`] for at most `timeout`.
    ///
    /// # Errors
    /// `ErrorKind::TimedOut` if the descriptor was not reported readable in time;
    /// `InvalidInput` for a zero timeout.
    ///
    /// # Examples
    /// ```
    /// let (r, _w) = std::io::pipe().unwrap();
    /// let r = bobbin::io::Async::new(r).unwrap();
    /// let e = r.wait_readable_timeout(std::time::Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn wait_readable_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.wait(Direction::Read, Some(deadline(timeout)?), OnTimeout::TimedOut)
    }

    /// [`Async::wait_writable`] for at most `timeout`.
    ///
    /// # Errors
    /// `ErrorKind::TimedOut` if the descriptor was not reported writable in time;
    /// `InvalidInput` for a zero timeout.
    ///
    /// # Examples
    /// A pipe nobody reads from, once full, never turns writable:
    /// ```
    /// use std::io::Write;
    /// use std::time::Duration;
    /// let (_r, w) = std::io::pipe().unwrap();
    /// let w = bobbin::io::Async::new(w).unwrap();
    /// assert!(w.wait_writable_timeout(Duration::from_millis(1)).is_ok());
    /// while w.get_ref().write(&[0; 4096]).is_ok() {}
    /// let e = w.wait_writable_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn wait_writable_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.wait(Direction::Write, Some(deadline(timeout)?), OnTimeout::TimedOut)
    }

    /// Runs `op` until it does not fail with `WouldBlock` (or `Interrupted`), waiting for
    /// readability between tries, and returns what it returned.
    ///
    /// # Examples
    /// Any operation of the wrapped object, not only `Read`: here a datagram receive.
    /// ```
    /// use std::net::UdpSocket;
    /// bobbin::run(|| {
    ///     let a = bobbin::io::Async::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let (to, from) = (a.get_ref().local_addr().unwrap(), b.local_addr().unwrap());
    ///     // The sender runs while the receiver is parked.
    ///     bobbin::spawn(move || b.send_to(b"hey", to).unwrap());
    ///     let mut buf = [0; 8];
    ///     let (n, sender) = a.read_with(|s| s.recv_from(&mut buf)).unwrap();
    ///     assert_eq!((&buf[..n], sender), (&b"hey"[..], from));
    /// });
    /// ```
    pub fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io_loop(Direction::Read, None, OnTimeout::TimedOut, op)
    }

    /// Runs `op` until it does not fail with `WouldBlock` (or `Interrupted`), waiting for
    /// writability between tries, and returns what it returned.
    ///
    /// # Examples
    /// ```
    /// use std::net::UdpSocket;
    /// let a = bobbin::io::Async::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
    /// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let to = b.local_addr().unwrap();
    /// assert_eq!(a.write_with(|s| s.send_to(b"hey", to)).unwrap(), 3);
    /// let mut buf = [0; 8];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 3);
    /// ```
    pub fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io_loop(Direction::Write, None, OnTimeout::TimedOut, op)
    }

    /// [`Async::read_with`], giving up with `ErrorKind::TimedOut` after `timeout`.
    ///
    /// # Errors
    /// `op`'s errors; `TimedOut`; `InvalidInput` for a zero timeout.
    ///
    /// # Examples
    /// `op` is tried before any waiting, so data already there is read at once:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// let (r, mut w) = std::io::pipe().unwrap();
    /// let r = bobbin::io::Async::new(r).unwrap();
    /// w.write_all(b"x").unwrap();
    /// let mut buf = [0; 1];
    /// let n = r.read_with_timeout(Duration::from_millis(1), |mut r| r.read(&mut buf)).unwrap();
    /// assert_eq!(n, 1);
    /// // Now the pipe is empty and nothing more comes.
    /// let e = r.read_with_timeout(Duration::from_millis(1), |mut r| r.read(&mut buf)).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn read_with_timeout<R>(&self, timeout: Duration, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io_loop(Direction::Read, Some(deadline(timeout)?), OnTimeout::TimedOut, op)
    }

    /// [`Async::write_with`], giving up with `ErrorKind::TimedOut` after `timeout`.
    ///
    /// # Errors
    /// `op`'s errors; `TimedOut`; `InvalidInput` for a zero timeout.
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// let (_r, w) = std::io::pipe().unwrap();
    /// let w = bobbin::io::Async::new(w).unwrap();
    /// let n = w.write_with_timeout(std::time::Duration::from_secs(1), |mut w| w.write(b"x")).unwrap();
    /// assert_eq!(n, 1);
    /// ```
    pub fn write_with_timeout<R>(&self, timeout: Duration, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io_loop(Direction::Write, Some(deadline(timeout)?), OnTimeout::TimedOut, op)
    }

    /// The loop behind every operation: try, and on "would block" wait for readiness in
    /// `direction` until `deadline`, then try again.
    ///
    /// An attempt that succeeds looks up nothing but the first registration (an atomic
    /// load): which scheduler runs here only matters once the descriptor is not ready.
    pub(crate) fn io_loop<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        on_timeout: OnTimeout,
        op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_loop_draining(direction, deadline, on_timeout, op, |_| false)
    }

    /// [`Async::io_loop`] for an operation that can tell from its result that it left the
    /// descriptor not ready (`drained`): a stream read that filled less than its buffer
    /// emptied the receive queue, a write that took less than it was given filled the send
    /// queue. The readiness is then forgotten at once, so the next operation waits for the
    /// poller's next report instead of first making a system call that would block.
    pub(crate) fn io_loop_draining<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        on_timeout: OnTimeout,
        mut op: impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        // The registration whose readiness the next attempt is measured against.
        let mut reg: Option<Found<'_>> = self.regs.first.get().map(|r| Found::Borrowed(r));
        loop {
            let before = reg.as_ref().map(|r| r.snapshot());
            if let (Some(r), Some(b)) = (&reg, before) {
                // Known not ready on this scheduler's poller: wait before trying.
                if !b.is_ready(direction) && matches!(with_current_reactor(|c| r.is_of(c.id())), Some(Ok(true))) {
                    wait_on(r, direction, deadline, on_timeout)?;
                    continue;
                }
            }
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(r) => {
                    if let (Some(reg), Some(before)) = (&reg, before) {
                        if drained(&r) {
                            reg.clear(direction, before);
                        }
                    }
                    budget::spend();
                    return Ok(r);
                }
                Err(e) => return Err(e),
            }
            let reactor = match with_current_reactor(|r| r.id()) {
                // Outside a scheduler: block the OS thread.
                None => {
                    poll_fd(self.io.as_fd(), direction, deadline, on_timeout)?;
                    continue;
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(id)) => id,
            };
            match (&reg, before) {
                (Some(r), Some(before)) if r.is_of(reactor) => r.clear(direction, before),
                _ => match self.regs.find(reactor) {
                    // Registered here before (the descriptor was used on another scheduler
                    // since): try again against this registration's readiness.
                    Some(found) => {
                        reg = Some(found);
                        continue;
                    }
                    // A new registration starts not ready, and the poller reports at once
                    // what the descriptor is ready for: wait on it.
                    None => reg = Some(self.regs.add(self.io.as_fd().as_raw_fd())?),
                },
            }
            wait_on(reg.as_ref().expect("set above"), direction, deadline, on_timeout)?;
        }
    }

    fn wait(&self, direction: Direction, deadline: Option<Instant>, on_timeout: OnTimeout) -> io::Result<()> {
        match with_current_reactor(|r| r.id()) {
            None => poll_fd(self.io.as_fd(), direction, deadline, on_timeout),
            Some(Err(e)) => Err(e),
            Some(Ok(id)) => {
                let reg = match self.regs.find(id) {
                    Some(reg) => reg,
                    None => self.regs.add(self.io.as_fd().as_raw_fd())?,
                };
                wait_on(&reg, direction, deadline, on_timeout)
            }
        }
    }
}

fn wait_on(
    reg: &Registration,
    direction: Direction,
    deadline: Option<Instant>,
    on_timeout: OnTimeout,
) -> io::Result<()> {
    reg.wait(direction, deadline).map_err(|e| match e {
        WaitError::TimedOut => on_timeout.error(),
        WaitError::Closed => closed(),
    })
}

/// Blocks the OS thread until `fd` is ready in `direction` or `deadline` passes; retries
/// after signals.
fn poll_fd(
    fd: BorrowedFd<'_>,
    direction: Direction,
    deadline: Option<Instant>,
    on_timeout: OnTimeout,
) -> io::Result<()> {
    let events = match direction {
        Direction::Read => PollFlags::POLLIN,
        Direction::Write => PollFlags::POLLOUT,
    };
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(on_timeout.error());
                }
                // Rounded up: a wait shorter than asked would wake before the deadline.
                let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => continue, // the deadline check above decides
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_fd().as_raw_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish_non_exhaustive()
    }
}

impl<T: AsFd> Read for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|mut io| io.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with(|mut io| io.read_vectored(bufs))
    }
}

impl<T: AsFd> Write for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut io| io.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|mut io| io.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_with(|mut io| io.flush())
    }
}

impl<T: AsFd> Read for Async<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl<T: AsFd> Write for Async<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}
