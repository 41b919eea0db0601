//! The parts of the `compare` binary: one command that measures bobbin against every peer
//! on every workload (listed in `src/bin/compare.rs`) and writes `summary.md` plus one SVG
//! chart per workload.
//!
//! How a timed workload is measured ([`run_timed`]): every library of the workload is
//! first *calibrated* (its batch of iterations is grown until one batch takes about
//! [`Sizes::sample_target`]; this doubles as its warm-up), then the workload is repeated for
//! [`Sizes::rounds`] rounds, and in every round each library runs exactly one timed batch,
//! in turn. Drift of this machine's speed over the run (other tenants of the VM, frequency
//! changes) therefore lands on every library alike instead of on whichever ran last. The
//! result of a library is the list of its per-round values; the report shows their median
//! and range.
//!
//! Memory and the largest number of parked green threads are measured in child processes
//! (see [`memory`]), and so is every server of the echo workload and its load generator
//! (see [`echo`]).

pub mod chart;
pub mod child;
pub mod echo;
pub mod locks;
pub mod machine;
pub mod memory;
pub mod report;
pub mod workloads;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Sizes of every workload: the full run, or tiny ones for a smoke test in CI.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// True for `--quick`.
    pub quick: bool,
    /// Rounds (samples per library) of the cheap workloads: switch, create, generator,
    /// pingpong.
    pub rounds: usize,
    /// Rounds of the workloads whose one iteration is a whole 100,000-task run: spawn,
    /// spawn-30k, scale.
    pub rounds_heavy: usize,
    /// Child processes per library for resident bytes per parked green thread.
    pub rounds_memory: usize,
    /// How long one timed batch should take.
    pub sample_target: Duration,
    /// Items per generator run.
    pub gen_items: u64,
    /// Green threads in `spawn` and `scale`.
    pub spawn_n: usize,
    /// Green threads in `spawn-30k`, the largest count may can map stacks for here.
    pub spawn_n_may: usize,
    /// Yields of every green thread in `spawn`, `spawn-30k` and `scale`.
    pub yields: usize,
    /// Green threads parked per child process when measuring bytes per parked thread.
    pub park_n: usize,
    /// Counts tried, in order, when looking for the largest number each library can park.
    pub capacity_ladder: Vec<usize>,
    /// Whether to bisect between the last count that worked and the first that failed.
    pub capacity_bisect: bool,
    /// A child process still running after this long is killed and reported as hung.
    pub child_timeout: Duration,
    /// Echo configurations: (connections, message bytes).
    pub echo_configs: Vec<(usize, usize)>,
    /// Echo: time every server runs under load before the measured window.
    pub echo_warmup: Duration,
    /// Echo: the measured window.
    pub echo_measure: Duration,
    /// Echo: rounds (measurements per server and configuration, and idle measurements per
    /// server).
    pub echo_rounds: usize,
    /// Echo: connections held open for resident bytes per idle connection.
    pub echo_idle: usize,
}

impl Sizes {
    /// The full run: takes a few minutes on the 2-core development VM.
    pub fn full() -> Sizes {
        Sizes {
            quick: false,
            rounds: 40,
            rounds_heavy: 15,
            rounds_memory: 3,
            sample_target: Duration::from_millis(20),
            gen_items: 1000,
            spawn_n: 100_000,
            spawn_n_may: 30_000,
            yields: 10,
            park_n: 20_000,
            capacity_ladder: vec![10_000, 20_000, 40_000, 60_000, 100_000, 200_000, 500_000, memory::CAPACITY_CAP],
            capacity_bisect: true,
            child_timeout: Duration::from_secs(120),
            echo_configs: vec![(100, 64), (100, 4096), (1000, 64), (1000, 4096)],
            echo_warmup: Duration::from_millis(500),
            echo_measure: Duration::from_secs(2),
            echo_rounds: 3,
            echo_idle: 10_000,
        }
    }

    /// `--quick`: one sample per library with tiny sizes. Checks that every workload and
    /// the report work; its numbers mean nothing.
    pub fn quick() -> Sizes {
        Sizes {
            quick: true,
            rounds: 1,
            rounds_heavy: 1,
            rounds_memory: 1,
            sample_target: Duration::from_millis(1),
            gen_items: 100,
            spawn_n: 1000,
            spawn_n_may: 1000,
            yields: 10,
            park_n: 1000,
            capacity_ladder: vec![500, 1000],
            capacity_bisect: false,
            child_timeout: Duration::from_secs(60),
            echo_configs: vec![(10, 64)],
            echo_warmup: Duration::from_millis(100),
            echo_measure: Duration::from_millis(300),
            echo_rounds: 1,
            echo_idle: 1000,
        }
    }
}

/// The measured outcome of one workload: what the report and the chart are made from.
#[derive(Clone, Debug)]
pub struct WorkloadResult {
    /// Short name, also the chart's file name (`<key>.svg`).
    pub key: &'static str,
    /// One line saying what is measured.
    pub title: String,
    /// How it is measured, for the report (Markdown).
    pub description: String,
    /// Unit of every value, e.g. `ns`.
    pub unit: &'static str,
    /// True for times and bytes; false for counts where more is better.
    pub lower_is_better: bool,
    /// One row per library, in the order they are shown.
    pub rows: Vec<Row>,
    /// Remarks appended under the table (Markdown).
    pub notes: Vec<String>,
    /// Whether the chart writes each peer's ratio to bobbin after its value (for workloads
    /// whose chart holds several groups, each with its own bobbin row).
    pub chart_ratios: bool,
}

/// One library's result within a workload.
#[derive(Clone, Debug)]
pub struct Row {
    /// The library (and variant) measured.
    pub library: String,
    /// Index of the bobbin row this row's ratio is computed against (a bobbin row points
    /// at itself).
    pub baseline: usize,
    /// The value of every sample, in the workload's unit.
    pub samples: Vec<f64>,
    /// Why the library has no (or fewer) samples, if it failed.
    pub error: Option<String>,
    /// A remark shown in the table's last column.
    pub note: String,
}

impl Row {
    /// A row with no samples yet.
    pub fn new(library: impl Into<String>, baseline: usize) -> Row {
        Row { library: library.into(), baseline, samples: Vec::new(), error: None, note: String::new() }
    }

    /// The median of the samples (the mean of the middle two for an even count).
    pub fn median(&self) -> Option<f64> {
        let mut v = self.samples.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
    }

    /// The smallest and largest sample.
    pub fn range(&self) -> Option<(f64, f64)> {
        let min = self.samples.iter().copied().min_by(f64::total_cmp)?;
        let max = self.samples.iter().copied().max_by(f64::total_cmp)?;
        Some((min, max))
    }

    /// True if this row is bobbin's (drawn in bobbin's colour, the reference of ratios).
    pub fn is_bobbin(&self) -> bool {
        self.library.starts_with("bobbin")
    }
}

impl WorkloadResult {
    /// The ratio shown for row `i`, oriented so that above 1 means bobbin did better:
    /// peer / bobbin for times and bytes, bobbin / peer for counts.
    pub fn ratio(&self, i: usize) -> Option<f64> {
        let row = &self.rows[i];
        let own = row.median()?;
        let base = self.rows[row.baseline].median()?;
        if self.lower_is_better {
            Some(own / base)
        } else {
            Some(base / own)
        }
    }
}

/// How a timed workload's per-iteration time becomes the value reported.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Units of work per iteration (2 messages per ping-pong round trip, N items per
    /// generator run, ...): the value is per unit.
    pub per_iter: f64,
    /// Nanoseconds per reported unit of time: 1 for ns, 1e6 for ms.
    pub ns_per_unit: f64,
}

/// One library of a timed workload.
pub struct Entry<'a> {
    /// The library (and variant).
    pub library: String,
    /// Index of the bobbin entry its ratio is computed against.
    pub baseline: usize,
    /// Runs the given number of iterations and returns the time they took (set-up that is
    /// not part of the workload may happen outside the returned time).
    pub run: Box<dyn FnMut(u64) -> Duration + 'a>,
}

impl<'a> Entry<'a> {
    /// An entry compared against entry 0.
    pub fn new(library: impl Into<String>, run: impl FnMut(u64) -> Duration + 'a) -> Entry<'a> {
        Entry::against(library, 0, run)
    }

    /// An entry compared against entry `baseline`.
    pub fn against(library: impl Into<String>, baseline: usize, run: impl FnMut(u64) -> Duration + 'a) -> Entry<'a> {
        Entry { library: library.into(), baseline, run: Box::new(run) }
    }
}

/// A timed workload ready to be measured: the caller builds the entries (and with them
/// any runtimes they keep), [`run_timed`] measures them.
pub struct Timed<'a> {
    /// See [`WorkloadResult::key`].
    pub key: &'static str,
    /// See [`WorkloadResult::title`].
    pub title: String,
    /// See [`WorkloadResult::description`].
    pub description: String,
    /// See [`WorkloadResult::unit`].
    pub unit: &'static str,
    /// How to turn time per iteration into the reported value.
    pub scale: Scale,
    /// Rounds to run.
    pub rounds: usize,
    /// The libraries.
    pub entries: Vec<Entry<'a>>,
}

/// Runs `f`, turning a panic into an error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".to_string())
    })
}

/// Finds the batch size of one entry: grows it until a batch takes at least a tenth of
/// `target`, then scales it so that a batch takes about `target`. A single iteration
/// that already takes longer than `target` gives a batch of 1.
fn calibrate(run: &mut dyn FnMut(u64) -> Duration, target: Duration) -> u64 {
    let mut iters: u64 = 1;
    loop {
        let took = run(iters).as_secs_f64();
        let wanted = target.as_secs_f64();
        if took >= wanted / 10.0 || iters >= 1 << 40 {
            return ((iters as f64 * wanted / took.max(1e-9)).round() as u64).max(1);
        }
        // Grow by at most 100x per step, and at least 2x.
        let factor = if took > 0.0 { (wanted / took).clamp(2.0, 100.0) } else { 100.0 };
        iters = (iters as f64 * factor).ceil() as u64;
    }
}

/// Measures a timed workload, interleaved: after calibrating every entry, `rounds` rounds
/// of one batch per entry, in turn. Progress goes to stderr. An entry that panics is
/// reported with the panic message and left out of the remaining rounds.
pub fn run_timed(mut w: Timed<'_>, sizes: &Sizes) -> WorkloadResult {
    let mut rows: Vec<Row> = w.entries.iter().map(|e| Row::new(e.library.clone(), e.baseline)).collect();
    let mut batch = vec![0u64; w.entries.len()];

    for (i, e) in w.entries.iter_mut().enumerate() {
        eprintln!("[{}] calibrating {}", w.key, e.library);
        match guarded(|| calibrate(&mut e.run, sizes.sample_target)) {
            Ok(n) => batch[i] = n,
            Err(msg) => rows[i].error = Some(msg),
        }
    }
    for round in 1..=w.rounds {
        eprint!("[{}] round {round}/{}:", w.key, w.rounds);
        for (i, e) in w.entries.iter_mut().enumerate() {
            if rows[i].error.is_some() {
                continue;
            }
            eprint!(" {}", e.library);
            let _ = std::io::stderr().flush();
            let iters = batch[i];
            match guarded(|| (e.run)(iters)) {
                Ok(took) => {
                    let per_iter_ns = took.as_nanos() as f64 / iters as f64;
                    rows[i].samples.push(per_iter_ns / w.scale.per_iter / w.scale.ns_per_unit);
                }
                Err(msg) => rows[i].error = Some(msg),
            }
        }
        eprintln!();
    }
    for (i, row) in rows.iter_mut().enumerate() {
        if row.error.is_none() {
            let unit = if batch[i] == 1 { "iteration" } else { "iterations" };
            row.note = format!("{} {unit} per sample", fmt_num(batch[i] as f64));
        }
    }
    WorkloadResult {
        key: w.key,
        title: w.title,
        description: w.description,
        unit: w.unit,
        lower_is_better: true,
        rows,
        notes: Vec::new(),
        chart_ratios: false,
    }
}

/// Formats a number with three significant digits (at least), and thousands separators
/// for large ones: `0.612`, `19.4`, `4,713`.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if v == v.trunc() && a < 1000.0 {
        format!("{v:.0}")
    } else if a >= 1000.0 {
        let s = format!("{:.0}", a);
        let mut out = String::new();
        for (k, c) in s.chars().enumerate() {
            if k > 0 && (s.len() - k) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(0.6123), "0.612");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(19.44), "19.4");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(4713.2), "4,713");
        assert_eq!(fmt_num(1_000_000.0), "1,000,000");
    }

    #[test]
    fn median_and_ratio() {
        let mut a = Row::new("bobbin", 0);
        a.samples = vec![3.0, 1.0, 2.0];
        let mut b = Row::new("peer", 0);
        b.samples = vec![4.0, 8.0];
        assert_eq!(a.median(), Some(2.0));
        assert_eq!(b.median(), Some(6.0));
        assert_eq!(b.range(), Some((4.0, 8.0)));
        let mut w = WorkloadResult {
            key: "k",
            title: String::new(),
            description: String::new(),
            unit: "ns",
            lower_is_better: true,
            rows: vec![a, b],
            notes: vec![],
            chart_ratios: false,
        };
        assert_eq!(w.ratio(1), Some(3.0));
        w.lower_is_better = false;
        assert_eq!(w.ratio(1), Some(1.0 / 3.0));
    }
}
