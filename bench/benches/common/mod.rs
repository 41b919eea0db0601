//! Settings shared by the benchmark files.

use std::time::Duration;

use criterion::Criterion;

/// Short warm-up and measurement, so the whole suite runs in minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}
