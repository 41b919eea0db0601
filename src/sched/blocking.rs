//! The offload pool: OS threads for work that would block a scheduler's thread.
//!
//! [`spawn_blocking`] hands a closure to a pool of plain OS threads and returns a
//! [`JoinHandle`]; joining it from a green thread parks only that green thread. The pool
//! starts threads on demand, up to [`MAX_THREADS`]; beyond that, work waits in a queue.
//! A thread that has had nothing to do for [`IDLE_TIMEOUT`] exits, so an idle program
//! keeps no threads for it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::{send_task, JoinError, JoinHandle, SendAbort, SendBody};

/// Most threads the pool runs at once; more work waits for a free thread.
///
/// # Examples
/// Twice as many blocking calls as threads all run, each once:
/// ```
/// let handles: Vec<_> = (0..2 * bobbin::sched::MAX_THREADS).map(|i| bobbin::spawn_blocking(move || i)).collect();
/// let sum: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
/// assert_eq!(sum, (0..2 * bobbin::sched::MAX_THREADS).sum());
/// ```
pub const MAX_THREADS: usize = 64;

/// How long a pool thread waits for work before it exits.
///
/// # Examples
/// ```
/// assert!(bobbin::sched::IDLE_TIMEOUT >= std::time::Duration::from_secs(1));
/// ```
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<(Option<SendBody>, SendAbort)>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool { state: Mutex::new(PoolState::default()), work: Condvar::new() })
}

/// Runs `f` on a thread of bobbin's offload pool and returns a handle to join it, as
/// [`std::thread::spawn`] does. Joining from a green thread parks only that green thread;
/// its scheduler goes on running the others meanwhile.
///
/// Use it for what would otherwise hold a scheduler's OS thread: file-system calls, name
/// resolution, a C library that blocks, a long computation that cannot yield. The pool
/// starts threads as they are needed, up to [`MAX_THREADS`] at once (more work waits for a
/// free thread), and lets them go after [`IDLE_TIMEOUT`] without work. Works outside a
/// scheduler too. A panic in `f` comes out of [`JoinHandle::join`] as a [`JoinError`];
/// if the pool cannot start a thread when it has none, the join says so.
///
/// # Examples
/// A green thread waits for a blocking call while another one keeps its scheduler busy:
/// ```
/// use std::sync::mpsc;
///
/// let got = bobbin::run(|| {
///     let (tx, rx) = mpsc::channel::<u32>();
///     // Blocks its pool thread, not the scheduler, until the green thread below sends.
///     let blocking = bobbin::spawn_blocking(move || rx.recv().unwrap() * 2);
///     let sender = bobbin::spawn(move || {
///         bobbin::yield_now();
///         tx.send(21).unwrap();
///     });
///     sender.join().unwrap();
///     blocking.join().unwrap()
/// });
/// assert_eq!(got, 42);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (body, abort, handle) = send_task(f);
    let pool = pool();
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    state.queue.push_back((body, abort));
    if state.idle > 0 {
        drop(state);
        pool.work.notify_one();
    } else if state.threads < MAX_THREADS {
        state.threads += 1;
        let spawned = std::thread::Builder::new().name("bobbin-blocking".into()).spawn(|| worker(pool));
        if let Err(e) = spawned {
            state.threads -= 1;
            // Work stays queued if another thread can take it; with none, it is refused.
            if state.threads == 0 {
                let refused: Vec<_> = state.queue.drain(..).collect();
                drop(state);
                for (body, abort) in refused {
                    drop(body);
                    abort.abort(JoinError::stopped(format!("bobbin: could not start a blocking thread: {e}")));
                }
            }
        }
    }
    handle
}

/// A pool thread: runs queued work until none comes for [`IDLE_TIMEOUT`].
fn worker(pool: &'static Pool) {
    let mut state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some((body, abort)) = state.queue.pop_front() {
            drop(state);
            // The body catches the closure's panic and completes the join itself.
            match body {
                Some(body) => body(),
                None => abort.run_body(),
            }
            state = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        state.idle += 1;
        let (next, timeout) = pool.work.wait_timeout(state, IDLE_TIMEOUT).unwrap_or_else(|e| e.into_inner());
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.queue.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}
