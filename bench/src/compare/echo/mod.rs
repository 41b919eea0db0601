//! `echo`: a TCP echo server of every library under one load generator.
//!
//! Every measurement starts two child processes of the running binary: the server
//! (`--echo-server LIBRARY WORKERS`, [`server`]), which prints the port it listens on, and
//! the load generator (`--echo-load ...`, [`load`]), the same program for every server,
//! which opens the connections, keeps one request in flight on each for a warm-up and a
//! measured window, checks every byte of every reply and reports the round trips, their
//! latencies and the server's CPU time over the window. The server is killed afterwards.
//! Client and server share the machine's cores, so the server's CPU time per request is the
//! fairer figure of its cost; requests per second also depend on how the two compete for
//! the cores.
//!
//! Rounds interleave: in each round every configuration (connections x message size) runs
//! every server once, in turn, so that drift in the machine's speed lands on all alike.
//! Resident bytes per idle connection run the same way with `--echo-idle`, which opens
//! [`Sizes::echo_idle`] connections with one round trip each and reads the server's memory
//! before and after.

pub mod load;
pub mod server;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{child, fmt_num, Row, Sizes, WorkloadResult};
use load::Measured;

/// One server configuration of the comparison.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// The library, as `--echo-server` names it.
    pub lib: &'static str,
    /// Worker threads (0 for the std server, whose threads are one per connection).
    pub workers: usize,
    /// The name in the report.
    pub name: &'static str,
}

/// Every server, in the order of the report: the one-worker group, then the two-worker
/// group, each led by bobbin (the reference of the ratios of its group). The std server
/// uses as many cores as there are, so it is compared with the two-worker group.
pub const SERVERS: &[Server] = &[
    Server { lib: "bobbin", workers: 1, name: "bobbin run, 1 worker" },
    Server { lib: "tokio", workers: 1, name: "tokio current_thread" },
    Server { lib: "may", workers: 1, name: "may, 1 worker" },
    Server { lib: "smol", workers: 1, name: "smol, 1 thread" },
    Server { lib: "bobbin", workers: 2, name: "bobbin Runtime, 2 workers" },
    Server { lib: "tokio", workers: 2, name: "tokio multi_thread, 2 workers" },
    Server { lib: "may", workers: 2, name: "may, 2 workers" },
    Server { lib: "smol", workers: 2, name: "smol, 2 threads" },
    Server { lib: "std", workers: 0, name: "std, thread per connection" },
];

/// Index in [`SERVERS`] of the bobbin row that `s` is compared with.
fn baseline(s: &Server) -> usize {
    if s.workers == 1 {
        0
    } else {
        4
    }
}

/// A child waits this long for its server to print its port.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Raises this process's limit of open descriptors to its hard limit: each side of the
/// idle test holds one per connection.
pub fn raise_nofile_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable rlimit for getrlimit to fill in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit whose soft limit does not exceed its hard limit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
}

/// The kernel's clock tick (`USER_HZ`), the unit of `/proc/PID/stat`'s CPU times.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// The hidden child modes: `flag` is `--echo-server`, `--echo-load` or `--echo-idle`,
/// `args` what follows it on the command line.
pub fn child_main(flag: &str, args: &[String]) -> ! {
    match flag {
        "--echo-server" => {
            let lib = args.first().map(String::as_str).unwrap_or("");
            let workers = args.get(1).and_then(|w| w.parse().ok()).unwrap_or(1);
            server::server_main(lib, workers)
        }
        "--echo-load" => load::load_main(args),
        "--echo-idle" => load::idle_main(args),
        other => {
            eprintln!("unknown echo mode {other:?}");
            std::process::exit(2)
        }
    }
}

/// A server child, listening.
struct Running {
    child: Child,
    port: u16,
    stderr: JoinHandle<String>,
}

impl Running {
    /// Starts the server child of `s` and waits for its port.
    fn start(s: &Server) -> Result<Running, String> {
        let workers = s.workers.to_string();
        let mut child =
            child::command(&["--echo-server", s.lib, &workers])?.spawn().map_err(|e| format!("spawn server: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child::drain(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let port = rx.recv_timeout(START_TIMEOUT).ok().and_then(|l| l.trim().strip_prefix("PORT ")?.parse().ok());
        let mut running = Running { child, port: 0, stderr };
        match port {
            Some(p) => {
                running.port = p;
                Ok(running)
            }
            None => Err(running.stop().err().unwrap_or_else(|| "the server printed no port".into())),
        }
    }

    /// Kills the server. Err: how it ended if it had exited by itself, which a server
    /// never does.
    fn stop(mut self) -> Result<(), String> {
        let exited = self.child.try_wait().ok().flatten();
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let err = self.stderr.join().unwrap_or_default();
        match exited {
            Some(status) => Err(format!("server {}", child::failure(status, &err))),
            None => Ok(()),
        }
    }
}

/// Runs the load child against a fresh server of `s`: its output on success. A server that
/// died is reported rather than the load's view of it (a closed connection).
fn with_server(
    s: &Server,
    load_args: impl FnOnce(u16, u32) -> Vec<String>,
    timeout: Duration,
) -> Result<String, String> {
    let server = Running::start(s)?;
    let args = load_args(server.port, server.child.id());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = child::run(&args, timeout).map_err(|e| format!("load generator: {e}"));
    server.stop()?;
    out
}

/// One measurement of `s` with `conns` connections and `size`-byte messages.
fn measure(s: &Server, conns: usize, size: usize, sizes: &Sizes) -> Result<Measured, String> {
    let warmup = sizes.echo_warmup.as_millis().to_string();
    let window = sizes.echo_measure.as_millis().to_string();
    let timeout = sizes.echo_warmup + sizes.echo_measure + sizes.child_timeout;
    let out = with_server(
        s,
        |port, pid| {
            [
                "--echo-load",
                &port.to_string(),
                &pid.to_string(),
                &conns.to_string(),
                &size.to_string(),
                &warmup,
                &window,
            ]
            .map(String::from)
            .to_vec()
        },
        timeout,
    )?;
    Measured::parse(&out)
}

/// Resident memory of an idle server of `s`: (VmRSS, VmPTE) growth in bytes with
/// `n` connections open.
fn idle(s: &Server, n: usize, sizes: &Sizes) -> Result<(f64, f64), String> {
    let out = with_server(
        s,
        |port, pid| ["--echo-idle", &port.to_string(), &pid.to_string(), &n.to_string()].map(String::from).to_vec(),
        sizes.child_timeout,
    )?;
    let line = out.lines().find_map(|l| l.strip_prefix("IDLE ")).ok_or("no IDLE line in the output")?;
    let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    match v[..] {
        [rss0, rss1, pte0, pte1] => Ok(((rss1 - rss0) * 1024.0, (pte1 - pte0) * 1024.0)),
        _ => Err(format!("malformed IDLE line: {line}")),
    }
}

/// `64 B`, `4 KiB`.
fn size_text(bytes: usize) -> String {
    if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// A configuration as the row names show it: `1,000 conns, 4 KiB`.
fn config_text(conns: usize, size: usize) -> String {
    format!("{} conns, {}", fmt_num(conns as f64), size_text(size))
}

/// `1 round`, `2 rounds`.
fn rounds_text(n: usize) -> String {
    format!("{n} round{}", if n == 1 { "" } else { "s" })
}

/// The median of `v` (not empty).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How the servers are built, for every echo table.
fn servers_text() -> String {
    format!(
        "Servers, each its own process: bobbin `run` (1 worker) and `Runtime` with 2 workers, `bobbin::net`; tokio \
         current_thread and multi_thread with 2 worker threads, `tokio::net`; may with 1 and 2 workers, `may::net`; \
         smol's stack (`async-executor` run by 1 or 2 threads through `async_io::block_on`, `async-net`); std, one \
         OS thread (64 KiB stack) per connection, compared with the 2-worker group. Each accepts in a loop, sets \
         `TCP_NODELAY`, starts one task per connection that reads into a {} KiB buffer and writes back what it read. \
         Ratios compare each server with bobbin on the same number of workers and the same configuration.",
        server::BUF / 1024
    )
}

/// `echo`: every configuration of `sizes.echo_configs` for every server, then resident
/// bytes per idle connection. Four results: requests per second, server CPU time per
/// request, p99 latency (p50 in the notes), bytes per idle connection.
pub fn run(sizes: &Sizes) -> Vec<WorkloadResult> {
    let per = SERVERS.len();
    let configs = &sizes.echo_configs;
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); configs.len() * per];
    let mut errors: Vec<Option<String>> = vec![None; configs.len() * per];
    let mut idle_bytes: Vec<Vec<(f64, f64)>> = vec![Vec::new(); per];
    let mut idle_errors: Vec<Option<String>> = vec![None; per];

    for round in 1..=sizes.echo_rounds {
        for (k, &(conns, size)) in configs.iter().enumerate() {
            eprint!("[echo] round {round}/{}, {}:", sizes.echo_rounds, config_text(conns, size));
            for (j, s) in SERVERS.iter().enumerate() {
                let i = k * per + j;
                if errors[i].is_some() {
                    continue;
                }
                eprint!(" {}-{}", s.lib, s.workers);
                match measure(s, conns, size, sizes) {
                    Ok(m) => measured[i].push(m),
                    Err(e) => {
                        eprint!(" FAILED");
                        errors[i] = Some(e);
                    }
                }
            }
            eprintln!();
        }
        eprint!("[echo] round {round}/{}, {} idle connections:", sizes.echo_rounds, fmt_num(sizes.echo_idle as f64));
        for (j, s) in SERVERS.iter().enumerate() {
            if idle_errors[j].is_some() {
                continue;
            }
            eprint!(" {}-{}", s.lib, s.workers);
            match idle(s, sizes.echo_idle, sizes) {
                Ok(b) => idle_bytes[j].push(b),
                Err(e) => {
                    eprint!(" FAILED");
                    idle_errors[j] = Some(e);
                }
            }
        }
        eprintln!();
    }

    let rows = |f: &dyn Fn(&mut Row, &[Measured])| -> Vec<Row> {
        let mut rows = Vec::new();
        for (k, &(conns, size)) in configs.iter().enumerate() {
            for (j, s) in SERVERS.iter().enumerate() {
                let i = k * per + j;
                let mut row = Row::new(format!("{} — {}", s.name, config_text(conns, size)), k * per + baseline(s));
                row.error = errors[i].clone();
                if !measured[i].is_empty() {
                    f(&mut row, &measured[i]);
                }
                rows.push(row);
            }
        }
        rows
    };
    let rps = rows(&|row, ms| {
        row.samples = ms.iter().map(|m| m.requests as f64 / m.secs).collect();
        let total: u64 = ms.iter().map(|m| m.requests).sum();
        row.note = format!("{} round trips checked", fmt_num(total as f64));
    });
    let cpu = rows(&|row, ms| {
        row.samples = ms.iter().map(|m| (m.user_s + m.sys_s) / m.requests as f64 * 1e6).collect();
        let (user, sys): (f64, f64) = ms.iter().fold((0.0, 0.0), |(u, s), m| (u + m.user_s, s + m.sys_s));
        let busy: f64 = ms.iter().map(|m| (m.user_s + m.sys_s) / m.secs).sum::<f64>() / ms.len() as f64;
        row.note = format!(
            "{:.0}% user, {:.0}% kernel; server busy {:.2} cores",
            100.0 * user / (user + sys).max(1e-9),
            100.0 * sys / (user + sys).max(1e-9),
            busy
        );
    });
    let latency = rows(&|row, ms| {
        row.samples = ms.iter().map(|m| m.p99_us).collect();
        let p50: Vec<f64> = ms.iter().map(|m| m.p50_us).collect();
        row.note = format!("p50 {} µs", fmt_num(median(&p50)));
    });
    let idle_rows: Vec<Row> = SERVERS
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let mut row = Row::new(s.name, baseline(s));
            row.error = idle_errors[j].clone();
            let n = sizes.echo_idle as f64;
            row.samples = idle_bytes[j].iter().map(|(rss, _)| rss / n).collect();
            if !idle_bytes[j].is_empty() {
                let pte: Vec<f64> = idle_bytes[j].iter().map(|(_, pte)| pte / n).collect();
                row.note = format!("VmPTE +{} bytes each", fmt_num(median(&pte)));
            }
            row
        })
        .collect();

    let configs_text: Vec<String> = configs.iter().map(|&(c, s)| config_text(c, s)).collect();
    let method = format!(
        "One load generator (a separate process, the same for every server: one thread, a mio epoll loop) opens \
         the connections, keeps one request in flight on each (the next message goes out when the reply to the \
         last is complete and checked byte for byte), warms up for {} ms and measures for {} ms; {}, every \
         server once per configuration and round, in turn. Configurations: {}. {}",
        sizes.echo_warmup.as_millis(),
        sizes.echo_measure.as_millis(),
        rounds_text(sizes.echo_rounds),
        configs_text.join("; "),
        servers_text()
    );
    let same = "Measured in the same runs as echo-rps, whose section says how.";
    let idle_n = fmt_num(sizes.echo_idle as f64);
    vec![
        WorkloadResult {
            key: "echo-rps",
            title: "Echo: requests per second, one load generator on the same 2 cores".into(),
            description: format!(
                "Round trips completed in the measured window over its length. The load generator and the server \
                 share the machine's cores, so this also measures how well the server leaves the client its \
                 share; see echo-cpu for what a request costs the server. {method}"
            ),
            unit: "req/s",
            lower_is_better: false,
            rows: rps,
            notes: Vec::new(),
            chart_ratios: true,
        },
        WorkloadResult {
            key: "echo-cpu",
            title: "Echo: server CPU time per request".into(),
            description: format!(
                "User + kernel CPU time of the server process (all its threads; `/proc/PID/stat`, read by the \
                 load generator at both ends of the measured window, 10 ms resolution) over the round trips \
                 completed in the window. {same}"
            ),
            unit: "µs",
            lower_is_better: true,
            rows: cpu,
            notes: Vec::new(),
            chart_ratios: true,
        },
        WorkloadResult {
            key: "echo-latency",
            title: "Echo: p99 latency of a round trip (p50 in the notes)".into(),
            description: format!(
                "99th percentile (nearest rank) of the round-trip times of the measured window, from the first \
                 byte written to the last byte of the reply read, as the load generator sees them. With a fixed \
                 number of connections each keeping one request in flight, the median follows from the rate \
                 (about connections / requests per second). {same}"
            ),
            unit: "µs",
            lower_is_better: true,
            rows: latency,
            notes: Vec::new(),
            chart_ratios: true,
        },
        WorkloadResult {
            key: "echo-idle",
            title: format!("Echo: resident bytes per idle connection ({idle_n} open)"),
            description: format!(
                "Growth of the server's VmRSS while {idle_n} connections are open and idle (each has made one \
                 64-byte round trip, so the server has accepted it and its task waits in a read), divided by \
                 {idle_n}; {}, a fresh server each time. Kernel memory (socket buffers, the std \
                 server's kernel thread stacks) is not counted; page tables (VmPTE) are in the notes. {}",
                rounds_text(sizes.echo_rounds),
                servers_text()
            ),
            unit: "bytes",
            lower_is_better: true,
            rows: idle_rows,
            notes: Vec::new(),
            chart_ratios: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_is_led_by_its_bobbin_row() {
        for s in SERVERS {
            let b = &SERVERS[baseline(s)];
            assert!(b.lib == "bobbin" && b.name.starts_with("bobbin"), "{}", s.name);
            // The std server (0: a thread per connection) uses both cores.
            assert_eq!(b.workers, if s.workers == 1 { 1 } else { 2 }, "{}", s.name);
        }
    }

    #[test]
    fn sizes_and_configurations_read_well() {
        assert_eq!(size_text(64), "64 B");
        assert_eq!(size_text(4096), "4 KiB");
        assert_eq!(config_text(1000, 4096), "1,000 conns, 4 KiB");
    }
}
