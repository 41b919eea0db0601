//! Stall reports: a green thread that keeps its scheduler for long without giving control
//! back.
//!
//! Cooperative scheduling cannot preempt a green thread that computes without calling
//! bobbin (the cooperative budget only covers bobbin's own operations), and every other
//! green thread of its scheduler waits meanwhile. Such stalls are bugs that show up as
//! latency far away from their cause, so bobbin can name them: [`watch_stalls`] starts a
//! watchdog thread that looks at every scheduler a few times per threshold and reports a
//! green thread that has been running for longer than the threshold.
//!
//! Off by default: the watchdog is a thread of its own, and what counts as too long
//! depends on the program. Setting `BOBBIN_STALL_WARN_MS` in the environment turns it on
//! with that threshold in milliseconds, reporting on standard error, without changing
//! the program. A scheduler pays for it either way one counter store per switch.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// What a scheduler shows the watchdog.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// Switches into green threads so far.
    switches: AtomicU64,
    /// The green thread running now (its id + 1), or 0 between green threads.
    running: AtomicUsize,
    /// The name of the scheduler's OS thread, for the report.
    thread: String,
}

impl Probe {
    pub(crate) fn new() -> Probe {
        Probe { thread: std::thread::current().name().unwrap_or("<unnamed>").to_owned(), ..Probe::default() }
    }

    /// The scheduler switches into green thread `id`; returns how many switches it has
    /// made (the scheduler paces other work by it).
    #[inline]
    pub(crate) fn enter(&self, id: usize) -> u64 {
        // Only this scheduler's thread writes either word: a load and a store, no
        // read-modify-write. The watchdog's reads need no order with anything else.
        let n = self.switches.load(Ordering::Relaxed) + 1;
        self.switches.store(n, Ordering::Relaxed);
        self.running.store(id + 1, Ordering::Relaxed);
        n
    }

    /// The scheduler goes idle: no green thread runs. (Between two green threads it does
    /// not say so: the next switch changes the count, which is all the watchdog needs.)
    #[inline]
    pub(crate) fn idle(&self) {
        self.running.store(0, Ordering::Relaxed);
    }
}

/// A green thread that has run longer than the threshold without giving control back, as
/// [`watch_stalls`] reports it. Its `Display` is the report `BOBBIN_STALL_WARN_MS` prints.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// let stall = bobbin::Stall { thread: "main".into(), task: 3, running_for: Duration::from_millis(250) };
/// let report = stall.to_string();
/// assert!(report.starts_with("bobbin: green thread 3 on thread 'main' has run for 250ms"));
/// ```
#[derive(Clone, Debug)]
pub struct Stall {
    /// The name of the OS thread whose scheduler it stalls.
    pub thread: String,
    /// The green thread's index in its scheduler's task table.
    pub task: usize,
    /// How long it has been running at least, as the watchdog saw it.
    pub running_for: Duration,
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bobbin: green thread {} on thread '{}' has run for {:?} without yielding, parking or \
             returning; the other green threads of its scheduler are waiting",
            self.task, self.thread, self.running_for
        )
    }
}

type Report = Box<dyn Fn(&Stall) + Send + Sync>;

struct Watch {
    threshold: Duration,
    report: Report,
}

static WATCH: OnceLock<Watch> = OnceLock::new();
static PROBES: Mutex<Vec<Weak<Probe>>> = Mutex::new(Vec::new());

/// Starts a watchdog that calls `report` for every green thread, on any scheduler of the
/// process, found running for longer than `threshold` without giving control back (once
/// per such stretch). Returns false, and changes nothing, if a watchdog was already
/// started (by an earlier call, or by `BOBBIN_STALL_WARN_MS`).
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let seen = Arc::new(AtomicBool::new(false));
/// let reports = Arc::new(Mutex::new(Vec::new()));
/// let (flag, log) = (Arc::clone(&seen), Arc::clone(&reports));
/// let started = bobbin::watch_stalls(Duration::from_millis(20), move |stall| {
///     log.lock().unwrap().push(stall.clone());
///     flag.store(true, Ordering::SeqCst);
/// });
/// assert!(started);
/// // A second watchdog is refused.
/// assert!(!bobbin::watch_stalls(Duration::from_secs(1), |_| {}));
/// bobbin::run(move || {
///     // A green thread that computes without yielding until it has been reported.
///     while !seen.load(Ordering::SeqCst) {
///         std::hint::spin_loop();
///     }
/// });
/// let reports = reports.lock().unwrap();
/// assert_eq!(reports.len(), 1); // once per stretch
/// assert!(reports[0].running_for >= Duration::from_millis(20));
/// ```
pub fn watch_stalls(threshold: Duration, report: impl Fn(&Stall) + Send + Sync + 'static) -> bool {
    start(Watch { threshold, report: Box::new(report) })
}

fn start(watch: Watch) -> bool {
    let mut started = false;
    WATCH.get_or_init(|| {
        started = true;
        watch
    });
    if started {
        let spawned = std::thread::Builder::new().name("bobbin-stall-watch".into()).spawn(watchdog);
        if let Err(e) = spawned {
            eprintln!("bobbin: could not start the stall watchdog: {e}");
        }
    }
    started
}

/// Registers a scheduler's probe with the watchdog (started now or later); starts the
/// watchdog first if `BOBBIN_STALL_WARN_MS` asks for one.
pub(crate) fn register(probe: &Arc<Probe>) {
    static FROM_ENV: OnceLock<()> = OnceLock::new();
    FROM_ENV.get_or_init(|| {
        let ms = std::env::var("BOBBIN_STALL_WARN_MS").ok().and_then(|v| v.parse::<u64>().ok());
        if let Some(ms) = ms.filter(|&ms| ms > 0) {
            start(Watch { threshold: Duration::from_millis(ms), report: Box::new(|s| eprintln!("{s}")) });
        }
    });
    // Registered whether or not a watchdog runs yet: one may be started later.
    let mut probes = PROBES.lock().unwrap_or_else(|e| e.into_inner());
    probes.retain(|p| p.strong_count() > 0);
    probes.push(Arc::downgrade(probe));
}

/// Where the watchdog last saw one scheduler.
struct Seen {
    probe: Weak<Probe>,
    switches: u64,
    since: Instant,
    reported: bool,
}

fn watchdog() {
    let watch = WATCH.get().expect("set before the watchdog starts");
    let period = (watch.threshold / 4).max(Duration::from_millis(1));
    let mut seen: Vec<Seen> = Vec::new();
    loop {
        std::thread::sleep(period);
        let now = Instant::now();
        let probes: Vec<Weak<Probe>> = PROBES.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.retain(|s| s.probe.strong_count() > 0);
        for weak in probes {
            let Some(probe) = weak.upgrade() else { continue };
            let switches = probe.switches.load(Ordering::Relaxed);
            let running = probe.running.load(Ordering::Relaxed);
            let entry = match seen.iter_mut().find(|s| s.probe.ptr_eq(&weak)) {
                Some(entry) => entry,
                None => {
                    seen.push(Seen { probe: weak, switches, since: now, reported: false });
                    continue;
                }
            };
            if entry.switches != switches || running == 0 {
                *entry = Seen { probe: entry.probe.clone(), switches, since: now, reported: false };
                continue;
            }
            let running_for = now - entry.since;
            if !entry.reported && running_for >= watch.threshold {
                entry.reported = true;
                (watch.report)(&Stall { thread: probe.thread.clone(), task: running - 1, running_for });
            }
        }
    }
}
