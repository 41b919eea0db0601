//! Comparison benchmarks for bobbin: the criterion benchmarks in `benches/`, and the
//! `compare` binary (`src/bin/compare.rs`), which runs every workload of DESIGN.md
//! section 8 for bobbin and its peers in one process and writes a report with charts. The
//! binary's parts live in [`compare`]; the workload bodies both measure live in
//! [`workloads`].
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod compare;
pub mod workloads;
