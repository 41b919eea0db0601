//! Comparison benchmarks for bobbin; see `benches/`.
