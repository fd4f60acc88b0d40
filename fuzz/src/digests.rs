//! SHA-256, SHA-1 and HMAC-SHA-256 of dockermand (`digest.rs`, `sha1.rs`)
//! compared with the RustCrypto crates, for the `auth_header` target (input
//! byte 0 = 6 mod 7). Not part of `checks.rs`, so the regression test does
//! not need those crates.

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

pub fn check(v: &[u8]) -> Result<(), String> {
    use hmac::Mac;
    use sha2::Digest;
    let split = v.first().map_or(0, |&b| usize::from(b)).min(v.len());
    let (key, msg) = v.split_at(split);

    let want: [u8; 32] = sha2::Sha256::digest(v).into();
    ensure!(
        dockermand::crypto::sha256::sha256(v) == want,
        "sha256 of {} bytes",
        v.len()
    );
    let mut h = dockermand::crypto::sha256::Sha256::new();
    h.update(key);
    h.update(msg);
    ensure!(h.finish() == want, "sha256 fed in two pieces at {split}");

    let want: [u8; 20] = sha1::Sha1::digest(v).into();
    ensure!(
        dockermand::crypto::sha1::sha1(v) == want,
        "sha1 of {} bytes",
        v.len()
    );
    let mut h = dockermand::crypto::sha1::Sha1::new();
    h.update(key);
    h.update(msg);
    ensure!(h.finish() == want, "sha1 fed in two pieces at {split}");

    let mut mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(msg);
    let want: [u8; 32] = mac.finalize().into_bytes().into();
    ensure!(
        dockermand::crypto::sha256::hmac_sha256(key, msg) == want,
        "hmac-sha256 with a {split}-byte key"
    );
    Ok(())
}
