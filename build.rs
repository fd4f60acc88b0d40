//! Embeds the web UI (the `ui` feature): bundles `src/ui/web/` into one
//! script, one stylesheet and the page, names the first two by a hash of
//! their content, and gzips each asset in segments that decode on their own
//! (see `src/ui/gzip_segments.rs`), for `src/ui/assets.rs` to include.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

#[path = "src/ui/gzip_segments.rs"]
mod gzip_segments;

const WEB: &str = "src/ui/web";

fn main() {
    println!("cargo:rerun-if-changed={WEB}");
    if env::var_os("CARGO_FEATURE_UI").is_none() {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = Path::new(WEB);
    for entry in fs::read_dir(web).expect("src/ui/web is readable") {
        let path = entry.expect("src/ui/web lists").path();
        println!("cargo:rerun-if-changed={}", path.display());
    }

    let script = bundle_scripts(web);
    let style = read(&web.join("style.css"));
    let script_name = format!("app.{}.js", short_hash(&script));
    let style_name = format!("app.{}.css", short_hash(&style));
    let page = String::from_utf8(read(&web.join("index.html")))
        .expect("index.html is UTF-8")
        .replace("\"app.js\"", &format!("\"{script_name}\""))
        .replace("\"app.css\"", &format!("\"{style_name}\""));
    assert!(
        page.contains(&script_name) && page.contains(&style_name),
        "index.html must name app.js and app.css"
    );

    let assets = [
        ("", "text/html; charset=utf-8", page.into_bytes(), false),
        (
            script_name.as_str(),
            "text/javascript; charset=utf-8",
            script,
            true,
        ),
        (style_name.as_str(), "text/css; charset=utf-8", style, true),
    ];
    let mut code = String::from("[\n");
    for (i, (name, content_type, data, immutable)) in assets.iter().enumerate() {
        let (gzip, segments) = gzip_segments::gzip_segments(data);
        let file = format!("ui-asset-{i}.gz");
        fs::write(out.join(&file), &gzip).expect("OUT_DIR is writable");
        let mut table = String::new();
        for (start, end, len) in segments {
            write!(table, "Segment {{ start: {start}, end: {end}, len: {len} }}, ").unwrap();
        }
        writeln!(
            code,
            "    Asset {{ name: {name:?}, content_type: {content_type:?}, etag: \"\\\"{hash}\\\"\", \
             etag_gzip: \"\\\"{hash}.gz\\\"\", immutable: {immutable}, size: {size}, \
             gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{file}\")), segments: &[{table}] }},",
            hash = short_hash(data),
            size = data.len(),
        )
        .unwrap();
    }
    code.push(']');
    fs::write(out.join("ui_assets.rs"), code).expect("OUT_DIR is writable");
}

/// Every script in one, `core.js` first (the others use what it defines),
/// then the rest by name.
fn bundle_scripts(web: &Path) -> Vec<u8> {
    let mut names: Vec<String> = fs::read_dir(web)
        .expect("src/ui/web is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".js") && n != "core.js")
        .collect();
    names.sort();
    names.insert(0, "core.js".into());
    let mut script = Vec::new();
    for name in names {
        script.extend_from_slice(&read(&web.join(name)));
        script.push(b'\n');
    }
    script
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// 64-bit FNV-1a, as 16 hex digits: a name that changes with the content,
/// not a security measure.
fn short_hash(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
