//! Networking that parks the green thread: [`TcpListener`], [`TcpStream`], [`UdpSocket`]
//! and, in [`unix`], Unix-domain sockets, shaped like their `std::net` namesakes.
//!
//! On a green thread, an operation that would block parks only that green thread: its
//! socket is registered with the I/O poller of the green thread's scheduler (see
//! [`crate::io::Async`], which these types are built on), and the scheduler runs other
//! green threads meanwhile. Outside a scheduler every call blocks the OS thread, as its
//! `std` counterpart does. Read and write timeouts are reported as std reports them on
//! Unix (`ErrorKind::WouldBlock`), `connect_timeout` as `TimedOut`; interrupted system
//! calls are retried. Name resolution (`ToSocketAddrs` with a host name) runs on another
//! OS thread while the green thread is parked, so a slow DNS server cannot stall the
//! scheduler: that is why the address must be `Send`.
//!
//! A server with one green thread per connection:
//! ```
//! use std::io::{Read, Write};
//! use bobbin::net::{TcpListener, TcpStream};
//!
//! bobbin::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     bobbin::spawn(move || {
//!         for stream in listener.incoming().take(3) {
//!             let mut stream = stream.unwrap();
//!             bobbin::spawn(move || {
//!                 let mut buf = [0; 64];
//!                 let n = stream.read(&mut buf).unwrap();
//!                 stream.write_all(&buf[..n]).unwrap();
//!             });
//!         }
//!     });
//!     let clients: Vec<_> = (0..3u8)
//!         .map(|i| bobbin::spawn(move || {
//!             let mut s = TcpStream::connect(addr).unwrap();
//!             s.write_all(&[i; 10]).unwrap();
//!             let mut back = [0; 10];
//!             s.read_exact(&mut back).unwrap();
//!             back == [i; 10]
//!         }))
//!         .collect();
//!     assert!(clients.into_iter().all(|c| c.join().unwrap()));
//! });
//! ```

/// The conversions and descriptor traits every socket type here has: `From` the std
/// type and back, `AsFd`, `AsRawFd`, `IntoRawFd`, `Debug`.
macro_rules! fd_conversions {
    ($ours:ident, $std:ty) => {
        impl From<$std> for $ours {
            /// Wraps a std socket, switching its descriptor to non-blocking mode.
            ///
            /// # Panics
            /// If the descriptor's mode cannot be set (it is not a socket).
            fn from(s: $std) -> $ours {
                s.set_nonblocking(true)
                    .unwrap_or_else(|e| panic!("bobbin: could not make a {} non-blocking: {e}", stringify!($std)));
                $ours { io: $crate::io::Async::new_nonblocking(s), options: ::std::sync::Arc::default() }
            }
        }

        impl From<$ours> for $std {
            /// Unwraps the std socket, back in blocking mode.
            fn from(s: $ours) -> $std {
                let s = s.io.into_inner();
                // Best effort: the socket is usable either way.
                let _ = s.set_nonblocking(false);
                s
            }
        }

        impl From<$ours> for ::std::os::fd::OwnedFd {
            fn from(s: $ours) -> ::std::os::fd::OwnedFd {
                <$std>::from(s).into()
            }
        }

        impl ::std::os::fd::AsFd for $ours {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(&self.io)
            }
        }

        impl ::std::os::fd::AsRawFd for $ours {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.io)
            }
        }

        impl ::std::os::fd::IntoRawFd for $ours {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                ::std::os::fd::IntoRawFd::into_raw_fd(<$std>::from(self))
            }
        }

        impl ::std::fmt::Debug for $ours {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self.io.get_ref(), f)
            }
        }
    };
}

/// The methods every socket type has: a second handle, the non-blocking mode (kept beside
/// the socket and shared by its clones, as std keeps it in the descriptor's flags), and
/// the pending error. `$std` names the std type in the docs, `$make` is the doc examples'
/// way to get a socket `s`, `$would_wait` an operation on `s` that would wait (nothing is
/// pending for it).
macro_rules! shared_methods {
    ($ty:ident, $std:literal, $make:literal, $would_wait:literal) => {
        impl $ty {
            #[doc = concat!("A second handle to the same socket (a duplicated descriptor), as [`", $std, "::try_clone`]. Timeouts and the non-blocking mode are shared.")]
            ///
            /// # Errors
            /// As std's: out of descriptors, say.
            ///
            /// # Examples
            #[doc = concat!("```\n", $make, "\nlet t = s.try_clone().unwrap();\nassert_eq!(format!(\"{:?}\", t.local_addr().unwrap()), format!(\"{:?}\", s.local_addr().unwrap()));\n```")]
            pub fn try_clone(&self) -> ::std::io::Result<$ty> {
                let io = $crate::io::Async::new_nonblocking(self.io.get_ref().try_clone()?);
                Ok($ty { io, options: ::std::sync::Arc::clone(&self.options) })
            }

            /// In non-blocking mode, an operation that would wait returns
            /// `ErrorKind::WouldBlock` instead.
            ///
            /// # Errors
            /// None: the mode is the socket's own (its descriptor is always non-blocking).
            ///
            /// # Examples
            /// An operation that has nothing to work on returns at once:
            #[doc = concat!("```\n", $make, "\ns.set_nonblocking(true).unwrap();\nlet e = ", $would_wait, ".unwrap_err();\nassert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);\n```")]
            pub fn set_nonblocking(&self, nonblocking: bool) -> ::std::io::Result<()> {
                self.options.set_nonblocking(nonblocking);
                Ok(())
            }

            /// Takes the pending error of the socket (`SO_ERROR`), if any.
            ///
            /// # Errors
            #[doc = concat!("As [`", $std, "::take_error`].")]
            ///
            /// # Examples
            #[doc = concat!("```\n", $make, "\nassert!(s.take_error().unwrap().is_none());\n```")]
            pub fn take_error(&self) -> ::std::io::Result<Option<::std::io::Error>> {
                self.io.get_ref().take_error()
            }
        }
    };
}

/// [`shared_methods`] and the read and write timeouts (shared by clones, as std keeps
/// them in socket options) of a socket type with a read and a write side.
macro_rules! socket_methods {
    ($ty:ident, $std:literal, $make:literal, $would_wait:literal) => {
        shared_methods!($ty, $std, $make, $would_wait);

        impl $ty {
            /// Makes reads (receives) give up with `ErrorKind::WouldBlock` after `timeout`,
            /// as std reports a timeout on Unix; `None` waits without limit.
            ///
            /// # Errors
            /// `InvalidInput` for a zero duration, as std.
            ///
            /// # Examples
            #[doc = concat!("```\nuse std::time::Duration;\n", $make, "\ns.set_read_timeout(Some(Duration::from_millis(1))).unwrap();\nassert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(1)));\nassert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());\n```")]
            pub fn set_read_timeout(&self, timeout: Option<::std::time::Duration>) -> ::std::io::Result<()> {
                self.options.set_read_timeout(timeout)
            }

            /// Makes writes (sends) give up with `ErrorKind::WouldBlock` after `timeout`;
            /// `None` waits without limit.
            ///
            /// # Errors
            /// `InvalidInput` for a zero duration, as std.
            ///
            /// # Examples
            #[doc = concat!("```\nuse std::time::Duration;\n", $make, "\ns.set_write_timeout(Some(Duration::from_secs(1))).unwrap();\nassert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));\n```")]
            pub fn set_write_timeout(&self, timeout: Option<::std::time::Duration>) -> ::std::io::Result<()> {
                self.options.set_write_timeout(timeout)
            }

            /// The read timeout.
            ///
            /// # Errors
            /// None; a `Result` as in std.
            ///
            /// # Examples
            #[doc = concat!("```\n", $make, "\nassert_eq!(s.read_timeout().unwrap(), None);\n```")]
            pub fn read_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                Ok(self.options.read_timeout())
            }

            /// The write timeout.
            ///
            /// # Errors
            /// None; a `Result` as in std.
            ///
            /// # Examples
            #[doc = concat!("```\n", $make, "\nassert_eq!(s.write_timeout().unwrap(), None);\n```")]
            pub fn write_timeout(&self) -> ::std::io::Result<Option<::std::time::Duration>> {
                Ok(self.options.write_timeout())
            }
        }
    };
}

/// `Read` and `Write` for a stream socket type and for a shared reference to it: reads and
/// writes that forget the readiness when they drain the socket's queue ([`stream_op`]).
macro_rules! stream_io {
    ($ty:ident) => {
        impl ::std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                $crate::net::stream_op(&self.io, &self.options, false, buf.len(), |mut s| {
                    ::std::io::Read::read(&mut s, buf)
                })
            }

            fn read_vectored(&mut self, bufs: &mut [::std::io::IoSliceMut<'_>]) -> ::std::io::Result<usize> {
                let len = $crate::net::total(bufs.iter().map(|b| b.len()));
                $crate::net::stream_op(&self.io, &self.options, false, len, |mut s| {
                    ::std::io::Read::read_vectored(&mut s, bufs)
                })
            }
        }

        impl ::std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                $crate::net::stream_op(&self.io, &self.options, true, buf.len(), |mut s| {
                    ::std::io::Write::write(&mut s, buf)
                })
            }

            fn write_vectored(&mut self, bufs: &[::std::io::IoSlice<'_>]) -> ::std::io::Result<usize> {
                let len = $crate::net::total(bufs.iter().map(|b| b.len()));
                $crate::net::stream_op(&self.io, &self.options, true, len, |mut s| {
                    ::std::io::Write::write_vectored(&mut s, bufs)
                })
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                ::std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [::std::io::IoSliceMut<'_>]) -> ::std::io::Result<usize> {
                ::std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl ::std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                ::std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[::std::io::IoSlice<'_>]) -> ::std::io::Result<usize> {
                ::std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

mod tcp;
mod udp;
pub mod unix;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use std::net::Shutdown;
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

use crate::sched::scheduler::on_green_thread;

/// Resolves `addr`; on a green thread, on another OS thread while the green thread parks.
pub(crate) fn resolve<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if !on_green_thread() {
        return addr.to_socket_addrs().map(Iterator::collect);
    }
    // A scoped thread: `addr` may borrow. The green thread waits on a channel, which
    // parks it; if it is unwound meanwhile, the scope still waits for the lookup to end
    // before anything it borrows goes away.
    std::thread::scope(|scope| {
        let (tx, rx) = crate::sync::channel();
        std::thread::Builder::new()
            .name("bobbin-resolve".into())
            .spawn_scoped(scope, move || {
                let _ = tx.send(addr.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
            })
            .map_err(|e| io::Error::new(e.kind(), format!("bobbin: could not start a name lookup thread: {e}")))?;
        rx.recv().unwrap_or_else(|_| Err(io::Error::other("bobbin: the name lookup thread failed")))
    })
}

/// Tries `connect` on each address in turn; the last error if none worked.
pub(crate) fn each_addr<T>(
    addrs: Vec<SocketAddr>,
    mut connect: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addrs {
        match connect(addr) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// The read and write timeouts of a socket, and whether it is in non-blocking mode:
/// shared by its clones, as the socket options std uses are.
#[derive(Debug, Default)]
pub(crate) struct Options {
    /// Nanoseconds; 0 for none.
    read: AtomicU64,
    write: AtomicU64,
    nonblocking: AtomicBool,
}

impl Options {
    fn set(slot: &AtomicU64, timeout: Option<Duration>) -> io::Result<()> {
        let nanos = match timeout {
            None => 0,
            Some(t) if t.is_zero() => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"))
            }
            Some(t) => u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
        };
        slot.store(nanos, Ordering::Relaxed);
        Ok(())
    }

    fn get(slot: &AtomicU64) -> Option<Duration> {
        match slot.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n)),
        }
    }

    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Options::set(&self.read, timeout)
    }

    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Options::set(&self.write, timeout)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        Options::get(&self.read)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        Options::get(&self.write)
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// How long an operation may wait: `Err(())` for not at all (non-blocking mode).
    pub(crate) fn wait_limit(&self, write: bool) -> Result<Option<Instant>, ()> {
        if self.nonblocking.load(Ordering::Relaxed) {
            return Err(());
        }
        let timeout = Options::get(if write { &self.write } else { &self.read });
        Ok(timeout.map(crate::sched::deadline_after))
    }
}

/// Runs one operation of a socket with `options`: once in non-blocking mode, otherwise
/// waiting (up to the timeout, reported as `WouldBlock`) in the direction it needs.
pub(crate) fn op<T: std::os::fd::AsFd, R>(
    io: &crate::io::Async<T>,
    options: &Options,
    write: bool,
    f: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    op_draining(io, options, write, f, |_| false)
}

/// The bytes that buffers of these lengths hold together.
pub(crate) fn total(lens: impl Iterator<Item = usize>) -> usize {
    lens.fold(0, usize::saturating_add)
}

/// [`op`] for a read or write of a stream socket that asked for `len` bytes: fewer (but
/// some) means the socket's queue was drained (or filled), and the next attempt can wait
/// for the poller without a system call first.
pub(crate) fn stream_op<T: std::os::fd::AsFd>(
    io: &crate::io::Async<T>,
    options: &Options,
    write: bool,
    len: usize,
    f: impl FnMut(&T) -> io::Result<usize>,
) -> io::Result<usize> {
    op_draining(io, options, write, f, |&n| n > 0 && n < len)
}

fn op_draining<T: std::os::fd::AsFd, R>(
    io: &crate::io::Async<T>,
    options: &Options,
    write: bool,
    mut f: impl FnMut(&T) -> io::Result<R>,
    drained: impl Fn(&R) -> bool,
) -> io::Result<R> {
    use crate::sched::reactor::Direction;
    match options.wait_limit(write) {
        Err(()) => f(io.get_ref()),
        Ok(deadline) => {
            let direction = if write { Direction::Write } else { Direction::Read };
            io.io_loop_draining(direction, deadline, crate::io::OnTimeout::WouldBlock, f, drained)
        }
    }
}
