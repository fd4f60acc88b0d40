//! Helpers for the fuzz targets in `fuzz_targets/`.
//!
//! The property checks live in `checks.rs`, which `tests/fuzz_regressions.rs`
//! also includes (by `#[path]`), so the committed regression inputs are held
//! to exactly the properties the fuzzers check.

pub mod checks;
pub mod digests;

/// Turns a failed property into a crash libFuzzer records.
pub fn enforce(result: Result<(), String>) {
    if let Err(why) = result {
        panic!("property violated: {why}");
    }
}
