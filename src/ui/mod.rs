//! The web UI (the `ui` feature): what a request for it gets (`answer`),
//! the assets the build embedded (`assets`), written from the binary's
//! read-only data (`send`); a client without gzip gets them decoded a
//! segment at a time (`inflate`, always built: the fuzz targets use it).

pub mod inflate;

#[cfg(feature = "ui")]
mod answer;
#[cfg(feature = "ui")]
pub mod assets;
#[cfg(feature = "ui")]
pub mod send;

#[cfg(feature = "ui")]
pub use answer::*;
