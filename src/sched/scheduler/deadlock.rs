//! The deadlock check of an idle scheduler of `run`: whether anything could still wake a
//! green thread, and the report that names what each one waits for when nothing can.

use std::sync::Arc;

use super::Local;

/// How many parked green threads the deadlock report names one by one.
const NAMED_IN_REPORT: usize = 32;

impl Local {
    /// The report: how many green threads wait for what, then each one by name (or id)
    /// with what it waits for, up to [`NAMED_IN_REPORT`] of them.
    pub(super) fn deadlock_report(&self) -> String {
        let tasks = self.tasks.borrow();
        let mut kinds: Vec<(&'static str, usize)> = Vec::new();
        let mut each = Vec::new();
        for slot in tasks.iter().flatten() {
            if let Some(k) = slot.parked {
                match kinds.iter_mut().find(|(kk, _)| *kk == k) {
                    Some((_, n)) => *n += 1,
                    None => kinds.push((k, 1)),
                }
                if each.len() < NAMED_IN_REPORT {
                    let main = if slot.main { " (the main green thread)" } else { "" };
                    each.push(format!("green thread {}{main} {k}", slot.hook.record().thread()));
                }
            }
        }
        let parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let total: usize = kinds.iter().map(|(_, n)| n).sum();
        let more = if total > each.len() { format!("\n  and {} more", total - each.len()) } else { String::new() };
        format!(
            "bobbin: deadlock: all {} green threads are parked and nothing can wake them \
             (no timers pending, no other thread can reach them): {}\n  {}{more}",
            self.live.get(),
            parts.join(", "),
            each.join("\n  ")
        )
    }

    /// Whether a parked task can still be woken by something outside this scheduler: a
    /// wake-up from another thread is queued, or some other OS thread exists and an
    /// unparker of a parked task is alive, or a descriptor is registered with the driver.
    pub(super) fn can_be_woken_from_outside(&self) -> bool {
        let tasks = self.tasks.borrow();
        // A header referenced only by its slot, its record (which the slot lent it) and its
        // spare reference has no unparker anywhere.
        let any_unparker =
            tasks.iter().flatten().any(|s| Arc::strong_count(&s.header) > 2 + usize::from(s.spare_ref.is_some()));
        (any_unparker && other_threads_exist())
            || self.driver.has_sources()
            // Last: a thread that used its unparker and exited before the look at the
            // threads above queued its wake-up before it exited, so it is seen here.
            || self.shared.has_remote.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether the process has an OS thread besides the calling one.
///
/// From the kernel's count of the process's threads (`Threads:` in `/proc/self/status`),
/// not by listing `/proc/self/task`: a listing made while another thread exits can skip a
/// thread that is alive.
fn other_threads_exist() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return true };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_none_or(|n| n > 1)
}
