//! Parks 1,000,000 green threads at once (or COUNT), each blocked on a channel, then wakes
//! them all, twice: the first round on fresh stacks, the second on the stacks the first
//! gave back. Prints what each green thread costs in time and resident memory, how many
//! kernel mappings the process uses, and, measured first in the same run, the kernel's
//! floor: what mapping slabs of stacks and touching one page of each costs without bobbin.
//!
//! Run with `cargo run --release --example million [-- COUNT]`. Before it starts it says
//! how much memory the count will need, and stops if that is more than the machine has
//! available.

use std::time::{Duration, Instant};

use bobbin::stack::{page_size, DEFAULT_STACK_SIZE};
use bobbin::sync::channel;
use bobbin::{run, spawn, yield_now};

mod common;
use common::{footprint as memory, page_tables};

/// Resident bytes (VmRSS + VmPTE) one parked green thread costs, rounded up: its touched
/// stack page, its task record, handle and channel waiter, and its share of page tables.
/// The memory workload of `bench-results/summary.md` measured 4,777; the run below prints
/// its own figure.
const BYTES_PER_PARKED: u64 = 4_800;

/// Stacks per slab in the floor measurement: as many as bobbin's pools carve from one
/// mapping for stacks of the default size.
const FLOOR_SLAB_STACKS: usize = 256;

/// `MADV_GUARD_INSTALL` (Linux 6.13), not yet in every libc.
const MADV_GUARD_INSTALL: libc::c_int = 102;

const USAGE: &str = "usage: cargo run --release --example million [-- COUNT]   (COUNT defaults to 1000000)";

/// `n` with thousands separated by commas.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `MemAvailable` of `/proc/meminfo` in bytes, if the kernel reports it.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Says how much memory `n` parked green threads will take; exits if the machine does
/// not have it.
fn warn_about_memory(n: usize) {
    const GIB: f64 = (1u64 << 30) as f64;
    let parked = n as u64 * BYTES_PER_PARKED;
    // The warm-ups touch half as much again, all at once.
    let needed = parked * 3 / 2;
    let available = available_memory();
    println!(
        "parking {} green threads needs about {:.2} GiB of memory ({} bytes each), and the warm-ups {:.2} GiB{}",
        grouped(n as u64),
        parked as f64 / GIB,
        grouped(BYTES_PER_PARKED),
        needed as f64 / GIB,
        available.map_or(String::new(), |a| format!("; available here: {:.1} GiB", a as f64 / GIB))
    );
    if let Some(available) = available.filter(|&a| needed > a) {
        eprintln!(
            "million: that is more than this machine has available; a count of at most {} would fit\n{USAGE}",
            grouped(available * 2 / 3 / BYTES_PER_PARKED)
        );
        std::process::exit(2);
    }
}

/// A fresh read-write anonymous mapping of `len` bytes, mapped as bobbin maps its slabs
/// (`MAP_NORESERVE`); panics naming `what` if it cannot be made.
fn map_fresh(len: usize, what: &str) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing replaces
    // nothing.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "{what} could not be mapped");
    base.cast()
}

/// Touches `bytes` of fresh memory once and gives it back, before anything is measured.
///
/// On a virtual machine, the first touch of guest memory the host has not backed yet (or
/// has taken back) costs a host fault on top of the guest's own, many times its cost; here
/// a phase that touched more memory than any before it paid that for the excess alone. The
/// floor touches less memory than the green threads (no heap records), so without this it
/// would always run inside memory the host backs and the green threads partly outside. A
/// warm-up that touches more than either, right before each phase, lets every phase
/// measure the guest kernel's work, as far as the phase is short: the host takes released
/// memory back within seconds (this machine's balloon device reports free pages), and
/// `bench-results/million.md` says what that leaves.
fn warm_up(bytes: usize) -> Duration {
    let page = page_size();
    let start = Instant::now();
    let base = map_fresh(bytes, "the warm-up");
    for offset in (0..bytes).step_by(page) {
        // SAFETY: the offset lies in the read-write mapping made above.
        unsafe { base.add(offset).write_volatile(1) };
    }
    // SAFETY: the mapping made above, which nothing refers to any more.
    unsafe { libc::munmap(base.cast(), bytes) };
    start.elapsed()
}

/// The page faults this process has taken (every first touch of a page is one) and the CPU
/// time it has spent in user space and in the kernel, so far.
#[derive(Clone, Copy)]
struct Usage {
    faults: u64,
    user: Duration,
    system: Duration,
}

impl Usage {
    fn now() -> Usage {
        // SAFETY: an all-zero rusage is a valid value for getrusage to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid rusage to write to.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        Usage {
            faults: (usage.ru_minflt + usage.ru_majflt) as u64,
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        }
    }

    /// What was spent since `earlier`, per item of `n`.
    fn each_since(self, earlier: Usage, n: usize) -> Spent {
        Spent {
            faults: (self.faults - earlier.faults) as f64 / n as f64,
            user: micros_each(self.user.saturating_sub(earlier.user), n),
            system: micros_each(self.system.saturating_sub(earlier.system), n),
        }
    }
}

/// Page faults and CPU microseconds per item. On a machine shared with other work the CPU
/// time is the steadier figure: the wall-clock time also counts the time others ran.
#[derive(Clone, Copy)]
struct Spent {
    faults: f64,
    user: f64,
    system: f64,
}

impl Spent {
    fn cpu(&self) -> f64 {
        self.user + self.system
    }
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU {:.2} µs = {:.2} user + {:.2} kernel, {:.2} page faults each",
            self.cpu(),
            self.user,
            self.system,
            self.faults
        )
    }
}

/// Microseconds per item.
fn micros_each(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// What the floor measurement found: time per stack to map, guard and touch it, time per
/// stack to unmap, and page-table bytes per stack.
struct Floor {
    make: Duration,
    spent: Spent,
    unmap: Duration,
    page_tables: u64,
}

/// The kernel's floor for `n` stacks of the default size: slabs of [`FLOOR_SLAB_STACKS`]
/// stacks mapped as bobbin maps them (`MAP_NORESERVE`), with a guard page below each stack
/// installed by one batched `process_madvise` per slab if `guards`, and the top page of
/// each stack written once (where a green thread's first frame goes). Then all of it is
/// unmapped again.
fn floor(n: usize, guards: bool) -> Floor {
    let page = page_size();
    let stride = DEFAULT_STACK_SIZE + page;
    // SAFETY: pidfd_open of this process with no flags has no preconditions; -1 on failure.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) } as libc::c_int;
    let pte_before = page_tables();
    let usage = Usage::now();
    let start = Instant::now();
    let mut slabs = Vec::new();
    let mut left = n;
    while left > 0 {
        let count = left.min(FLOOR_SLAB_STACKS);
        left -= count;
        let len = count * stride;
        let base = map_fresh(len, "the floor's slab");
        if guards {
            let iov: Vec<libc::iovec> = (0..count)
                // SAFETY: i * stride < len: the guard page lies inside the mapping.
                .map(|i| libc::iovec { iov_base: unsafe { base.add(i * stride) }.cast(), iov_len: page })
                .collect();
            // SAFETY: the ranges lie in the mapping made above, which nothing else uses.
            let rc = unsafe {
                libc::syscall(libc::SYS_process_madvise, pidfd, iov.as_ptr(), iov.len(), MADV_GUARD_INSTALL, 0)
            };
            if rc != (count * page) as libc::c_long {
                for v in &iov {
                    // SAFETY: as above.
                    unsafe { libc::madvise(v.iov_base, page, MADV_GUARD_INSTALL) };
                }
            }
        }
        for i in 0..count {
            // SAFETY: the stack's top word lies in its usable part (above its guard page),
            // mapped read-write above.
            unsafe { base.add((i + 1) * stride - 8).cast::<u64>().write_volatile(i as u64) };
        }
        slabs.push((base, len));
    }
    let make = start.elapsed();
    let spent = Usage::now().each_since(usage, n);
    let page_tables_each = page_tables().saturating_sub(pte_before) / n as u64;
    let start = Instant::now();
    for (base, len) in slabs {
        // SAFETY: each slab is a mapping made above that nothing refers to any more.
        unsafe { libc::munmap(base.cast(), len) };
    }
    if pidfd >= 0 {
        // SAFETY: the descriptor opened above, closed once.
        unsafe { libc::close(pidfd) };
    }
    Floor { make, spent, unmap: start.elapsed(), page_tables: page_tables_each }
}

/// What one round of parking `n` green threads found.
struct Round {
    /// Spawning them all and running each up to its park.
    park: Duration,
    /// Waking them all and collecting their replies (each then finishes).
    wake: Duration,
    /// Resident bytes (VmRSS + VmPTE) each parked green thread added.
    bytes_each: f64,
    /// Page-table bytes each added.
    page_tables_each: f64,
    /// Page faults and CPU time each took to be spawned and parked.
    spent: Spent,
    maps: usize,
    base_maps: usize,
    all_replied: bool,
}

/// Spawns `n` green threads that each park on a channel, then wakes them all and collects
/// their replies. Runs on a green thread.
fn park_and_wake(n: usize) -> Round {
    let (base_bytes, base_maps) = memory();
    let base_pte = page_tables();
    let usage = Usage::now();
    let start = Instant::now();
    let (go_tx, go_rx) = channel::<u32>();
    let (done_tx, done_rx) = channel::<u32>();
    for _ in 0..n {
        let rx = go_rx.clone();
        let done = done_tx.clone();
        // Detached: each green thread reports back through `done` instead of a join.
        drop(spawn(move || {
            let v = rx.recv().expect("a wake-up message");
            done.send(v).expect("the main green thread is listening");
        }));
    }
    drop(done_tx);
    // Let every green thread run up to its `recv` and park there.
    yield_now();
    let park = start.elapsed();
    let spent = Usage::now().each_since(usage, n);
    let (bytes, maps) = memory();
    let pte = page_tables();
    let wake = Instant::now();
    for i in 0..n {
        go_tx.send(i as u32 % 7).expect("receivers are parked");
    }
    let mut count = 0usize;
    let mut sum = 0u64;
    for v in done_rx.iter() {
        count += 1;
        sum += u64::from(v);
    }
    // The last replies are sent just before their green threads finish: let them.
    yield_now();
    Round {
        park,
        wake: wake.elapsed(),
        bytes_each: bytes.saturating_sub(base_bytes) as f64 / n as f64,
        page_tables_each: pte.saturating_sub(base_pte) as f64 / n as f64,
        spent,
        maps,
        base_maps,
        all_replied: count == n && sum == (0..n as u64).map(|i| i % 7).sum::<u64>(),
    }
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(arg) => match arg.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("million: {arg:?} is not a count of green threads\n{USAGE}");
                std::process::exit(2);
            }
        },
    };
    warn_about_memory(n);
    let max_map: usize =
        std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);

    // Every phase that touches fresh memory runs right after a warm-up of half as much
    // again as the green threads will touch (see `warm_up`).
    let warm = n * BYTES_PER_PARKED as usize * 3 / 2;
    let first_warm_up = warm_up(warm);
    println!(
        "warm-up before each phase: touch and free {:.1} GiB (the first took {:.2} s)",
        warm as f64 / (1u64 << 30) as f64,
        first_warm_up.as_secs_f64()
    );
    let warmed_floor = |guards| {
        warm_up(warm);
        floor(n, guards)
    };
    // Each floor twice, alternating, and the faster of the two kept: the first run of a
    // process also pays for growing its own bookkeeping.
    let faster = |a: Floor, b: Floor| if a.spent.cpu() <= b.spent.cpu() { a } else { b };
    let (bare, guarded) = (warmed_floor(false), warmed_floor(true));
    let (bare, guarded) = (faster(bare, warmed_floor(false)), faster(guarded, warmed_floor(true)));
    for (name, f) in [("without guard pages", &bare), ("with guard pages", &guarded)] {
        println!(
            "kernel floor {name}: map slabs of {FLOOR_SLAB_STACKS} stacks of {} KiB, touch one page each: \
             {:.2} µs per stack ({:.2} s; {}), page tables {} bytes per stack; unmapping {:.2} µs per stack",
            DEFAULT_STACK_SIZE / 1024,
            micros_each(f.make, n),
            f.make.as_secs_f64(),
            f.spent,
            f.page_tables,
            micros_each(f.unmap, n),
        );
    }

    warm_up(warm);
    let rounds = run(move || [park_and_wake(n), park_and_wake(n)]);
    for (i, r) in rounds.iter().enumerate() {
        let stacks = if i == 0 { "fresh stacks" } else { "reused stacks" };
        println!(
            "round {} ({stacks}): parked {} green threads in {:.2} s: {:.2} µs each to spawn, first switch and park \
             ({})",
            i + 1,
            grouped(n as u64),
            r.park.as_secs_f64(),
            micros_each(r.park, n),
            r.spent,
        );
        println!(
            "  resident memory (VmRSS + VmPTE) added per parked green thread: {:.0} bytes ({:.2} KiB), of which page tables {:.0}",
            r.bytes_each,
            r.bytes_each / 1024.0,
            r.page_tables_each,
        );
        println!(
            "  kernel mappings: {} (was {}; vm.max_map_count = {max_map}) for {} guard-paged stacks",
            r.maps,
            r.base_maps,
            grouped(n as u64)
        );
        println!(
            "  woke all and collected their replies in {:.2} s ({:.2} µs each): {}",
            r.wake.as_secs_f64(),
            micros_each(r.wake, n),
            if r.all_replied { "every reply arrived exactly once" } else { "MISMATCH" }
        );
        println!("  spawn + park + wake + finish: {:.2} µs per green thread", micros_each(r.park + r.wake, n));
    }
    println!(
        "fresh stacks against the floor with guard pages (spawn, first switch and park against map, guard and touch): \
         {:.2}x in CPU time, {:.2}x in wall-clock time",
        rounds[0].spent.cpu() / guarded.spent.cpu(),
        micros_each(rounds[0].park, n) / micros_each(guarded.make, n)
    );
    assert!(rounds.iter().all(|r| r.all_replied), "some green thread was lost or woke twice");
}
