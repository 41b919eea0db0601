//! UDP: [`UdpSocket`].

use std::io;
use std::net::{self, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::{each_addr, op, resolve, Options};
use crate::io::Async;

/// A UDP socket, like [`std::net::UdpSocket`], whose receives (and sends, when the
/// socket's buffer is full) park the green thread.
///
/// # Examples
/// ```
/// use bobbin::net::UdpSocket;
///
/// bobbin::run(|| {
///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
///     let a_addr = a.local_addr().unwrap();
///     let receiver = bobbin::spawn(move || {
///         let mut buf = [0; 16];
///         let (n, from) = a.recv_from(&mut buf).unwrap();
///         (buf[..n].to_vec(), from)
///     });
///     b.send_to(b"datagram", a_addr).unwrap();
///     let (data, from) = receiver.join().unwrap();
///     assert_eq!((data.as_slice(), from), (&b"datagram"[..], b.local_addr().unwrap()));
/// });
/// ```
pub struct UdpSocket {
    io: Async<net::UdpSocket>,
    options: Arc<Options>,
}

impl UdpSocket {
    /// Binds to the first of `addr`'s addresses that works.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::bind`]: `AddrInUse` for an address another socket has.
    ///
    /// # Examples
    /// ```
    /// use bobbin::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = a.local_addr().unwrap();
    /// assert_ne!(addr.port(), 0);
    /// assert_eq!(UdpSocket::bind(addr).unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<UdpSocket> {
        let socket = each_addr(resolve(addr)?, net::UdpSocket::bind)?;
        socket.set_nonblocking(true)?;
        Ok(UdpSocket { io: Async::new_nonblocking(socket), options: Arc::default() })
    }

    /// Receives one datagram and its sender's address, waiting for one.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::recv_from`]; `WouldBlock` after the read timeout.
    ///
    /// # Examples
    /// The receiver parks until the sender, a green thread of the same scheduler, sends:
    /// ```
    /// use bobbin::net::UdpSocket;
    /// bobbin::run(|| {
    ///     let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let (to, from) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    ///     bobbin::spawn(move || b.send_to(b"ping", to).unwrap());
    ///     let mut buf = [0; 16];
    ///     let (n, sender) = a.recv_from(&mut buf).unwrap();
    ///     assert_eq!((&buf[..n], sender), (&b"ping"[..], from));
    /// });
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        op(&self.io, &self.options, false, |s| s.recv_from(buf))
    }

    /// Like [`UdpSocket::recv_from`], leaving the datagram in the queue.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::peek_from`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.send_to(b"x", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 1];
    /// assert_eq!(a.peek_from(&mut buf).unwrap().0, 1);
    /// assert_eq!(a.recv_from(&mut buf).unwrap().0, 1);
    /// ```
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        op(&self.io, &self.options, false, |s| s.peek_from(buf))
    }

    /// Sends `buf` to the first address of `addr`.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::send_to`].
    ///
    /// # Examples
    /// A datagram goes whole or not at all: the count is the datagram's length.
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.send_to(b"datagram", b.local_addr().unwrap()).unwrap(), 8);
    /// let mut buf = [0; 16];
    /// assert_eq!(b.recv_from(&mut buf).unwrap(), (8, a.local_addr().unwrap()));
    /// ```
    pub fn send_to<A: ToSocketAddrs + Send>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = resolve(addr)?
            .into_iter()
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))?;
        op(&self.io, &self.options, true, |s| s.send_to(buf, to))
    }

    /// Sets the only address this socket sends to and receives from.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::connect`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// b.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"hi").unwrap();
    /// let mut buf = [0; 2];
    /// assert_eq!(b.recv(&mut buf).unwrap(), 2);
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs + Send>(&self, addr: A) -> io::Result<()> {
        each_addr(resolve(addr)?, |a| self.io.get_ref().connect(a))
    }

    /// Sends `buf` to the connected address.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::send`]: before `connect` there is nowhere to send to
    /// (`EDESTADDRREQ`).
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(a.send(b"hi").is_err());
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.send(b"hi").unwrap(), 2);
    /// assert_eq!(b.recv_from(&mut [0; 2]).unwrap(), (2, a.local_addr().unwrap()));
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        op(&self.io, &self.options, true, |s| s.send(buf))
    }

    /// Receives one datagram from the connected address, waiting for one.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::recv`]; `WouldBlock` after the read timeout.
    ///
    /// # Examples
    /// A connected socket receives only from its peer; datagrams from elsewhere are dropped:
    /// ```
    /// use bobbin::net::UdpSocket;
    /// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let (peer, stranger) = (UdpSocket::bind("127.0.0.1:0").unwrap(), UdpSocket::bind("127.0.0.1:0").unwrap());
    /// a.connect(peer.local_addr().unwrap()).unwrap();
    /// stranger.send_to(b"from elsewhere", a.local_addr().unwrap()).unwrap();
    /// peer.send_to(b"from the peer", a.local_addr().unwrap()).unwrap();
    /// let mut buf = [0; 32];
    /// let n = a.recv(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"from the peer");
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        op(&self.io, &self.options, false, |s| s.recv(buf))
    }

    /// Like [`UdpSocket::recv`], leaving the datagram in the queue.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::peek`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.connect(a.local_addr().unwrap()).unwrap();
    /// a.send(b"x").unwrap();
    /// assert_eq!(a.peek(&mut [0; 1]).unwrap(), 1);
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        op(&self.io, &self.options, false, |s| s.peek(buf))
    }

    /// The address this socket is bound to.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::local_addr`].
    ///
    /// # Examples
    /// The port the system picked for port 0:
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let addr = a.local_addr().unwrap();
    /// assert!(addr.ip().is_loopback());
    /// assert_ne!(addr.port(), 0);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected address.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::peer_addr`]: `NotConnected` before `connect`.
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let b = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(a.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// a.connect(b.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::set_broadcast`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_broadcast(true).unwrap();
    /// assert!(a.broadcast().unwrap());
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// `SO_BROADCAST`.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::broadcast`].
    ///
    /// # Examples
    /// Off by default:
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(!a.broadcast().unwrap());
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::set_ttl`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_ttl(7).unwrap();
    /// assert_eq!(a.ttl().unwrap(), 7);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// As [`std::net::UdpSocket::ttl`].
    ///
    /// # Examples
    /// ```
    /// let a = bobbin::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// a.set_ttl(33).unwrap();
    /// assert_eq!(a.ttl().unwrap(), 33);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }
}

socket_methods!(
    UdpSocket,
    "std::net::UdpSocket",
    "let s = bobbin::net::UdpSocket::bind(\"127.0.0.1:0\").unwrap();",
    "s.recv_from(&mut [0; 1])"
);
fd_conversions!(UdpSocket, net::UdpSocket);
