//! Base64 with the standard alphabet and padding (RFC 4648 §4).
//!
//! Decoding is strict (RFC 4648 §3.3, §3.5): no whitespace, no line breaks,
//! padding required, and the unused low bits of the last symbol must be zero.
//! A value we accept then has exactly one encoding, so two peers can never
//! disagree about which bytes a header carried.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    let sym = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    let mut groups = data.chunks_exact(3);
    for g in &mut groups {
        let n = (u32::from(g[0]) << 16) | (u32::from(g[1]) << 8) | u32::from(g[2]);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(sym(n >> 6));
        out.push(sym(n));
    }
    match *groups.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(sym(n >> 18));
            out.push(sym(n >> 12));
            out.push_str("==");
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.push(sym(n >> 18));
            out.push(sym(n >> 12));
            out.push(sym(n >> 6));
            out.push('=');
        }
        _ => {}
    }
    out
}

fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes canonical padded base64; `None` for anything else.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut quads = s.chunks_exact(4).peekable();
    while let Some(q) = quads.next() {
        let last = quads.peek().is_none();
        match *q {
            [a, b, b'=', b'='] if last => {
                let n = (value(a)? << 18) | (value(b)? << 12);
                // Non-zero unused bits would make a second spelling of the
                // same byte valid.
                if n & 0xFFFF != 0 {
                    return None;
                }
                out.push((n >> 16) as u8);
            }
            [a, b, c, b'='] if last => {
                let n = (value(a)? << 18) | (value(b)? << 12) | (value(c)? << 6);
                if n & 0xFF != 0 {
                    return None;
                }
                out.push((n >> 16) as u8);
                out.push((n >> 8) as u8);
            }
            [a, b, c, d] => {
                let n = (value(a)? << 18) | (value(b)? << 12) | (value(c)? << 6) | value(d)?;
                out.push((n >> 16) as u8);
                out.push((n >> 8) as u8);
                out.push(n as u8);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_encode() {
        for (plain, enc) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *enc);
        }
    }

    #[test]
    fn rfc4648_decode() {
        for (plain, enc) in VECTORS {
            assert_eq!(decode(enc.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn roundtrip_all_byte_values_and_lengths() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let enc = encode(&data[..len]);
            assert_eq!(enc.len(), len.div_ceil(3) * 4);
            assert_eq!(decode(enc.as_bytes()).unwrap(), &data[..len]);
        }
        assert_eq!(encode(&[0xFB, 0xFF, 0xBF]), "+/+/");
    }

    #[test]
    fn rejects_bad_length() {
        for s in ["Z", "Zg", "Zg=", "Zm9vY", "Zm9vYmF"] {
            assert_eq!(decode(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn rejects_bad_characters() {
        for s in [
            "Zm9v\n",
            "Zm 9",
            "Zm9-",
            "Zm9_",
            "Zm9v\0\0\0\0",
            "Zé==",
            "Zm9v\r\nYmFy",
        ] {
            assert_eq!(decode(s.as_bytes()), None, "{s:?}");
        }
        assert_eq!(decode(&[0xFF, b'A', b'A', b'A']), None);
    }

    #[test]
    fn rejects_bad_padding() {
        for s in [
            "====", "Z===", "=Zm9", "Zm=v", "Zg==Zm9v", "Zm8=Zm9v", "Zg=a", "Z=g=",
        ] {
            assert_eq!(decode(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "Zg==" is 'f'; "Zh==" carries the same byte with a stray bit set.
        assert_eq!(decode(b"Zh=="), None);
        assert_eq!(decode(b"Zm9="), None);
        assert_eq!(decode(b"Zm8="), Some(b"fo".to_vec()));
        assert_eq!(decode(b"AB=="), None);
        assert_eq!(decode(b"AAB="), None);
    }
}
