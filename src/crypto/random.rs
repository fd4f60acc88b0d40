//! Kernel randomness for salts, session ids and secrets.

use std::io;

use crate::sys;

/// Bytes from the kernel's CSPRNG.
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    sys::random::fill(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_draws_differ() {
        // 2^-128 odds of a false failure; a stub that returns zeros or the
        // same bytes twice fails.
        let a = random_bytes::<16>().unwrap();
        assert_ne!(a, [0; 16]);
        assert_ne!(a, random_bytes::<16>().unwrap());
    }
}
