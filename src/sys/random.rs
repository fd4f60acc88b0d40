//! The kernel's CSPRNG.

use std::io;

use super::retry;

/// Fills `out` from getrandom(2), which blocks only until the pool is
/// first initialised at boot.
pub fn fill(out: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < out.len() {
        let rest = &mut out[filled..];
        // SAFETY: writing at most `rest.len()` bytes into `rest`.
        filled += retry(|| unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) })?;
    }
    Ok(())
}
