//! The UI's assets as the build made them: gzip'd in the binary's
//! read-only data, with the segments a client without gzip is sent from.

/// One byte range of an asset's deflate stream that inflates on its own,
/// to `len` bytes (build.rs cuts the stream with full flushes).
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub len: usize,
}

pub struct Asset {
    /// The file name under the UI's root; "" is the page itself.
    pub name: &'static str,
    pub content_type: &'static str,
    /// Validators of the two encodings, which are different bytes.
    pub etag: &'static str,
    pub etag_gzip: &'static str,
    /// Named by a hash of its content: cached for good.
    pub immutable: bool,
    /// Bytes once inflated.
    pub size: usize,
    pub gzip: &'static [u8],
    pub segments: &'static [Segment],
}

pub static ASSETS: &[Asset] = &include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}
