//! Embeds every scenario file of `sim/scenarios/` into the binary, in name order, and with the
//! `kube` feature those of `sim/scenarios/kube/` (the scenarios of kube-rs clients).

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("sim/scenarios");
    let mut dirs = vec![dir.clone()];
    if std::env::var_os("CARGO_FEATURE_KUBE").is_some() {
        dirs.push(dir.join("kube"));
    }
    let mut paths: Vec<_> = Vec::new();
    for dir in dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        paths.extend(
            std::fs::read_dir(&dir)
                .expect("the scenario folder exists")
                .map(|entry| entry.expect("readable").path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "toml")),
        );
    }
    paths.sort_by(|a, b| a.file_stem().cmp(&b.file_stem()));
    let mut code = String::from("&[\n");
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("utf-8 names");
        writeln!(
            code,
            "    LibraryEntry {{ name: {name:?}, text: include_str!({:?}) }},",
            path.display()
        )
        .expect("string");
    }
    code.push(']');
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets it")).join("library.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
