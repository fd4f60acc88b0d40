//! Decoding of one self-contained segment of a raw deflate stream
//! (RFC 1951), into a fixed buffer, with no allocation.
//!
//! The web UI's assets are embedded gzip'd, their deflate streams cut by a
//! full flush after every 16 KiB of input (see `gzip_segments.rs`), so each
//! segment decodes on its own to at most 16 KiB. A client that does not
//! accept gzip gets them decoded here one segment at a time, straight into
//! its connection's buffer.
//!
//! Each Huffman code is kept as in zlib's `puff`: how many codes each
//! length has and the symbols in code order, decoded canonically a bit at a
//! time; in front of that, a 512-entry lookup by the next 9 bits resolves
//! the short (most frequent) codes at once. The two codes take about 2.6
//! KiB of stack. On x86_64 (opt-level "z") 32 KiB of minified JavaScript
//! take about 1.3 million instructions (counted with callgrind), so a 16
//! KiB segment, one loop turn's work, is well under a millisecond there and
//! about one on a slow router.

/// Why a segment does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InflateError {
    /// The input ends inside a block.
    Truncated,
    /// The output does not fit in the buffer.
    OutputFull,
    /// Block type 3, or a stored block whose length fails its check.
    BadBlock,
    /// Code lengths that describe no usable Huffman code: over-subscribed,
    /// incomplete, too many, or a repeat with nothing to repeat.
    BadCodeLengths,
    /// Bits that are no code, or a reserved length or distance symbol.
    BadCode,
    /// A distance reaching before the start of this segment's output.
    DistanceTooFar,
    /// Bytes after the final block.
    TrailingData,
}

use InflateError::*;

const MAX_BITS: usize = 15;

/// Base and extra bits of length symbols 257..=285, then of distance
/// symbols 0..=29.
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
    227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
    4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
];

/// The order in which a dynamic block sends its code length code lengths.
const CLEN_ORDER: [u8; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// Bits the first-level lookup of a code resolves at once.
const FAST_BITS: u32 = 9;

/// A canonical Huffman code: how many codes of each length, and the
/// symbols ordered by code; and, for codes of up to `FAST_BITS` bits, a
/// lookup by the next `FAST_BITS` input bits of `length << 9 | symbol`
/// (0: a longer code, or none).
struct Huffman {
    count: [u16; MAX_BITS + 1],
    symbol: [u16; 288],
    fast: [u16; 1 << FAST_BITS],
}

impl Huffman {
    const fn new() -> Self {
        Huffman {
            count: [0; MAX_BITS + 1],
            symbol: [0; 288],
            fast: [0; 1 << FAST_BITS],
        }
    }
}

impl Huffman {
    /// Builds the code of `lengths` (each at most 15). Returns how many
    /// codes of the longest length are left unused: 0 for a complete code,
    /// negative for an over-subscribed one.
    fn build(&mut self, lengths: &[u8]) -> i32 {
        self.count = [0; MAX_BITS + 1];
        for &len in lengths {
            self.count[usize::from(len)] += 1;
        }
        let mut left = 1i32;
        for len in 1..=MAX_BITS {
            left = (left << 1) - i32::from(self.count[len]);
            if left < 0 {
                return left;
            }
        }
        let mut offset = [0u16; MAX_BITS + 1];
        for len in 1..MAX_BITS {
            offset[len + 1] = offset[len] + self.count[len];
        }
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let at = &mut offset[usize::from(len)];
                self.symbol[usize::from(*at)] = symbol as u16;
                *at += 1;
            }
        }
        // Short codes in the lookup, under every suffix of their
        // (bit-reversed: deflate sends codes most significant bit first)
        // code.
        self.fast = [0; 1 << FAST_BITS];
        let (mut code, mut index) = (0usize, 0usize);
        for len in 1..=FAST_BITS as usize {
            for _ in 0..self.count[len] {
                let mut at = code.reverse_bits() >> (usize::BITS as usize - len);
                while let Some(entry) = self.fast.get_mut(at) {
                    *entry = (len as u16) << 9 | self.symbol[index];
                    at += 1 << len;
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        left
    }

    /// Builds a literal/length or distance code: it must be complete, or
    /// have at most one code, of one bit (RFC 1951 §3.2.7 allows a single
    /// distance code; zlib and puff accept the same).
    fn build_checked(&mut self, lengths: &[u8]) -> Result<(), InflateError> {
        let left = self.build(lengths);
        let sparse = usize::from(self.count[0] + self.count[1]) == lengths.len();
        if left < 0 || (left > 0 && !sparse) {
            return Err(BadCodeLengths);
        }
        Ok(())
    }
}

/// The input, read least significant bit first, through a buffer of up
/// to 32 bits loaded ahead.
struct Bits<'a> {
    input: &'a [u8],
    /// The next byte not in `buf`.
    pos: usize,
    buf: u32,
    /// Bits in `buf`.
    cnt: u32,
}

impl Bits<'_> {
    /// Loads whole bytes while they fit.
    fn refill(&mut self) {
        while self.cnt <= 24 {
            let Some(&byte) = self.input.get(self.pos) else {
                break;
            };
            self.buf |= u32::from(byte) << self.cnt;
            self.pos += 1;
            self.cnt += 8;
        }
    }

    /// Takes `n` (at most 16) bits.
    #[inline(always)]
    fn take(&mut self, n: u32) -> Result<u32, InflateError> {
        if n > self.cnt {
            self.refill();
            if n > self.cnt {
                return Err(Truncated);
            }
        }
        let value = self.buf & ((1 << n) - 1);
        self.buf >>= n;
        self.cnt -= n;
        Ok(value)
    }

    /// The next `n` (at most 16) bits.
    fn bits(&mut self, n: u32) -> Result<usize, InflateError> {
        self.take(n).map(|v| v as usize)
    }

    /// Whether the input is spent up to its last byte's padding bits.
    fn spent(&self) -> bool {
        self.cnt < 8 && self.pos == self.input.len()
    }

    /// Drops the rest of the current byte and gives back the bytes
    /// loaded ahead.
    fn align(&mut self) {
        self.pos -= (self.cnt / 8) as usize;
        self.buf = 0;
        self.cnt = 0;
    }

    /// The next symbol of code `h`.
    #[inline(always)]
    fn decode(&mut self, h: &Huffman) -> Result<usize, InflateError> {
        if self.cnt < MAX_BITS as u32 {
            self.refill();
        }
        let entry = h.fast[(self.buf & ((1 << FAST_BITS) - 1)) as usize];
        let len = u32::from(entry >> 9);
        if len != 0 {
            self.take(len)?;
            return Ok(usize::from(entry & 0x1ff));
        }
        // A longer code, canonically: codes of each length are
        // consecutive integers, starting at `first`; `index` counts the
        // symbols of shorter codes.
        let (mut code, mut first, mut index) = (0usize, 0usize, 0usize);
        for len in 1..=MAX_BITS {
            code |= (self.buf >> (len - 1) & 1) as usize;
            let count = usize::from(h.count[len]);
            if code < first + count {
                self.take(len as u32)?;
                let symbol = h.symbol.get(index + code - first).ok_or(BadCode)?;
                return Ok(usize::from(*symbol));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(BadCode)
    }
}

/// Decodes the raw deflate blocks of `input` into `out` and returns how
/// many bytes they made.
///
/// The input must end at a block boundary: right after a non-final block
/// that ends on a byte boundary (the empty stored block of a full flush),
/// or after the final block (its last byte's padding included). Distances
/// reach only into what this call wrote. Anything else is an error; no
/// input panics.
pub fn inflate_segment(input: &[u8], out: &mut [u8]) -> Result<usize, InflateError> {
    let mut s = Bits {
        input,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let mut lit = Huffman::new();
    let mut dist = Huffman::new();
    let mut n = 0;
    loop {
        if s.cnt == 0 && s.pos == input.len() {
            return Ok(n);
        }
        let last = s.bits(1)? == 1;
        match s.bits(2)? {
            0 => n = stored(&mut s, out, n)?,
            1 => {
                let mut lengths = [8u8; 288];
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                // Symbols 286, 287 and distances 30, 31 complete the
                // codes; they are rejected when they occur.
                lit.build(&lengths);
                dist.build(&[5; 32]);
                n = codes(&mut s, &lit, &dist, out, n)?;
            }
            2 => {
                dynamic(&mut s, &mut lit, &mut dist)?;
                n = codes(&mut s, &lit, &dist, out, n)?;
            }
            _ => return Err(BadBlock),
        }
        if last {
            return if s.spent() { Ok(n) } else { Err(TrailingData) };
        }
    }
}

/// A stored block, after its header bits.
fn stored(s: &mut Bits, out: &mut [u8], n: usize) -> Result<usize, InflateError> {
    s.take(s.cnt % 8)?;
    let len = s.bits(16)?;
    if s.bits(16)? != len ^ 0xffff {
        return Err(BadBlock);
    }
    s.align();
    let src = s.input.get(s.pos..s.pos + len).ok_or(Truncated)?;
    let dst = out.get_mut(n..n + len).ok_or(OutputFull)?;
    dst.copy_from_slice(src);
    s.pos += len;
    Ok(n + len)
}

/// Reads a dynamic block's code descriptions into `lit` and `dist`.
fn dynamic(s: &mut Bits, lit: &mut Huffman, dist: &mut Huffman) -> Result<(), InflateError> {
    let nlen = s.bits(5)? + 257;
    let ndist = s.bits(5)? + 1;
    let ncode = s.bits(4)? + 4;
    if nlen > 286 || ndist > 30 {
        return Err(BadCodeLengths);
    }
    let mut lengths = [0u8; 286 + 30];
    for &i in &CLEN_ORDER[..ncode] {
        lengths[usize::from(i)] = s.bits(3)? as u8;
    }
    // The code length code must be complete.
    if lit.build(&lengths[..19]) != 0 {
        return Err(BadCodeLengths);
    }
    let total = nlen + ndist;
    let mut i = 0;
    while i < total {
        let symbol = s.decode(lit)?;
        if symbol < 16 {
            lengths[i] = symbol as u8;
            i += 1;
            continue;
        }
        let (value, repeat) = match symbol {
            16 if i > 0 => (lengths[i - 1], 3 + s.bits(2)?),
            16 => return Err(BadCodeLengths),
            17 => (0, 3 + s.bits(3)?),
            _ => (0, 11 + s.bits(7)?),
        };
        lengths
            .get_mut(i..i + repeat)
            .filter(|_| i + repeat <= total)
            .ok_or(BadCodeLengths)?
            .fill(value);
        i += repeat;
    }
    // Without an end-of-block code the block cannot end.
    if lengths[256] == 0 {
        return Err(BadCodeLengths);
    }
    lit.build_checked(&lengths[..nlen])?;
    dist.build_checked(&lengths[nlen..total])
}

/// The literals and matches of a Huffman block, up to its end-of-block
/// code; returns the new output length.
fn codes(
    s: &mut Bits,
    lit: &Huffman,
    dist: &Huffman,
    out: &mut [u8],
    mut n: usize,
) -> Result<usize, InflateError> {
    loop {
        let symbol = s.decode(lit)?;
        if symbol < 256 {
            *out.get_mut(n).ok_or(OutputFull)? = symbol as u8;
            n += 1;
            continue;
        }
        if symbol == 256 {
            return Ok(n);
        }
        let i = symbol - 257;
        let len = usize::from(*LEN_BASE.get(i).ok_or(BadCode)?) + s.bits(LEN_EXTRA[i].into())?;
        let d = s.decode(dist)?;
        let distance = usize::from(*DIST_BASE.get(d).ok_or(BadCode)?) + s.bits(DIST_EXTRA[d].into())?;
        if distance > n {
            return Err(DistanceTooFar);
        }
        if len > out.len() - n {
            return Err(OutputFull);
        }
        // Byte by byte: a match may overlap what it copies.
        for _ in 0..len {
            out[n] = out[n - distance];
            n += 1;
        }
    }
}

#[cfg(test)]
#[path = "gzip_segments.rs"]
mod gzip_segments;

#[cfg(test)]
mod tests {
    use super::gzip_segments::{crc32, gzip_segments, SEGMENT};
    use super::*;

    /// Decodes every segment of `data`'s member on its own and checks the
    /// member as a whole.
    fn round_trip(data: &[u8]) -> Vec<u8> {
        let (member, segments) = gzip_segments(data);
        assert!(!segments.is_empty());
        let mut whole = Vec::new();
        let mut buf = vec![0u8; SEGMENT];
        let mut expect_start = 10;
        for (k, &(start, end, len)) in segments.iter().enumerate() {
            assert_eq!(start, expect_start, "segments are contiguous");
            expect_start = end;
            let last = k + 1 == segments.len();
            assert_eq!(len, if last { data.len() - k * SEGMENT } else { SEGMENT });
            buf.fill(0xa5);
            let n = inflate_segment(&member[start..end], &mut buf).unwrap();
            assert_eq!(n, len, "segment {k}");
            whole.extend_from_slice(&buf[..n]);
        }
        assert_eq!(whole, data);
        // The member: header, the deflate stream, CRC32 and ISIZE.
        let (_, deflate_end, _) = segments[segments.len() - 1];
        assert_eq!(&member[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        assert_eq!(member.len(), deflate_end + 8);
        let trailer = &member[deflate_end..];
        assert_eq!(trailer[..4], crc32(data).to_le_bytes());
        assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes());
        let reference = miniz_oxide::inflate::decompress_to_vec(&member[10..deflate_end]).unwrap();
        assert_eq!(reference, data);
        member
    }

    /// A deterministic pseudo-random byte stream (xorshift).
    fn noise(len: usize, mut x: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    /// JavaScript-like text, deterministic.
    fn js_text(len: usize) -> Vec<u8> {
        let words = [
            "function",
            "const",
            "return",
            "container",
            "image",
            "fetch",
            "await",
            "state",
            "render",
            "element",
            "status",
            "=>",
            "if",
            "else",
            "null",
            "this",
            "async",
        ];
        let mut out = String::new();
        let mut r = noise(len / 2 + 64, 7).into_iter().cycle();
        let mut next = || usize::from(r.next().unwrap());
        while out.len() < len {
            let w = words[next() % words.len()];
            match next() % 6 {
                0 => out.push_str(&format!("{w}({}, \"{w}-{}\");\n", next(), next() % 17)),
                1 => out.push_str(&format!("  {w}.{}{} = ", words[next() % words.len()], next())),
                2 => out.push_str(&format!("{{ {w}: [{}, {}] }}, ", next(), next())),
                _ => {
                    out.push_str(w);
                    out.push(' ');
                }
            }
        }
        out.truncate(len);
        out.into_bytes()
    }

    #[test]
    fn crc32_known_answer() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn empty_and_one_byte() {
        round_trip(b"");
        round_trip(b"x");
    }

    #[test]
    fn segment_boundaries() {
        for len in [SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 1] {
            let data = js_text(len);
            let (_, segments) = gzip_segments(&data);
            assert_eq!(segments.len(), len.div_ceil(SEGMENT), "{len}");
            round_trip(&data);
        }
    }

    #[test]
    fn text_100k() {
        let data = js_text(100_000);
        let member = round_trip(&data);
        assert!(member.len() < data.len() / 3, "compresses: {}", member.len());
    }

    #[test]
    fn incompressible() {
        // Stored blocks.
        round_trip(&noise(100_000, 1));
    }

    #[test]
    fn repetitive() {
        // Distance-1 matches of the longest length.
        round_trip(&[b'a'; 100_000]);
        let mut data = vec![0u8; 70_000];
        data.extend(noise(3000, 3).repeat(20));
        round_trip(&data);
    }

    #[test]
    fn fixed_and_dynamic_blocks() {
        // Short inputs come out as fixed blocks, longer ones dynamic;
        // a hand-made fixed block of "abc" with the final bit set.
        let mut buf = [0u8; 8];
        assert_eq!(inflate_segment(&[0x4b, 0x4c, 0x4a, 0x06, 0x00], &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"abc");
        for len in [1, 5, 40, 300, 5000] {
            round_trip(&js_text(len));
        }
    }

    /// The outside truth: gzip itself reads the member, when installed.
    #[test]
    fn gzip_reads_the_member() {
        use std::process::Command;
        if Command::new("gzip").arg("--version").output().is_err() {
            eprintln!("gzip not found, skipped");
            return;
        }
        let data = js_text(80_000);
        let (member, _) = gzip_segments(&data);
        let path = std::env::temp_dir().join(format!("inflate-test-{}.gz", std::process::id()));
        std::fs::write(&path, &member).unwrap();
        let test = Command::new("gzip").arg("-t").arg(&path).status().unwrap();
        let out = Command::new("gzip").arg("-dc").arg(&path).output().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(test.success());
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn errors() {
        let mut buf = vec![0u8; SEGMENT];
        let data = js_text(50_000);
        let (member, segments) = gzip_segments(&data);
        let (start, end, _) = segments[0];
        let seg = &member[start..end];
        // Truncated anywhere, the flush marker included.
        for cut in [1, 2, seg.len() / 2, seg.len() - 5, seg.len() - 1] {
            assert!(inflate_segment(&seg[..cut], &mut buf).is_err(), "cut at {cut}");
        }
        assert_eq!(inflate_segment(&seg[..seg.len() - 1], &mut buf), Err(Truncated));
        // Too small an output.
        assert_eq!(inflate_segment(seg, &mut buf[..SEGMENT - 1]), Err(OutputFull));
        assert_eq!(inflate_segment(seg, &mut []), Err(OutputFull));
        // Bytes after the final block.
        let (one, s) = gzip_segments(b"hello");
        let mut extra = one[s[0].0..s[0].1].to_vec();
        assert_eq!(inflate_segment(&extra, &mut buf), Ok(5));
        extra.push(0);
        assert_eq!(inflate_segment(&extra, &mut buf), Err(TrailingData));
        // Block type 3.
        assert_eq!(inflate_segment(&[0x07], &mut buf), Err(BadBlock));
        // A stored block whose length check fails, and one cut short.
        assert_eq!(
            inflate_segment(&[1, 3, 0, 0xfc, 0xfe, 1, 2, 3], &mut buf),
            Err(BadBlock)
        );
        assert_eq!(
            inflate_segment(&[1, 3, 0, 0xfc, 0xff, 1, 2], &mut buf),
            Err(Truncated)
        );
        assert_eq!(inflate_segment(&[1, 3, 0, 0xfc, 0xff, 1, 2, 3], &mut buf), Ok(3));
        // Fixed block: literal 'a', then length 3 at distance 2 with only
        // one byte written. Bits: 1 (final), 10 (fixed), 'a' = 10010001,
        // length 3 = 0000001, distance 2 = 00001.
        let a = huff(0b1001_0001, 8);
        let far = pack(&[(1, 1), (1, 2), a, huff(1, 7), huff(1, 5), (0, 7)]);
        assert_eq!(inflate_segment(&far, &mut buf), Err(DistanceTooFar));
        // The same at distance 1 is fine.
        let near = pack(&[(1, 1), (1, 2), a, huff(1, 7), (0, 5), (0, 7)]);
        assert_eq!(inflate_segment(&near, &mut buf), Ok(4));
        assert_eq!(&buf[..4], b"aaaa");
        // A fixed block's reserved distance symbol 30.
        let reserved = pack(&[(1, 1), (1, 2), a, huff(1, 7), huff(30, 5), (0, 7)]);
        assert_eq!(inflate_segment(&reserved, &mut buf), Err(BadCode));
        // Dynamic blocks whose code length code is over-subscribed
        // (four codes of one bit) or incomplete (one code of two bits).
        let over = pack(&[
            (1, 1),
            (2, 2),
            (0, 5),
            (0, 5),
            (0, 4),
            (1, 3),
            (1, 3),
            (1, 3),
            (1, 3),
        ]);
        assert_eq!(inflate_segment(&over, &mut buf), Err(BadCodeLengths));
        let under = pack(&[(1, 1), (2, 2), (0, 5), (0, 5), (0, 4), (2, 3), (0, 9)]);
        assert_eq!(inflate_segment(&under, &mut buf), Err(BadCodeLengths));
        // A repeat (16) first; then a literal/length code without
        // end-of-block: code length code of symbols 16 and 18 (one bit
        // each), 18 x 127 makes 138 zeros, twice, then the rest.
        let clen = |syms: &[(usize, usize)]| {
            let mut v = vec![(1, 1), (2, 2), (0, 5), (0, 5), (0, 4)];
            let mut lens = [0usize; 4];
            for &(sym, len) in syms {
                lens[[16, 17, 18, 0].iter().position(|&x| x == sym).unwrap()] = len;
            }
            v.extend(lens.iter().map(|&l| (l, 3)));
            v
        };
        let mut first_repeat = clen(&[(16, 1), (18, 1)]);
        first_repeat.push((0, 1));
        first_repeat.push((0, 8));
        assert_eq!(
            inflate_segment(&pack(&first_repeat), &mut buf),
            Err(BadCodeLengths)
        );
        let mut no_end = clen(&[(16, 1), (18, 1)]);
        // 18 is code 1; 257 + 1 lengths: 138 + 120 zeros.
        no_end.extend([(1, 1), (127, 7), (1, 1), (109, 7), (0, 8)]);
        assert_eq!(inflate_segment(&pack(&no_end), &mut buf), Err(BadCodeLengths));
        // Repeating past the lengths' end.
        let mut past = clen(&[(16, 1), (18, 1)]);
        past.extend([(1, 1), (127, 7), (1, 1), (127, 7), (0, 8)]);
        assert_eq!(inflate_segment(&pack(&past), &mut buf), Err(BadCodeLengths));
        // Literal/length lengths over-subscribed: symbols 0, 1, 2 and 256
        // of one bit; and incomplete: only 0 and 256 of two bits.
        let lengths = |lit: &[(usize, usize)]| {
            // Code length code: lengths 0, 1, 2 and 18 each two bits.
            let mut v = vec![(1, 1), (2, 2), (0, 5), (0, 5), (14, 4)];
            let mut clens = [0usize; 18];
            for (k, &sym) in CLEN_ORDER[..18].iter().enumerate() {
                if [0u8, 1, 2, 18].contains(&sym) {
                    clens[k] = 2;
                }
            }
            v.extend(clens.iter().map(|&l| (l, 3)));
            // Canonical codes: 0 -> 00, 1 -> 01, 2 -> 10, 18 -> 11, sent
            // most significant bit first.
            let code = |sym: usize| [0b00, 0b10, 0b01][sym];
            let put = |v: &mut Vec<(usize, usize)>, len: usize| v.push((code(len), 2));
            let mut at = 0;
            for &(sym, len) in lit {
                while at < sym {
                    let run = (sym - at).min(138);
                    if run >= 11 {
                        v.push((0b11, 2));
                        v.push((run - 11, 7));
                        at += run;
                    } else {
                        put(&mut v, 0);
                        at += 1;
                    }
                }
                put(&mut v, len);
                at += 1;
            }
            // The one distance length.
            put(&mut v, 1);
            v.push((0, 16));
            v
        };
        let ok = lengths(&[(0, 1), (256, 1)]);
        // Literal 0 (code 0), end of block (code 1).
        let mut ok_bits = ok.clone();
        ok_bits.truncate(ok.len() - 1);
        ok_bits.extend([(0, 1), (1, 1)]);
        assert_eq!(inflate_segment(&pack(&ok_bits), &mut buf), Ok(1));
        let over = lengths(&[(0, 1), (1, 1), (2, 1), (256, 1)]);
        assert_eq!(inflate_segment(&pack(&over), &mut buf), Err(BadCodeLengths));
        let under = lengths(&[(0, 2), (256, 2)]);
        assert_eq!(inflate_segment(&pack(&under), &mut buf), Err(BadCodeLengths));
        // Garbage never panics.
        for seed in 1..300 {
            let junk = noise(seed * 7, seed as u64);
            let _ = inflate_segment(&junk, &mut buf);
            let _ = inflate_segment(&junk, &mut buf[..100]);
        }
    }

    /// A Huffman code of `len` bits, reversed for `pack`.
    fn huff(code: usize, len: usize) -> (usize, usize) {
        let mut rev = 0;
        for i in 0..len {
            rev |= (code >> i & 1) << (len - 1 - i);
        }
        (rev, len)
    }

    /// Packs `(value, bits)` pairs least significant bit first, as deflate
    /// does for everything but Huffman codes (whose bits the callers list
    /// reversed).
    fn pack(fields: &[(usize, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut acc, mut n) = (0u64, 0);
        for &(value, bits) in fields {
            acc |= (value as u64) << n;
            n += bits;
            while n >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                n -= 8;
            }
        }
        if n > 0 {
            out.push(acc as u8);
        }
        out
    }
}
