// SPDX-License-Identifier: GPL-2.0
//! Generates the ABI types from include/uapi/linux/zcsend.h with bindgen, and
//! compiles src/abi_check.c, which records what the C compiler makes of the
//! same header (ioctl numbers, sizes, offsets), for the unit tests to compare
//! against the Rust side.
//!
//! In the source tree it also compiles src/pattern_check.c over the C test
//! pattern generator (tools/include/zcsend_pattern.h, or samples/pattern.h
//! in older trees) and sets `cfg(zcsend_c_pattern)` for the test that checks
//! zcsend-cat's Rust copy against it.
//!
//! The header is looked up in `$ZCSEND_UAPI_DIR` (a directory holding
//! `linux/zcsend.h`) or, by default, `../../include/uapi` from this crate.
//! libclang is loaded at run time; `LIBCLANG_PATH` picks it, and defaults to
//! `/usr/lib/llvm-19/lib` when that exists.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let uapi = match env::var_os("ZCSEND_UAPI_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest.join("../../include/uapi"),
    };
    let header = uapi.join("linux/zcsend.h");
    if !header.is_file() {
        panic!(
            "zcsend: {} not found; set ZCSEND_UAPI_DIR to the directory that holds linux/zcsend.h",
            header.display()
        );
    }
    let header = header.canonicalize().unwrap();
    let uapi = uapi.canonicalize().unwrap();
    println!("cargo:rerun-if-env-changed=ZCSEND_UAPI_DIR");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=src/abi_check.c");

    if env::var_os("LIBCLANG_PATH").is_none() {
        let llvm19 = "/usr/lib/llvm-19/lib";
        if PathBuf::from(llvm19).join("libclang.so").exists()
            || PathBuf::from(llvm19).join("libclang-19.so").exists()
        {
            env::set_var("LIBCLANG_PATH", llvm19);
        }
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    bindgen::Builder::default()
        .header(header.to_str().unwrap())
        .clang_arg(format!("-I{}", uapi.display()))
        .allowlist_type("zcsend_.*")
        .allowlist_var("ZCSEND_.*")
        .derive_default(true)
        .derive_debug(true)
        .derive_eq(true)
        .derive_hash(true)
        .layout_tests(true)
        .generate_comments(true)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("zcsend: bindgen failed on include/uapi/linux/zcsend.h")
        .write_to_file(out.join("zcsend_uapi.rs"))
        .expect("zcsend: cannot write the bindings");

    // The C side of the ABI check: the same header through the C compiler.
    cc::Build::new()
        .file("src/abi_check.c")
        .include(&uapi)
        .warnings(true)
        .compile("zcsend_abi_check");

    // The C pattern generator, when this crate sits in the source tree.
    println!("cargo::rustc-check-cfg=cfg(zcsend_c_pattern)");
    println!("cargo:rerun-if-changed=src/pattern_check.c");
    let tree = manifest.join("../..");
    // The shared header, or the samples' copy of older trees.
    let candidates = [
        ("tools/include/zcsend_pattern.h", None),
        ("samples/pattern.h", Some("ZCSEND_PATTERN_SAMPLES")),
    ];
    for (p, _) in candidates {
        println!("cargo:rerun-if-changed={}", tree.join(p).display());
    }
    if let Some((p, def)) = candidates.iter().find(|(p, _)| tree.join(p).is_file()) {
        let header = tree.join(p).canonicalize().unwrap();
        let mut b = cc::Build::new();
        b.file("src/pattern_check.c")
            .define(
                "ZCSEND_PATTERN_HEADER",
                format!("\"{}\"", header.display()).as_str(),
            )
            .warnings(true);
        if let Some(d) = def {
            b.define(d, None);
        }
        b.compile("zcsend_pattern_check");
        println!("cargo:rustc-cfg=zcsend_c_pattern");
    }
}
