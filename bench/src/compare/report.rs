//! `summary.md`: the machine, the crate versions, the method, an overview and one table
//! per workload (library, median, min-max, ratio to bobbin, notes), each with its chart.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::chart::is_floor;
use super::{fmt_num, machine, Sizes, WorkloadResult};

/// The command that writes the report, as the report and the README name it.
pub const COMMAND: &str = "cargo run --release -p bobbin-bench --bin compare";

/// The header of a workload's ratio column, saying which way is better for bobbin.
pub fn ratio_header(w: &WorkloadResult) -> &'static str {
    if !w.lower_is_better && w.unit == "req/s" {
        "bobbin / peer (> 1: bobbin serves more)"
    } else if !w.lower_is_better {
        "bobbin / peer (> 1: bobbin holds more)"
    } else if w.unit == "bytes" {
        "peer / bobbin (> 1: bobbin smaller)"
    } else {
        "peer / bobbin (> 1: bobbin faster)"
    }
}

/// `value unit`, or a dash.
fn with_unit(v: Option<f64>, unit: &str) -> String {
    v.map(|v| format!("{} {unit}", fmt_num(v))).unwrap_or_else(|| "—".into())
}

/// Escapes the characters that would break a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The date and time of `t` in UTC, `YYYY-MM-DD HH:MM UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// The overview table: per bobbin row, the best peer compared with it.
fn overview(out: &mut String, results: &[WorkloadResult]) {
    out.push_str("| workload | bobbin | best peer | ratio |\n|---|---:|---|---:|\n");
    for w in results {
        for (b, brow) in w.rows.iter().enumerate().filter(|(i, r)| r.is_bobbin() && r.baseline == *i) {
            let peers =
                w.rows.iter().enumerate().filter(|(i, r)| *i != b && r.baseline == b && !r.is_bobbin() && !is_floor(r));
            let best = peers.filter_map(|(i, r)| Some((i, r.median()?))).min_by(|x, y| {
                if w.lower_is_better {
                    x.1.total_cmp(&y.1)
                } else {
                    y.1.total_cmp(&x.1)
                }
            });
            let name = if w.rows.iter().filter(|r| r.is_bobbin()).count() > 1 {
                format!("{} ({})", w.key, brow.library)
            } else {
                w.key.to_string()
            };
            let (peer, ratio) = match best {
                Some((i, v)) => (
                    format!("{} {}", w.rows[i].library, with_unit(Some(v), w.unit)),
                    w.ratio(i).map(|r| format!("{r:.2}")).unwrap_or_else(|| "—".into()),
                ),
                None => ("—".into(), "—".into()),
            };
            let _ = writeln!(out, "| {name} | {} | {} | {ratio} |", with_unit(brow.median(), w.unit), cell(&peer));
        }
    }
    out.push_str(
        "\nRatio: the peer's median over bobbin's for times and bytes, bobbin's over the peer's for \
         capacity and requests per second; above 1 bobbin does better, below 1 the peer does.\n",
    );
}

/// Writes the whole report. `args` are the arguments of the run that the report names
/// (`--quick`, `--only ...`), as they follow `--` on the command line.
pub fn summary(results: &[WorkloadResult], sizes: &Sizes, args: &str, started: SystemTime, took: Duration) -> String {
    let mut out = String::new();
    out.push_str("# bobbin against its peers\n\n");
    let _ = writeln!(
        out,
        "Written by `{COMMAND}{}` on {} (the run took {:.1} min). Reproduce with the same command; \
         `-- --quick` runs every workload once with tiny sizes (a smoke test).\n",
        if args.is_empty() { String::new() } else { format!(" -- {args}") },
        utc(started),
        took.as_secs_f64() / 60.0
    );
    if sizes.quick {
        out.push_str(
            "**Quick run: tiny sizes and one sample per library. These numbers check that the \
             workloads and the report work; they measure nothing.**\n\n",
        );
    }
    out.push_str("## Machine\n\n| | |\n|---|---|\n");
    for (k, v) in machine::describe() {
        let _ = writeln!(out, "| {k} | {} |", cell(&v));
    }
    let _ = writeln!(
        out,
        "\nCrate versions (the Cargo.lock the binary was built with): {}.\n",
        machine::crate_versions().join(", ")
    );

    out.push_str("## Method\n\n");
    // A report of the echo workload alone has none of the in-process workloads.
    if results.iter().all(|w| w.key.starts_with("echo")) {
        out.push_str(
            "Every echo server and its load generator run in child processes of their own; the echo-rps \
             section says how. On a shared VM expect run-to-run differences of 10-25% in absolute values; \
             compare ratios within a run.\n\n",
        );
    } else {
        let _ = writeln!(
            out,
            "All libraries of a timed workload run in one process, interleaved: every library is first \
             calibrated (its batch of iterations grown until one batch takes about {} ms, or to one iteration \
             if that takes longer; this also warms it up), then {} rounds are run (spawn, spawn-30k and scale: \
             {}), and in each round every library runs one timed batch, in turn, so that drift in the machine's \
             speed lands on every library alike. Median and min-max are over those per-round values. Memory and \
             capacity run in child processes (one per library and count; memory runs {} per library, \
             interleaved), and so does every echo server and its load generator (see the echo sections). On a \
             shared VM expect run-to-run differences of 10-25% in absolute values; compare \
             ratios within a run.\n",
            sizes.sample_target.as_millis(),
            sizes.rounds,
            sizes.rounds_heavy,
            sizes.rounds_memory
        );
    }

    out.push_str("## Overview\n\n");
    overview(&mut out, results);

    for w in results {
        let _ = writeln!(out, "\n## {}: {}\n", w.key, w.title);
        let _ = writeln!(out, "![{}]({}.svg)\n", w.key, w.key);
        let _ = writeln!(out, "{}\n", w.description);
        let _ = writeln!(out, "| library | median | min – max | {} | notes |", ratio_header(w));
        out.push_str("|---|---:|---:|---:|---|\n");
        for (i, r) in w.rows.iter().enumerate() {
            // A single sample (quick runs, capacity) has no range to show.
            let range = r
                .range()
                .filter(|_| r.samples.len() > 1)
                .map(|(a, b)| format!("{} – {}", fmt_num(a), fmt_num(b)))
                .unwrap_or_else(|| "—".into());
            let ratio = if r.baseline == i {
                "1 (reference)".to_string()
            } else {
                w.ratio(i).map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into())
            };
            let note = match &r.error {
                Some(e) => format!("FAILED: {e}"),
                None => r.note.clone(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {range} | {ratio} | {} |",
                cell(&r.library),
                with_unit(r.median(), w.unit),
                cell(&note)
            );
        }
        for n in &w.notes {
            let _ = writeln!(out, "\n{n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_660)), "2000-02-29 01:01 UTC");
    }
}
