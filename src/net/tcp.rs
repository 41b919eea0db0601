//! TCP: [`TcpListener`] and [`TcpStream`].

use std::io;
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::{each_addr, op, resolve, Options};
use crate::io::{Async, OnTimeout};
use crate::sched::reactor::Direction;
use crate::sched::scheduler::on_green_thread;

/// A TCP socket server, like [`std::net::TcpListener`], whose `accept` parks the green
/// thread.
///
/// # Examples
/// ```
/// use bobbin::net::{TcpListener, TcpStream};
///
/// bobbin::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = bobbin::spawn(move || TcpStream::connect(addr).unwrap().local_addr().unwrap());
///     let (_stream, peer) = listener.accept().unwrap();
///     assert_eq!(peer, client.join().unwrap());
/// });
/// ```
pub struct TcpListener {
    io: Async<net::TcpListener>,
    options: Arc<Options>,
}

/// A TCP connection, like [`std::net::TcpStream`], whose reads, writes and connect park
/// the green thread. `Read` and `Write` are implemented for `&TcpStream` too, so one green
/// thread can read while another writes.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use bobbin::net::{TcpListener, TcpStream};
///
/// bobbin::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     bobbin::spawn(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         s.write_all(b"hi").unwrap();
///     });
///     let mut s = TcpStream::connect(addr).unwrap();
///     let mut got = String::new();
///     s.read_to_string(&mut got).unwrap();
///     assert_eq!(got, "hi");
/// });
/// ```
pub struct TcpStream {
    io: Async<net::TcpStream>,
    options: Arc<Options>,
}

/// The connections of a [`TcpListener`], as [`TcpListener::incoming`] returns them.
/// Never ends.
///
/// # Examples
/// ```
/// use bobbin::net::{Incoming, TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// let mut incoming: Incoming<'_> = l.incoming();
/// let s = incoming.next().unwrap().unwrap();
/// assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Binds to the first of `addr`'s addresses that works.
    ///
    /// # Errors
    /// As [`std::net::TcpListener::bind`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpListener> {
        let listener = each_addr(resolve(addr)?, net::TcpListener::bind)?;
        TcpListener::from_std_checked(listener)
    }

    fn from_std_checked(listener: net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { io: Async::new_nonblocking(listener), options: Arc::default() })
    }

    /// Waits for a connection (parking the green thread) and returns it with the peer's
    /// address.
    ///
    /// # Errors
    /// As [`std::net::TcpListener::accept`]: out of descriptors (`EMFILE`), say. The
    /// listener keeps working: once descriptors are free, the pending connections are
    /// accepted.
    ///
    /// # Examples
    /// ```
    /// use bobbin::net::{TcpListener, TcpStream};
    /// bobbin::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     // One OS thread: the client runs because accept parks only the green thread
    ///     // that called it, not the scheduler.
    ///     let client = bobbin::spawn(move || TcpStream::connect(addr).unwrap());
    ///     let (stream, peer) = listener.accept().unwrap();
    ///     let client = client.join().unwrap();
    ///     assert_eq!(peer, client.local_addr().unwrap());
    ///     assert_eq!(stream.local_addr().unwrap(), client.peer_addr().unwrap());
    /// });
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, addr) = op(&self.io, &self.options, false, net::TcpListener::accept)?;
        Ok((TcpStream::from_accepted(stream)?, addr))
    }

    /// An iterator over the connections as they come in: [`TcpListener::accept`] in a loop,
    /// without the addresses.
    ///
    /// # Examples
    /// ```
    /// use bobbin::net::{TcpListener, TcpStream};
    /// bobbin::run(|| {
    ///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = listener.local_addr().unwrap();
    ///     let clients: Vec<_> = (0..3).map(|_| bobbin::spawn(move || TcpStream::connect(addr).unwrap())).collect();
    ///     // The iterator never ends by itself: take as many as expected.
    ///     let accepted = listener.incoming().take(3).filter(Result::is_ok).count();
    ///     assert_eq!(accepted, 3);
    ///     for c in clients {
    ///         c.join().unwrap();
    ///     }
    /// });
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// As [`std::net::TcpListener::local_addr`].
    ///
    /// # Examples
    /// Binding port 0 lets the system pick a free port; this is how to learn it:
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0);
    /// assert!(bobbin::net::TcpStream::connect(addr).is_ok());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::TcpListener::set_ttl`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(100).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 100);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::TcpListener::ttl`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.set_ttl(42).unwrap();
    /// assert_eq!(l.ttl().unwrap(), 42);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// Connects to the first of `addr`'s addresses that accepts, parking the green thread
    /// while the connection is made (and while a host name is looked up).
    ///
    /// # Errors
    /// As [`std::net::TcpStream::connect`]: `ConnectionRefused` when nothing listens, say.
    ///
    /// # Examples
    /// ```
    /// bobbin::run(|| {
    ///     // A port nothing listens on: bind one, then close it.
    ///     let addr = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    ///     let e = bobbin::net::TcpStream::connect(addr).unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    /// });
    /// ```
    pub fn connect<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpStream> {
        each_addr(resolve(addr)?, |a| TcpStream::connect_one(a, None))
    }

    /// Connects to `addr`, giving up after `timeout`.
    ///
    /// # Errors
    /// `ErrorKind::TimedOut` if the connection was not made in time; `InvalidInput` for
    /// a zero timeout; otherwise as [`TcpStream::connect`].
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// bobbin::run(|| {
    ///     let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let s = bobbin::net::TcpStream::connect_timeout(&l.local_addr().unwrap(), Duration::from_secs(5));
    ///     assert!(s.is_ok());
    /// });
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let deadline = crate::io::deadline(timeout)?;
        TcpStream::connect_one(*addr, Some((timeout, deadline)))
    }

    fn connect_one(addr: SocketAddr, timeout: Option<(Duration, std::time::Instant)>) -> io::Result<TcpStream> {
        if !on_green_thread() {
            let stream = match timeout {
                None => net::TcpStream::connect(addr)?,
                Some((t, _)) => net::TcpStream::connect_timeout(&addr, t)?,
            };
            return TcpStream::from_accepted(stream);
        }
        // A non-blocking connect: in progress until the socket turns writable, then its
        // pending error (if any) says how it went.
        let stream: net::TcpStream = mio::net::TcpStream::connect(addr)?.into();
        let io = Async::new_nonblocking(stream);
        io.io_loop(Direction::Write, timeout.map(|(_, at)| at), OnTimeout::TimedOut, |s| {
            if let Some(e) = s.take_error()? {
                return Err(e);
            }
            match s.peer_addr() {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(e),
            }
        })?;
        Ok(TcpStream { io, options: Arc::default() })
    }

    fn from_accepted(stream: net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream { io: Async::new_nonblocking(stream), options: Arc::default() })
    }

    /// The address of the other end.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::peer_addr`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address of this end.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::local_addr`].
    ///
    /// # Examples
    /// The client's end has a port of its own, which the server sees as the peer's:
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, peer) = l.accept().unwrap();
    /// assert_eq!(c.local_addr().unwrap(), peer);
    /// assert_eq!(s.local_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both. After `Shutdown::Write` the
    /// other end reads to the end of the stream; green threads waiting to read from this
    /// socket after `Shutdown::Read` see the end of the stream.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::shutdown`].
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// bobbin::run(|| {
    ///     let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let (mut s, _) = l.accept().unwrap();
    ///     c.shutdown(bobbin::net::Shutdown::Write).unwrap();
    ///     assert_eq!(s.read(&mut [0; 8]).unwrap(), 0);
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Reads without removing what it read from the socket's queue; waits like a read.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::peek`].
    ///
    /// # Examples
    /// ```
    /// use std::io::Write;
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// c.write_all(b"abc").unwrap();
    /// let mut buf = [0; 3];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 3);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        op(&self.io, &self.options, false, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::set_nodelay`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_nodelay(true).unwrap();
    /// assert!(c.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// `TCP_NODELAY`.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::nodelay`].
    ///
    /// # Examples
    /// Off by default (Nagle's algorithm on), as for a std stream:
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(!c.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::set_ttl`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_ttl(64).unwrap();
    /// assert_eq!(c.ttl().unwrap(), 64);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::TcpStream::ttl`].
    ///
    /// # Examples
    /// ```
    /// let l = bobbin::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// c.set_ttl(17).unwrap();
    /// assert_eq!(c.ttl().unwrap(), 17);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}

shared_methods!(
    TcpListener,
    "std::net::TcpListener",
    "let s = bobbin::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();",
    "s.accept()"
);
fd_conversions!(TcpListener, net::TcpListener);
socket_methods!(TcpStream, "std::net::TcpStream", "let l = bobbin::net::TcpListener::bind(\"127.0.0.1:0\").unwrap();\nlet s = bobbin::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();", "std::io::Read::read(&mut &s, &mut [0; 1])");
stream_io!(TcpStream);
fd_conversions!(TcpStream, net::TcpStream);
