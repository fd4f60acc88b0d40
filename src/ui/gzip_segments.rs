//! Build-time compression of the web UI's assets into gzip members whose
//! deflate stream `inflate_segment` can decode a segment at a time.
//!
//! Not part of the library: `build.rs` includes this file by `#[path]`
//! (with `miniz_oxide` as a build-dependency only), and so do the
//! inflater's tests and fuzz checks (with it as a dev-dependency).

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// Input bytes per segment: each decodes, on its own, to this much output
/// (the last one to less).
pub const SEGMENT: usize = 16 * 1024;

/// Compresses `data` into one gzip member (RFC 1952): a fixed header
/// (no name, mtime 0, XFL 2, OS unknown, so builds are reproducible), a raw
/// deflate stream, CRC32 and ISIZE.
///
/// The deflate stream is cut by a full flush after every `SEGMENT` bytes of
/// input: an empty stored block that leaves the output byte-aligned, and a
/// reset of the compressor's history so that no match reaches across. The
/// second value lists, per segment, its start and end offsets within the
/// member and how many bytes it decodes to. Segments are contiguous; the
/// first starts after the 10-byte header and the last ends where the final
/// block does, before the 8-byte trailer. Empty input makes one segment of
/// one empty final block.
#[allow(clippy::type_complexity)]
pub fn gzip_segments(data: &[u8]) -> (Vec<u8>, Vec<(usize, usize, usize)>) {
    let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    let mut segments = Vec::new();
    // Level 9, raw deflate (negative window bits), default strategy.
    let mut compressor = CompressorOxide::new(create_comp_flags_from_zip_params(9, -15, 0));
    let mut rest = data;
    loop {
        let (chunk, after) = rest.split_at(rest.len().min(SEGMENT));
        let last = after.is_empty();
        let flush = if last {
            TDEFLFlush::Finish
        } else {
            TDEFLFlush::Full
        };
        let start = member.len();
        let (status, used) = compress_to_output(&mut compressor, chunk, flush, |bytes| {
            member.extend_from_slice(bytes);
            true
        });
        let expect = if last {
            TDEFLStatus::Done
        } else {
            TDEFLStatus::Okay
        };
        assert!(
            status == expect && used == chunk.len(),
            "deflate: {status:?}, {used} of {} bytes",
            chunk.len()
        );
        segments.push((start, member.len(), chunk.len()));
        if last {
            break;
        }
        rest = after;
    }
    member.extend_from_slice(&crc32(data).to_le_bytes());
    member.extend_from_slice(&(data.len() as u32).to_le_bytes());
    (member, segments)
}

/// CRC-32 of gzip (ISO 3309, reflected polynomial 0xedb88320), a bit at a
/// time: build-time only, where speed does not matter.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
