//! What the examples read about their own process.

/// Resident memory of this process, VmRSS + VmPTE (page tables), in bytes, and the number
/// of kernel mappings it has.
pub fn footprint() -> (u64, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let maps = std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0);
    ((kib("VmRSS:") + kib("VmPTE:")) * 1024, maps)
}
