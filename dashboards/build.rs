//! Builds the web app (`npm ci` when `node_modules` is missing or older than the
//! lockfile, then `npm run build`) into `$OUT_DIR/dist` and writes `assets.rs`, the
//! table of those files that the crate embeds with `include_bytes!`. The output goes to
//! `OUT_DIR` rather than a `dist/` in the source tree so Cargo owns its lifecycle: it is
//! rebuilt exactly when a source below changes and can never be stale or half deleted.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: &[&str] = &["web", "build.mjs", "package.json", "package-lock.json"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", root.join(s).display());
    }
    println!("cargo:rerun-if-env-changed=PULSE_NPM");
    let dist = out.join("dist");
    let npm = std::env::var("PULSE_NPM").unwrap_or_else(|_| "npm".into());
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    if modified(&installed) < modified(&lock) {
        run(
            Command::new(&npm).args(["ci", "--no-audit", "--no-fund"]),
            &root,
            "npm ci",
        );
    }
    if dist.exists() {
        std::fs::remove_dir_all(&dist).expect("removing the previous build");
    }
    run(
        Command::new(&npm)
            .args(["run", "build", "--silent"])
            .env("PULSE_DASHBOARD_OUT", &dist),
        &root,
        "npm run build",
    );
    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    assert!(
        files.iter().any(|(name, _)| name == "analytics.html"),
        "the web build wrote no analytics.html into {}",
        dist.display()
    );
    let mut code = String::from(
        "/// The built web app: (file name, contents), sorted by name.\n\
         pub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        code.push_str(&format!("    ({name:?}, include_bytes!({path:?})),\n"));
    }
    code.push_str("];\n");
    std::fs::write(out.join("assets.rs"), code).expect("writing assets.rs");
}

fn modified(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .unwrap_or(std::time::UNIX_EPOCH)
}

fn run(cmd: &mut Command, dir: &Path, what: &str) {
    let status = cmd.current_dir(dir).status().unwrap_or_else(|e| {
        panic!(
            "{what} in {}: could not start npm ({e}); install Node.js 20+ and npm \
             (scripts/need-chromium.sh does) or set PULSE_NPM",
            dir.display()
        )
    });
    assert!(
        status.success(),
        "{what} in {} failed: {status}",
        dir.display()
    );
}

fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(base, &path, out);
        } else {
            let name = path
                .strip_prefix(base)
                .expect("below the build directory")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((name, path.to_string_lossy().into_owned()));
        }
    }
}
