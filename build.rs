//! Build script: lays out the binary's code so that what a server runs sits
//! together.
//!
//! The kernel maps a program's code into memory 64 KiB around each page it
//! touches. Linked in the compiler's order, the code a server runs is spread
//! over nearly every such window, so almost the whole text segment stays
//! resident. `scripts/hot-symbols.txt` lists the functions a serving process
//! runs (recorded by `scripts/hot-symbols`); the linker places them first, and
//! what is never run is never mapped.
//!
//! Only the linker of recent Rust toolchains for x86-64 Linux (rust-lld) takes
//! an ordering file; everywhere else the binary is linked as usual. Symbols
//! missing from the file, or named in it but gone from the code, cost nothing
//! but the better layout.

use std::env;
use std::path::Path;
use std::process::Command;

/// The Rust release from which x86-64 Linux links with rust-lld by default.
const FIRST_RELEASE_LINKING_WITH_LLD: u32 = 90;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=scripts/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=SATCHEL_LINK_MAP");
    if !links_with_lld() {
        return;
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&manifest_dir).join("scripts/hot-symbols.txt");
    // `-Wl,` splits its argument at commas.
    let order = order.to_string_lossy();
    if Path::new(order.as_ref()).is_file() && !order.contains(',') {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    // `scripts/hot-symbols` asks for the linker's map, with symbols named as
    // the ordering file names them, to name the functions it saw run. The
    // map changes nothing in the binary.
    if let Ok(map) = env::var("SATCHEL_LINK_MAP") {
        if !map.contains(',') {
            println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
            println!("cargo:rustc-link-arg-bins=-Wl,--no-demangle");
        }
    }
}

/// Whether the binary is linked by rust-lld: x86-64 Linux with glibc, and a
/// compiler recent enough to use it by default.
fn links_with_lld() -> bool {
    let target = (
        env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default(),
        env::var("CARGO_CFG_TARGET_OS").unwrap_or_default(),
        env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default(),
    );
    if target != ("x86_64".into(), "linux".into(), "gnu".into()) {
        return false;
    }
    rustc_minor_version().is_some_and(|minor| minor >= FIRST_RELEASE_LINKING_WITH_LLD)
}

/// The minor version of the compiler building this crate ("rustc 1.95.0 ...").
fn rustc_minor_version() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    if parts.next()? != "1" {
        return None;
    }
    parts.next()?.parse().ok()
}
