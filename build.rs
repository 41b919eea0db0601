//! Compiles bobbin's AddressSanitizer support in when, and only when, the crate itself is
//! built with `-Zsanitizer=address`: cargo hands the build script the target's `sanitize`
//! cfg values, and the library turns them into `cfg(bobbin_asan)`. The stable compiler has
//! no `cfg(sanitize)` of its own, and an ordinary build must not pay for annotations it
//! does not need.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_CFG_SANITIZE");
    println!("cargo::rustc-check-cfg=cfg(bobbin_asan)");
    let sanitizers = std::env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitizers.split(',').any(|s| s == "address") {
        println!("cargo::rustc-cfg=bobbin_asan");
    }
}
