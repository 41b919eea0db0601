//! Unix-domain stream sockets: [`UnixListener`] and [`UnixStream`], like their namesakes
//! in [`std::os::unix::net`], parking the green thread where those block.
//!
//! ```
//! use std::io::{Read, Write};
//! use bobbin::net::unix::{UnixListener, UnixStream};
//!
//! let dir = std::env::temp_dir().join(format!("bobbin-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("sock");
//! let _ = std::fs::remove_file(&path);
//! bobbin::run(move || {
//!     let listener = UnixListener::bind(&path).unwrap();
//!     let server = bobbin::spawn(move || {
//!         let (mut s, _) = listener.accept().unwrap();
//!         let mut got = String::new();
//!         s.read_to_string(&mut got).unwrap();
//!         got
//!     });
//!     let mut c = UnixStream::connect(&path).unwrap();
//!     c.write_all(b"over a unix socket").unwrap();
//!     drop(c);
//!     assert_eq!(server.join().unwrap(), "over a unix socket");
//! });
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::io;
use std::net::Shutdown;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{op, Options};
use crate::io::Async;
use crate::sched::scheduler::on_green_thread;

/// A Unix-domain socket server, like [`std::os::unix::net::UnixListener`].
///
/// # Examples
/// See the [module docs](self).
pub struct UnixListener {
    io: Async<net::UnixListener>,
    options: Arc<Options>,
}

/// A Unix-domain stream, like [`std::os::unix::net::UnixStream`]; `Read` and `Write` are
/// implemented for `&UnixStream` too.
///
/// # Examples
/// See the [module docs](self).
pub struct UnixStream {
    io: Async<net::UnixStream>,
    options: Arc<Options>,
}

/// The connections of a [`UnixListener`], as [`UnixListener::incoming`] returns them.
/// Never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl UnixListener {
    /// Binds to `path`, which must not exist yet.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixListener::bind`].
    ///
    /// # Examples
    /// See the [module docs](self).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(UnixListener { io: Async::new_nonblocking(listener), options: Arc::default() })
    }

    /// Waits for a connection (parking the green thread).
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixListener::accept`].
    ///
    /// # Examples
    /// See the [module docs](self).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = op(&self.io, &self.options, false, net::UnixListener::accept)?;
        stream.set_nonblocking(true)?;
        Ok((UnixStream { io: Async::new_nonblocking(stream), options: Arc::default() }, addr))
    }

    /// [`UnixListener::accept`] in a loop, without the addresses.
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("bobbin-doc-inc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = bobbin::net::unix::UnixListener::bind(&path).unwrap();
    /// let _c = bobbin::net::unix::UnixStream::connect(&path).unwrap();
    /// assert!(l.incoming().next().unwrap().is_ok());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixListener::local_addr`].
    ///
    /// # Examples
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("bobbin-doc-la-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("sock");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = bobbin::net::unix::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// How long a green thread waits before it tries again to connect to a listener whose
/// backlog is full (a Unix-domain connect cannot be waited on for readiness).
const BACKLOG_RETRY: Duration = Duration::from_millis(1);

impl UnixStream {
    /// Connects to the socket at `path`. On a green thread, a listener whose backlog is
    /// full is retried every millisecond (sleeping the green thread), where std blocks.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixStream::connect`].
    ///
    /// # Examples
    /// See the [module docs](self).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let stream = if on_green_thread() {
            loop {
                match mio::net::UnixStream::connect(path.as_ref()) {
                    Ok(s) => break net::UnixStream::from(s),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => crate::sleep(BACKLOG_RETRY),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        } else {
            net::UnixStream::connect(path)?
        };
        stream.set_nonblocking(true)?;
        Ok(UnixStream { io: Async::new_nonblocking(stream), options: Arc::default() })
    }

    /// An unnamed pair of connected streams.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixStream::pair`].
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// bobbin::run(|| {
    ///     let (mut a, mut b) = bobbin::net::unix::UnixStream::pair().unwrap();
    ///     let reader = bobbin::spawn(move || {
    ///         let mut buf = [0; 3];
    ///         b.read_exact(&mut buf).unwrap();
    ///         buf
    ///     });
    ///     a.write_all(b"abc").unwrap();
    ///     assert_eq!(&reader.join().unwrap(), b"abc");
    /// });
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((UnixStream::from(a), UnixStream::from(b)))
    }

    /// The address of the other end.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixStream::peer_addr`].
    ///
    /// # Examples
    /// ```
    /// let (a, _b) = bobbin::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().unwrap().is_unnamed());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// The address of this end.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixStream::local_addr`].
    ///
    /// # Examples
    /// ```
    /// let (a, _b) = bobbin::net::unix::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().is_unnamed());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half or both.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixStream::shutdown`].
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = bobbin::net::unix::UnixStream::pair().unwrap();
    /// a.shutdown(bobbin::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0; 1]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

shared_methods!(UnixListener, "std::os::unix::net::UnixListener", "# let dir = std::env::temp_dir().join(format!(\"bobbin-doc-{}-{}\", std::process::id(), line!()));\n# std::fs::create_dir_all(&dir).unwrap();\n# let _ = std::fs::remove_file(dir.join(\"sock\"));\nlet s = bobbin::net::unix::UnixListener::bind(dir.join(\"sock\")).unwrap();");
fd_conversions!(UnixListener, net::UnixListener);
socket_methods!(
    UnixStream,
    "std::os::unix::net::UnixStream",
    "let (s, _peer) = bobbin::net::unix::UnixStream::pair().unwrap();"
);
stream_io!(UnixStream);
fd_conversions!(UnixStream, net::UnixStream);
