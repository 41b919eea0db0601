//! The machine and the code a report was measured on.

use std::process::Command;

/// The workspace's lock file as it was when this binary was compiled: the versions of
/// the peers it was built with (cargo rebuilds the binary when the file changes).
const CARGO_LOCK: &str = include_str!("../../../Cargo.lock");

/// The crates whose versions the report names.
pub const CRATES: &[&str] = &[
    "bobbin",
    "corosensei",
    "context",
    "generator",
    "may",
    "tokio",
    "async-executor",
    "futures",
    "futures-lite",
    "async-io",
    "async-net",
    "mio",
    "plotters",
];

/// Facts about the machine and the build, as `(label, value)` pairs for the report.
pub fn describe() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let logical = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let usable = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let read_trim =
        |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into());
    vec![
        ("CPU (/proc/cpuinfo)", cpu),
        ("logical CPUs", format!("{logical} (usable by this process: {usable})")),
        ("memory", mem_total),
        ("kernel (uname -r)", read_trim("/proc/sys/kernel/osrelease")),
        ("vm.max_map_count", read_trim("/proc/sys/vm/max_map_count")),
        ("rustc", command_line("rustc", &["-V"])),
        ("bobbin commit", bobbin_commit()),
    ]
}

/// The first line a command prints, or why there is none.
fn command_line(cmd: &str, args: &[&str]) -> String {
    // Under `cargo run`, RUSTC is not set but rustup's proxy picks the same toolchain.
    let cmd = if cmd == "rustc" { std::env::var("RUSTC").unwrap_or_else(|_| cmd.to_string()) } else { cmd.to_string() };
    match Command::new(&cmd).args(args).output() {
        Ok(o) if o.status.success() => {
            String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string()
        }
        Ok(o) => format!("`{cmd}` failed: {}", o.status),
        Err(e) => format!("`{cmd}` not run: {e}"),
    }
}

/// The commit of the workspace the binary was built from, read at run time with git, and
/// whether the library's sources (`src/`, `asm/`, `Cargo.toml`) differ from it.
fn bobbin_commit() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git =
        |args: &[&str]| Command::new("git").arg("-C").arg(root).args(args).output().ok().filter(|o| o.status.success());
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(o) => {
            let hash = String::from_utf8_lossy(&o.stdout).trim().to_string();
            // Only the library's own sources matter here, not the benchmarks' files.
            let lib = ["status", "--porcelain", "--untracked-files=no", "--", "src", "asm", "Cargo.toml"];
            match git(&lib) {
                Some(o) if o.stdout.is_empty() => format!("{hash} (library sources as committed)"),
                Some(_) => format!("{hash} (with uncommitted changes to the library sources)"),
                None => hash,
            }
        }
        None => "unknown (git not available)".into(),
    }
}

/// The versions of `name` in the lock file this binary was built with.
pub fn locked_versions(name: &str) -> Vec<String> {
    let mut versions = Vec::new();
    let mut lines = CARGO_LOCK.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            if let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = \"")) {
                versions.push(v.trim_end_matches('"').to_string());
            }
        }
    }
    versions
}

/// `name version` for every crate of [`CRATES`].
pub fn crate_versions() -> Vec<String> {
    CRATES
        .iter()
        .map(|c| {
            let v = locked_versions(c);
            format!("{c} {}", if v.is_empty() { "?".to_string() } else { v.join(" / ") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lock_file_names_the_peers() {
        for c in super::CRATES {
            assert!(!super::locked_versions(c).is_empty(), "{c} not in Cargo.lock");
        }
    }
}
