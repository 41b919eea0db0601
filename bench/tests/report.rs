//! Runs `compare --quick --out DIR` (tiny sizes, one sample per library) and checks what
//! it wrote: `summary.md` with a table per workload whose rows all have a value, and per
//! workload an SVG chart that parses as XML, has one bar per row of that table (bars are
//! the `rect`s filled with one of the bar colours, bobbin's colour for bobbin's rows) and
//! names every library. The echo results also carry every peer's ratio to its bobbin row in
//! the table and on the chart, and every server's row counts checked round trips. A quick
//! run without `--out` must leave the committed `bench-results/` alone, and a run of some
//! workloads is named after them, not `summary.md`.

use std::path::{Path, PathBuf};
use std::process::Command;

use bobbin_bench::compare::chart::BAR_FILLS;

/// Every workload with the number of libraries (table rows, bars) it must have.
const WORKLOADS: &[(&str, usize)] = &[
    ("switch", 3),
    ("context-swap", 4),
    ("create", 4),
    ("generator", 4),
    ("spawn", 4),
    ("spawn-30k", 5),
    ("pingpong", 5),
    ("select", 4),
    ("scale", 4),
    ("fib", 4),
    ("mutex", 5),
    ("mutex-contended", 8),
    ("memory", 7),
    ("capacity", 7),
    // Quick: one configuration (10 connections, 64 B) x 9 servers.
    ("echo-rps", 9),
    ("echo-cpu", 9),
    ("echo-latency", 9),
    ("echo-idle", 9),
];

/// The cells of the table that follows the heading `## {key}: ...`, header and separator
/// rows left out.
fn table(summary: &str, key: &str) -> Vec<Vec<String>> {
    let heading = format!("## {key}: ");
    let mut lines = summary.lines().skip_while(|l| !l.starts_with(&heading));
    assert!(lines.next().is_some(), "no section {heading:?} in summary.md");
    lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// The SVG's bars as (fill colour) and the contents of its text elements.
fn svg_bars_and_texts(path: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{} is not XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let bars = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "rect")
        .filter_map(|n| n.attribute("fill").map(str::to_ascii_uppercase))
        .filter(|fill| BAR_FILLS.contains(&fill.as_str()))
        .collect();
    let texts = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    (bars, texts)
}

#[test]
fn quick_run_writes_a_table_and_a_chart_per_workload() {
    let out: PathBuf = std::env::temp_dir().join(format!("bobbin-compare-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_compare"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run compare");
    assert!(status.success(), "compare --quick failed: {status}");

    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md written");
    assert!(summary.contains("## Machine") && summary.contains("corosensei 0.3"), "machine and versions missing");
    for &(key, libraries) in WORKLOADS {
        let rows = table(&summary, key);
        assert_eq!(rows.len(), libraries, "{key}: rows in summary.md");
        assert!(rows[0][0].starts_with("bobbin"), "{key}: bobbin comes first");
        for row in &rows {
            assert_eq!(row.len(), 5, "{key}: cells of {row:?}");
            let median = row[1].split_whitespace().next().unwrap_or("").replace(',', "");
            assert!(median.parse::<f64>().is_ok_and(|v| v > 0.0), "{key}: no value for {row:?}");
            assert!(!row[4].contains("FAILED"), "{key}: {row:?}");
        }

        let (bars, texts) = svg_bars_and_texts(&out.join(format!("{key}.svg")));
        assert_eq!(bars.len(), rows.len(), "{key}.svg: one bar per library");
        for (row, fill) in rows.iter().zip(&bars) {
            // Bars are drawn in table order; bobbin's have bobbin's colour.
            assert_eq!(row[0].starts_with("bobbin"), fill == BAR_FILLS[0], "{key}.svg: colour of {}", row[0]);
            assert!(texts.iter().any(|t| *t == row[0]), "{key}.svg: no label {:?}", row[0]);
        }

        if key.starts_with("echo") {
            let groups = rows.iter().filter(|r| r[3] == "1 (reference)").count();
            assert_eq!(groups, 2, "{key}: a bobbin reference for 1 and for 2 workers");
            for row in rows.iter().filter(|r| r[3] != "1 (reference)") {
                assert!(row[3].parse::<f64>().is_ok_and(|r| r > 0.0), "{key}: no ratio to bobbin in {row:?}");
                let label = format!("({})", row[3]);
                assert!(texts.iter().any(|t| t.ends_with(&label)), "{key}.svg: no ratio {label} for {}", row[0]);
            }
        }
        if key == "echo-rps" {
            for row in &rows {
                let checked = row[4].strip_suffix(" round trips checked").map(|n| n.replace(',', ""));
                assert!(checked.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0), "{row:?}");
            }
        }
    }
    std::fs::remove_dir_all(&out).expect("remove the output directory");
}

#[test]
fn quick_run_without_out_writes_to_the_target_directory_not_over_the_committed_results() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/summary.md");
    let before = std::fs::read(&committed).expect("the committed bench-results/summary.md");
    let exe = Path::new(env!("CARGO_BIN_EXE_compare"));
    // The binary is <target>/<profile>/compare.
    let scratch = exe.parent().and_then(Path::parent).expect("a target directory").join("compare-quick");
    let _ = std::fs::remove_file(scratch.join("switch.md"));
    let status = Command::new(exe).args(["--quick", "--only", "switch"]).status().expect("run compare");
    assert!(status.success(), "compare --quick --only switch failed: {status}");

    let after = std::fs::read(&committed).expect("the committed bench-results/summary.md");
    assert!(after == before, "compare --quick rewrote the committed {}", committed.display());
    let report = std::fs::read_to_string(scratch.join("switch.md")).expect("switch.md in target/compare-quick");
    assert!(report.contains("Quick run") && report.contains("## switch: "), "not the quick run's report");
    assert!(report.contains("-- --quick --only switch`"), "the report names the command that wrote it");
}
