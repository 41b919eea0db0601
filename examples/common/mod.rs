//! What the examples read about their own process.

/// A field of `/proc/self/status` given in KiB, in bytes (0 if missing).
fn status_bytes(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Resident memory of this process, VmRSS + VmPTE (page tables), in bytes, and the number
/// of kernel mappings it has.
#[allow(dead_code)] // each example compiles this file on its own and uses what it needs
pub fn footprint() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let maps = std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0);
    (status_bytes(&status, "VmRSS:") + status_bytes(&status, "VmPTE:"), maps)
}

/// Bytes of page tables (VmPTE) this process has: a part of [`footprint`]'s figure.
#[allow(dead_code)] // as above
pub fn page_tables() -> u64 {
    status_bytes(&std::fs::read_to_string("/proc/self/status").unwrap_or_default(), "VmPTE:")
}
