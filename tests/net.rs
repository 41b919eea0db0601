//! Sockets that park the green thread: echo servers with one green thread per connection
//! on `run` and on a runtime, partial writes, 1-byte reads, half-close, refused and reset
//! connections, timeouts (by ordering), descriptor exhaustion, signals during I/O, and no
//! descriptor leaked when a runtime drops with green threads parked on sockets.

mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bobbin::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use bobbin::sync::channel;
use bobbin::Runtime;

/// Bytes a client sends: a function of the connection and position, so a byte in the
/// wrong place or from another connection is caught.
fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ conn.wrapping_mul(7919) ^ (i >> 8)) as u8).collect()
}

/// Echoes everything until the client half-closes, then closes.
fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => s.write_all(&buf[..n]).expect("echo write"),
            Err(e) => panic!("echo read: {e}"),
        }
    }
}

/// A client that sends `len` bytes in chunks while a second green thread reads the echo
/// back, then half-closes and checks that exactly what it sent came back.
fn client(addr: SocketAddr, conn: usize, len: usize) {
    let s = Arc::new(TcpStream::connect(addr).expect("connect"));
    let data = pattern(conn, len);
    let reader = {
        let s = Arc::clone(&s);
        bobbin::spawn(move || {
            let mut back = Vec::with_capacity(len);
            (&*s).read_to_end(&mut back).expect("read the echo");
            back
        })
    };
    for chunk in data.chunks(1000) {
        (&*s).write_all(chunk).expect("client write");
    }
    s.shutdown(Shutdown::Write).expect("half-close");
    let back = reader.join().expect("reader");
    assert_eq!(back.len(), len, "connection {conn}: echoed length");
    assert!(back == data, "connection {conn}: echoed bytes differ");
}

/// Serves `conns` connections, each on its own green thread, and runs as many clients.
fn echo_round(conns: usize, len: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = bobbin::spawn(move || {
        let handles: Vec<_> =
            (0..conns).map(|_| listener.accept().unwrap().0).map(|s| bobbin::spawn(move || echo(s))).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let clients: Vec<_> = (0..conns).map(|c| bobbin::spawn(move || client(addr, c, len))).collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn echo_with_one_green_thread_per_connection_on_run() {
    bobbin::run(|| echo_round(300, 20_000));
}

#[test]
fn echo_with_one_green_thread_per_connection_on_a_two_worker_runtime() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = bobbin::runtime::spawn(move || {
            for s in listener.incoming().take(300) {
                let s = s.unwrap();
                bobbin::runtime::spawn(move || echo(s));
            }
        });
        let clients: Vec<_> = (0..300).map(|c| bobbin::runtime::spawn(move || client(addr, c, 20_000))).collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap();
    });
}

#[test]
fn a_large_write_goes_out_in_parts_and_one_byte_reads_see_every_byte() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const LEN: usize = 8 << 20; // far more than the socket buffers hold
        let writer = bobbin::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&pattern(1, LEN)).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut got = Vec::with_capacity(LEN);
        // The first 10,000 bytes one at a time, then the rest in large reads.
        let mut one = [0u8; 1];
        while got.len() < 10_000 {
            assert_eq!(c.read(&mut one).unwrap(), 1);
            got.push(one[0]);
        }
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), LEN);
        assert!(got == pattern(1, LEN));
    });
}

#[test]
fn half_close_then_read_to_the_end() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = bobbin::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = String::new();
            s.read_to_string(&mut request).unwrap(); // ends at the client's half-close
            s.write_all(format!("{} bytes", request.len()).as_bytes()).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"twelve bytes").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "12 bytes");
        server.join().unwrap();
    });
}

#[test]
fn refused_and_reset_connections_are_errors_of_the_right_kind() {
    bobbin::run(|| {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert_eq!(TcpStream::connect(closed).unwrap_err().kind(), io::ErrorKind::ConnectionRefused);

        // Closing a socket with unread data sends a reset.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        c.write_all(b"never read").unwrap();
        let (s, _) = listener.accept().unwrap();
        // The server's side has the bytes before it closes.
        let mut peek = [0; 10];
        assert_eq!(s.peek(&mut peek).unwrap(), 10);
        drop(s);
        let e = c.read(&mut [0; 16]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn a_read_timeout_is_would_block_and_comes_before_the_data() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let (timed_out_tx, timed_out_rx) = channel::<()>();
        // The server writes only once the client's read has timed out: if the timeout did
        // not fire, the read would wait for ever (and the test hang, not pass).
        let server = bobbin::spawn(move || {
            timed_out_rx.recv().unwrap();
            s.write_all(b"late").unwrap();
        });
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let e = c.read(&mut [0; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        timed_out_tx.send(()).unwrap();
        c.set_read_timeout(None).unwrap();
        let mut buf = [0; 4];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        server.join().unwrap();
    });
}

#[test]
fn a_write_timeout_is_would_block_once_the_buffers_are_full() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, _) = listener.accept().unwrap(); // never reads
        c.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
        let chunk = vec![7u8; 1 << 16];
        let mut sent = 0usize;
        let e = loop {
            match (&c).write(&chunk) {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(sent > 0);
    });
}

/// A listening socket whose accept queue is full, so that the next connection attempt
/// gets no answer (its SYN is dropped), with the connections that filled it.
fn unanswering_listener() -> (std::net::TcpListener, Vec<std::net::TcpStream>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) on a descriptor this function owns; only its backlog changes.
    let r = unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&l), 0) };
    assert_eq!(r, 0);
    let addr = l.local_addr().unwrap();
    let mut filled = Vec::new();
    // The queue holds one or two connections, depending on the kernel: fill it until an
    // attempt goes unanswered.
    loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => filled.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        assert!(filled.len() < 16, "the accept queue did not fill");
    }
    (l, filled)
}

#[test]
fn connect_timeout_is_timed_out_before_a_longer_sleep_ends() {
    let (l, _filled) = unanswering_listener();
    let addr = l.local_addr().unwrap();
    bobbin::run(move || {
        // A green thread that waits 10 s unless told to stop: the connect's timeout (50 ms)
        // must end before it does.
        let (stop_tx, stop_rx) = channel::<()>();
        let sleeper = bobbin::spawn(move || stop_rx.recv_timeout(Duration::from_secs(10)).is_err());
        let e = TcpStream::connect_timeout(&addr, Duration::from_millis(50)).unwrap_err();
        assert!(!sleeper.is_finished(), "the 10 s wait ended before the 50 ms connect timeout");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        stop_tx.send(()).unwrap();
        assert!(!sleeper.join().unwrap(), "the 10 s wait was stopped, not timed out");
    });
}

#[test]
fn accept_reports_emfile_and_serves_again_once_descriptors_are_free() {
    common::in_child_ok("accept_reports_emfile_and_serves_again_once_descriptors_are_free", || {
        bobbin::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
            // Use up every descriptor the limit allows.
            let mut hogs = Vec::new();
            let limit = open_fds() as u64 + 8;
            set_nofile_soft(limit);
            let e = loop {
                match std::fs::File::open("/dev/null") {
                    Ok(f) => hogs.push(f),
                    Err(e) => break e,
                }
            };
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
            let e = listener.accept().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
            drop(hogs);
            for _ in 0..clients.len() {
                let (mut s, _) = listener.accept().unwrap();
                s.write_all(b"ok").unwrap();
            }
            for mut c in clients {
                let mut buf = [0; 2];
                c.read_exact(&mut buf).unwrap();
                assert_eq!(&buf, b"ok");
            }
        });
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn set_nofile_soft(soft: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = soft.min(lim.rlim_max);
    // SAFETY: setrlimit reads the struct it is given.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

#[test]
fn dropping_a_runtime_with_green_threads_parked_on_sockets_closes_them() {
    common::in_child_ok("dropping_a_runtime_with_green_threads_parked_on_sockets_closes_them", || {
        // What the process keeps once it has run threads (the C library holds one
        // descriptor from the first thread it starts on), so it is not counted as a leak.
        Runtime::builder().workers(2).build().unwrap().block_on(|| ());
        let before = open_fds();
        let unwound = Arc::new(AtomicUsize::new(0));
        {
            let rt = Runtime::builder().workers(2).build().unwrap();
            // One listener nobody connects to, for the green threads parked in accept; one
            // nobody accepts from, whose queued connections never receive anything.
            let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let silent = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = silent.local_addr().unwrap();
            let (parked_tx, parked_rx) = std::sync::mpsc::channel();
            for i in 0..20 {
                let unwound = Arc::clone(&unwound);
                let parked_tx = parked_tx.clone();
                let listener = Arc::clone(&listener);
                rt.spawn(move || {
                    struct Count(Arc<AtomicUsize>);
                    impl Drop for Count {
                        fn drop(&mut self) {
                            self.0.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let _count = Count(unwound);
                    // Half of them wait in accept, half in a read no one will satisfy.
                    if i % 2 == 0 {
                        parked_tx.send(()).unwrap();
                        let _ = listener.accept();
                    } else {
                        let mut c = TcpStream::connect(addr).unwrap();
                        parked_tx.send(()).unwrap();
                        let _ = c.read(&mut [0; 1]);
                    }
                    unreachable!("nothing ever arrives");
                });
            }
            for _ in 0..20 {
                parked_rx.recv().unwrap();
            }
            drop(listener);
            drop(rt);
            drop(silent);
        }
        assert_eq!(unwound.load(Ordering::SeqCst), 20, "every parked green thread was unwound");
        assert_eq!(open_fds(), before, "descriptors before and after");
    });
}

#[test]
fn shutdown_from_another_green_thread_ends_a_waiting_read() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = Arc::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        let _s = listener.accept().unwrap();
        let reader = {
            let c = Arc::clone(&c);
            bobbin::spawn(move || (&*c).read(&mut [0; 8]))
        };
        bobbin::yield_now(); // the reader parks
        c.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

#[test]
fn a_reused_descriptor_number_starts_clean() {
    // In a child: other tests of this binary open descriptors at the same time.
    common::in_child_ok("a_reused_descriptor_number_starts_clean", || {
        bobbin::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            for round in 0..50u8 {
                // Registered (a read waited on it), made readable, then closed...
                let mut old = TcpStream::connect(addr).unwrap();
                let (mut old_peer, _) = listener.accept().unwrap();
                old.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                assert_eq!(old.read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
                old_peer.write_all(&[round]).unwrap();
                let old_fd = std::os::fd::AsRawFd::as_raw_fd(&old);
                drop(old);
                // ...and its number taken at once by a new connection with nothing to read.
                let new = TcpStream::connect(addr).unwrap();
                let (_new_peer, _) = listener.accept().unwrap();
                assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&new), old_fd, "the number is reused");
                new.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                assert_eq!((&new).read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
            }
        })
    });
}

#[test]
fn outside_a_scheduler_the_calls_block_like_std() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        echo(s);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"plain threads").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    c.read_to_string(&mut back).unwrap();
    assert_eq!(back, "plain threads");
    server.join().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    assert_eq!(u.recv(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
}

#[test]
fn host_names_are_resolved_off_the_scheduler() {
    bobbin::run(|| {
        let listener = TcpListener::bind("localhost:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let c = TcpStream::connect(("localhost", port)).unwrap();
        assert_eq!(c.peer_addr().unwrap(), listener.local_addr().unwrap());
        // A resolution failure is the lookup's error.
        assert!(TcpStream::connect("no-such-host.invalid:80").is_err());
    });
}

#[test]
fn signals_during_io_change_no_result() {
    common::in_child_ok("signals_during_io_change_no_result", || {
        extern "C" fn on_alarm(_: libc::c_int) {}
        // SAFETY: installs a handler that does nothing, without SA_RESTART, so that
        // system calls return EINTR; the struct is fully initialised by zeroing.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            assert_eq!(libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()), 0);
        }
        let every = libc::timeval { tv_sec: 0, tv_usec: 100 };
        let timer = libc::itimerval { it_interval: every, it_value: every };
        // SAFETY: setitimer reads the struct it is given.
        assert_eq!(unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) }, 0);
        bobbin::run(|| echo_round(50, 200_000));
        // Outside a scheduler too (poll(2) is interrupted).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s.write_all(b"after signals").unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, "after signals");
        t.join().unwrap();
        let off = libc::itimerval {
            it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
            it_value: libc::timeval { tv_sec: 0, tv_usec: 0 },
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setitimer(libc::ITIMER_REAL, &off, std::ptr::null_mut()) }, 0);
    });
}

#[test]
fn udp_and_unix_sockets_park_too() {
    bobbin::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a_addr = a.local_addr().unwrap();
        let receiver = bobbin::spawn(move || {
            let mut sum = 0u64;
            let mut buf = [0; 8];
            for _ in 0..100 {
                let (n, _) = a.recv_from(&mut buf).unwrap();
                sum += u64::from_le_bytes(buf[..n].try_into().unwrap());
            }
            sum
        });
        for i in 0..100u64 {
            b.send_to(&i.to_le_bytes(), a_addr).unwrap();
            bobbin::yield_now(); // no more in flight than the socket buffers
        }
        assert_eq!(receiver.join().unwrap(), 4950);

        let (x, y) = bobbin::net::unix::UnixStream::pair().unwrap();
        let echo = bobbin::spawn(move || {
            let mut buf = vec![0; 1 << 20];
            (&y).read_exact(&mut buf).unwrap();
            (&y).write_all(&buf).unwrap();
        });
        let data = pattern(9, 1 << 20);
        let writer = {
            let x = x.try_clone().unwrap();
            let data = data.clone();
            bobbin::spawn(move || (&x).write_all(&data).unwrap())
        };
        let mut back = vec![0; 1 << 20];
        (&x).read_exact(&mut back).unwrap();
        writer.join().unwrap();
        echo.join().unwrap();
        assert!(back == data);
    });
}

#[test]
fn a_green_thread_that_only_yields_does_not_starve_io() {
    bobbin::run(|| {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Never idle while this runs: the scheduler must still poll for readiness.
        let spinner = {
            let done = Arc::clone(&done);
            bobbin::spawn(move || {
                let mut turns = 0u64;
                while !done.load(Ordering::Relaxed) {
                    bobbin::yield_now();
                    turns += 1;
                }
                turns
            })
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = bobbin::spawn(move || echo(listener.accept().unwrap().0));
        let mut c = TcpStream::connect(addr).unwrap();
        for i in 0..200u32 {
            c.write_all(&i.to_le_bytes()).unwrap();
            let mut back = [0; 4];
            c.read_exact(&mut back).unwrap();
            assert_eq!(u32::from_le_bytes(back), i);
        }
        c.shutdown(Shutdown::Write).unwrap();
        server.join().unwrap();
        done.store(true, Ordering::Relaxed);
        assert!(spinner.join().unwrap() > 0);
    });
}

#[test]
fn non_blocking_mode_returns_would_block_instead_of_waiting() {
    bobbin::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        c.set_nonblocking(true).unwrap();
        // Shared with a clone, as the descriptor's flag is in std.
        let mut clone = c.try_clone().unwrap();
        assert_eq!(clone.read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_nonblocking(true).unwrap();
        assert_eq!(u.recv_from(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        let (mut a, _b) = bobbin::net::unix::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        assert_eq!(a.read(&mut [0; 1]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        // And back: the accept waits for the connection made meanwhile.
        listener.set_nonblocking(false).unwrap();
        assert!(listener.accept().is_ok());
    });
}
