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

/// A Unix-domain socket server, like [`std::os::unix::net::UnixListener`]. Its socket
/// file stays when it is dropped, as std's does: remove it before binding the path again.
///
/// # Examples
/// ```
/// use std::io::Read;
/// use bobbin::net::unix::{UnixListener, UnixStream};
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// # static N: AtomicUsize = AtomicUsize::new(0);
/// # let path = std::env::temp_dir().join(format!("bobbin-doc-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
/// # let _ = std::fs::remove_file(&path);
/// # struct Rm(std::path::PathBuf);
/// # impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
/// # let _rm = Rm(path.clone());
/// let listener = UnixListener::bind(&path).unwrap();
/// bobbin::run(move || {
///     let server = bobbin::spawn(move || {
///         let (mut s, _) = listener.accept().unwrap();
///         let mut got = String::new();
///         s.read_to_string(&mut got).unwrap();
///         got
///     });
///     std::io::Write::write_all(&mut UnixStream::connect(&path).unwrap(), b"hi").unwrap();
///     assert_eq!(server.join().unwrap(), "hi");
/// });
/// ```
pub struct UnixListener {
    io: Async<net::UnixListener>,
    options: Arc<Options>,
}

/// A Unix-domain stream, like [`std::os::unix::net::UnixStream`]; `Read` and `Write` are
/// implemented for `&UnixStream` too, so green threads sharing one stream can read and
/// write it at the same time.
///
/// # Examples
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// bobbin::run(|| {
///     let (a, b) = bobbin::net::unix::UnixStream::pair().unwrap();
///     let a = Arc::new(a);
///     let a2 = Arc::clone(&a);
///     // One green thread parks reading `a` while another writes through it.
///     let reader = bobbin::spawn(move || {
///         let mut buf = [0; 4];
///         (&*a2).read_exact(&mut buf).unwrap();
///         buf
///     });
///     (&*a).write_all(b"ping").unwrap();
///     // The other end echoes what it got.
///     let mut got = [0; 4];
///     (&b).read_exact(&mut got).unwrap();
///     (&b).write_all(&got).unwrap();
///     assert_eq!(&reader.join().unwrap(), b"ping");
/// });
/// ```
pub struct UnixStream {
    io: Async<net::UnixStream>,
    options: Arc<Options>,
}

/// The connections of a [`UnixListener`], as [`UnixListener::incoming`] returns them.
/// Never ends.
///
/// # Examples
/// ```
/// use bobbin::net::unix::{Incoming, UnixListener, UnixStream};
/// # use std::sync::atomic::{AtomicUsize, Ordering};
/// # static N: AtomicUsize = AtomicUsize::new(0);
/// # let path = std::env::temp_dir().join(format!("bobbin-doc-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
/// # let _ = std::fs::remove_file(&path);
/// # struct Rm(std::path::PathBuf);
/// # impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
/// # let _rm = Rm(path.clone());
/// let l = UnixListener::bind(&path).unwrap();
/// let _c = UnixStream::connect(&path).unwrap();
/// let mut incoming: Incoming<'_> = l.incoming();
/// let s = incoming.next().unwrap().unwrap();
/// assert_eq!(s.local_addr().unwrap().as_pathname(), Some(path.as_path()));
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl UnixListener {
    /// Binds to `path`, which must not exist yet.
    ///
    /// # Errors
    /// As [`std::os::unix::net::UnixListener::bind`]: `AddrInUse` if `path` exists.
    ///
    /// # Examples
    /// ```
    /// use bobbin::net::unix::UnixListener;
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # static N: AtomicUsize = AtomicUsize::new(0);
    /// # let path = std::env::temp_dir().join(format!("bobbin-doc-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    /// # let _ = std::fs::remove_file(&path);
    /// # struct Rm(std::path::PathBuf);
    /// # impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
    /// # let _rm = Rm(path.clone());
    /// let l = UnixListener::bind(&path).unwrap();
    /// assert!(path.exists());
    /// // The socket file outlives the listener: a second bind needs it removed first.
    /// drop(l);
    /// assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// std::fs::remove_file(&path).unwrap();
    /// assert!(UnixListener::bind(&path).is_ok());
    /// ```
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
    /// ```
    /// use bobbin::net::unix::{UnixListener, UnixStream};
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # static N: AtomicUsize = AtomicUsize::new(0);
    /// # let path = std::env::temp_dir().join(format!("bobbin-doc-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    /// # let _ = std::fs::remove_file(&path);
    /// # struct Rm(std::path::PathBuf);
    /// # impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
    /// # let _rm = Rm(path.clone());
    /// let listener = UnixListener::bind(&path).unwrap();
    /// bobbin::run(move || {
    ///     // One OS thread: the client runs because accept parks only the green thread
    ///     // that called it, not the scheduler.
    ///     let client = bobbin::spawn(move || UnixStream::connect(&path).unwrap());
    ///     let (_stream, peer) = listener.accept().unwrap();
    ///     // The client did not bind its end to a path.
    ///     assert!(peer.is_unnamed());
    ///     assert!(client.join().unwrap().local_addr().unwrap().is_unnamed());
    /// });
    /// ```
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
    /// As [`std::os::unix::net::UnixStream::connect`]: `NotFound` if nothing is at `path`.
    ///
    /// # Examples
    /// ```
    /// use bobbin::net::unix::{UnixListener, UnixStream};
    /// # use std::sync::atomic::{AtomicUsize, Ordering};
    /// # static N: AtomicUsize = AtomicUsize::new(0);
    /// # let path = std::env::temp_dir().join(format!("bobbin-doc-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    /// # let _ = std::fs::remove_file(&path);
    /// # struct Rm(std::path::PathBuf);
    /// # impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }
    /// # let _rm = Rm(path.clone());
    /// assert_eq!(UnixStream::connect(&path).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    /// let _l = UnixListener::bind(&path).unwrap();
    /// let c = UnixStream::connect(&path).unwrap();
    /// assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// ```
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

shared_methods!(UnixListener, "std::os::unix::net::UnixListener", "# use std::sync::atomic::{AtomicUsize, Ordering};\n# static N: AtomicUsize = AtomicUsize::new(0);\n# let path = std::env::temp_dir().join(format!(\"bobbin-doc-{}-{}.sock\", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));\n# let _ = std::fs::remove_file(&path);\n# struct Rm(std::path::PathBuf);\n# impl Drop for Rm { fn drop(&mut self) { let _ = std::fs::remove_file(&self.0); } }\n# let _rm = Rm(path.clone());\nlet s = bobbin::net::unix::UnixListener::bind(&path).unwrap();", "s.accept()");
fd_conversions!(UnixListener, net::UnixListener);
socket_methods!(
    UnixStream,
    "std::os::unix::net::UnixStream",
    "let (s, _peer) = bobbin::net::unix::UnixStream::pair().unwrap();",
    "std::io::Read::read(&mut &s, &mut [0; 1])"
);
stream_io!(UnixStream);
fd_conversions!(UnixStream, net::UnixStream);
