//! Checkpoint archives from a tracking store are hostile until proven otherwise: each attack is
//! refused with a clear error and nothing is written outside (or at) the destination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use podium_bench::archive::{ExtractLimits, checkpoint_root, extract_tar_gz};

/// A member as raw header fields: the tar crate's safe setters refuse the hostile paths, so the
/// name bytes are written directly.
struct Member<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    data: &'a [u8],
    link: Option<&'a str>,
    /// The size the header claims (defaults to the data's length).
    size: Option<u64>,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name: name.as_bytes(),
        kind: tar::EntryType::Regular,
        data,
        link: None,
        size: None,
    }
}

fn archive_of(dir: &Path, name: &str, members: &[Member<'_>]) -> PathBuf {
    let path = dir.join(name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    for member in members {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..member.name.len()].copy_from_slice(member.name);
        header.set_entry_type(member.kind);
        header.set_mode(0o644);
        header.set_size(member.size.unwrap_or(member.data.len() as u64));
        if let Some(link) = member.link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        builder.append(&header, member.data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
    path
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

fn refused(members: &[Member<'_>], limits: ExtractLimits, expect: &str) {
    let sandbox = tempfile::tempdir().unwrap();
    let archives = tempfile::tempdir().unwrap();
    let archive = archive_of(archives.path(), "hostile.tar.gz", members);
    let work = sandbox.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let dest = work.join("extracted");
    let err = extract_tar_gz(&archive, &dest, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains(expect), "{err}");
    assert!(err.contains("hostile.tar.gz"), "names the archive: {err}");
    // Nothing at the destination, nothing beside it, nothing above it.
    assert!(!dest.exists());
    assert_eq!(tree(sandbox.path()), ["work"], "left behind");
}

#[test]
fn absolute_paths_are_refused() {
    refused(
        &[
            file("ok/config.json", b"{}"),
            file("/tmp/podium-evil", b"x"),
        ],
        ExtractLimits::default(),
        "absolute path",
    );
}

#[test]
fn parent_components_are_refused() {
    refused(
        &[file("ok/config.json", b"{}"), file("ok/../../evil", b"x")],
        ExtractLimits::default(),
        "`..`",
    );
    refused(&[file("../evil", b"x")], ExtractLimits::default(), "`..`");
}

#[test]
fn symbolic_links_are_refused() {
    refused(
        &[
            Member {
                name: b"ok/link",
                kind: tar::EntryType::Symlink,
                data: b"",
                link: Some("/etc"),
                size: Some(0),
            },
            file("ok/link/passwd", b"x"),
        ],
        ExtractLimits::default(),
        "symbolic link",
    );
}

#[test]
fn hard_links_are_refused() {
    refused(
        &[Member {
            name: b"ok/hard",
            kind: tar::EntryType::Link,
            data: b"",
            link: Some("/etc/passwd"),
            size: Some(0),
        }],
        ExtractLimits::default(),
        "hard link",
    );
}

#[test]
fn devices_and_fifos_are_refused() {
    for kind in [
        tar::EntryType::Fifo,
        tar::EntryType::Char,
        tar::EntryType::Block,
    ] {
        refused(
            &[Member {
                name: b"ok/dev",
                kind,
                data: b"",
                link: None,
                size: Some(0),
            }],
            ExtractLimits::default(),
            "not a regular file or directory",
        );
    }
}

#[test]
fn a_member_past_the_size_cap_is_refused() {
    let limits = ExtractLimits {
        max_total_bytes: 10,
        ..ExtractLimits::default()
    };
    refused(
        &[file("a", b"12345"), file("b", b"123456")],
        limits,
        "size cap of 10 bytes",
    );
}

#[test]
fn too_many_members_are_refused() {
    let limits = ExtractLimits {
        max_entries: 2,
        ..ExtractLimits::default()
    };
    refused(
        &[file("a", b"1"), file("b", b"2"), file("c", b"3")],
        limits,
        "member cap",
    );
}

#[test]
fn a_truncated_gzip_is_refused() {
    let sandbox = tempfile::tempdir().unwrap();
    let data = vec![7u8; 200_000];
    let archive = archive_of(
        sandbox.path(),
        "whole.tar.gz",
        &[
            file("ckpt/config.json", b"{}"),
            file("ckpt/model.safetensors", &data),
        ],
    );
    let bytes = std::fs::read(&archive).unwrap();
    let cut = sandbox.path().join("cut.tar.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let dest = sandbox.path().join("extracted");
    let err = extract_tar_gz(&cut, &dest, &ExtractLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.tar.gz") && err.contains("truncated"),
        "{err}"
    );
    assert!(!dest.exists());
    assert_eq!(tree(sandbox.path()), ["cut.tar.gz", "whole.tar.gz"]);

    // Not gzip at all.
    std::fs::write(&cut, b"plain text, not an archive").unwrap();
    assert!(extract_tar_gz(&cut, &dest, &ExtractLimits::default()).is_err());
    assert!(!dest.exists());
}

#[test]
fn an_existing_destination_is_never_overwritten() {
    let sandbox = tempfile::tempdir().unwrap();
    let archive = archive_of(sandbox.path(), "a.tar.gz", &[file("x", b"1")]);
    let dest = sandbox.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep"), "mine").unwrap();
    let err = extract_tar_gz(&archive, &dest, &ExtractLimits::default()).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(dest.join("keep")).unwrap(), "mine");
}

#[test]
fn a_pipeline_archive_extracts_to_its_checkpoint_folder() {
    // As the pipeline's `create_checkpoint_archive` writes it (Python's tarfile).
    let sandbox = tempfile::tempdir().unwrap();
    let archive = sandbox.path().join("checkpoint_x.tar.gz");
    let source = sandbox.path().join("src");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    std::fs::write(source.join("config.json"), "{}").unwrap();
    std::fs::write(source.join("model.safetensors"), vec![1u8; 4096]).unwrap();
    std::fs::write(source.join("sub/tokenizer.json"), "{}").unwrap();
    podium_testkit::run_python(
        "import sys, tarfile, pathlib\n\
         src = pathlib.Path(sys.argv[2])\n\
         with tarfile.open(sys.argv[1], 'w:gz') as tar:\n\
         \x20   for f in sorted(src.rglob('*')):\n\
         \x20       if f.is_file():\n\
         \x20           tar.add(f, arcname=f'best_trial_checkpoint/{f.relative_to(src)}', recursive=False)\n",
        &[archive.to_str().unwrap(), source.to_str().unwrap()],
    );
    let dest = sandbox.path().join("out");
    let stats = extract_tar_gz(&archive, &dest, &ExtractLimits::default()).unwrap();
    assert_eq!((stats.files, stats.bytes), (3, 4096 + 4));
    let root = checkpoint_root(&dest).unwrap();
    assert_eq!(root, dest.join("best_trial_checkpoint"));
    assert_eq!(
        std::fs::read(root.join("model.safetensors")).unwrap(),
        vec![1u8; 4096]
    );
    assert!(root.join("sub/tokenizer.json").is_file());
}

/// Every file under `dir` with its bytes, by relative path.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = tree(dir)
        .into_iter()
        .filter(|rel| dir.join(rel).is_file())
        .map(|rel| {
            let bytes = std::fs::read(dir.join(&rel)).unwrap();
            (rel, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn acquisition_extracts_the_refit_archive_a_real_server_serves() {
    use podium_bench::acquire::{AcquisitionSource, acquire_checkpoint};
    use podium_fixtures::random_checkpoint::RandomCheckpoint;
    use podium_keys::TagRegistry;
    use podium_variants::{Environment, OutputLayout};

    let server = podium_testkit::MlflowServer::start().unwrap();
    let project = tempfile::tempdir().unwrap();
    let source = project.path().join("source-checkpoint");
    RandomCheckpoint::tiny_for("distilbert-base-uncased", 7)
        .write(&source)
        .unwrap();
    // The store as the pipeline writes it: the refit's checkpoint only as its .tar.gz artifact.
    let manifest = project.path().join("manifest.json");
    let output = std::process::Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/gen-pipeline-store.py"))
        .args(["--tracking-uri", server.url(), "--store", "basic", "--root"])
        .arg(project.path().join("pipeline"))
        .arg("--checkpoint")
        .arg(&source)
        .arg("--manifest")
        .arg(&manifest)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let refit = manifest["runs"]["distilbert-0-refit-1"].as_str().unwrap();

    let store = podium_mlflow::open_store(Some(server.url())).unwrap();
    let layout = OutputLayout::new(project.path());
    let tags = TagRegistry::defaults();
    let first =
        acquire_checkpoint(store.as_ref(), refit, &tags, &layout, &Environment::Local).unwrap();
    assert_eq!(first.source, AcquisitionSource::Download);
    assert_eq!(
        first.path,
        project
            .path()
            .join("outputs/cache/checkpoints")
            .join(refit)
            .join("checkpoint")
    );
    assert_eq!(contents(&first.path), contents(&source));
    // No temp dir or archive is left beside it, and the next acquisition reuses it.
    assert_eq!(tree(first.path.parent().unwrap())[0], "checkpoint");
    assert!(
        tree(first.path.parent().unwrap())
            .iter()
            .all(|p| p.starts_with("checkpoint")),
        "{:?}",
        tree(first.path.parent().unwrap())
    );
    let second =
        acquire_checkpoint(store.as_ref(), refit, &tags, &layout, &Environment::Local).unwrap();
    assert_eq!(second.source, AcquisitionSource::DownloadCache);
    assert_eq!(second.path, first.path);
}

/// Item 2: a few kilobytes that expand to more than the ratio allows (here 65 MiB of zeros, a
/// thousand times its compressed size) are refused before the member is written, saying so and
/// naming the setting that raises the ratio.
#[test]
fn a_gzip_bomb_is_refused_by_its_expansion_ratio() {
    let zeros = vec![0u8; 65 << 20];
    let archives = tempfile::tempdir().unwrap();
    let archive = archive_of(
        archives.path(),
        "bomb.tar.gz",
        &[file("best_trial_checkpoint/model.safetensors", &zeros)],
    );
    let compressed = std::fs::metadata(&archive).unwrap().len();
    assert!(compressed < 1 << 20, "{compressed}");
    refused(
        &[file("best_trial_checkpoint/model.safetensors", &zeros)],
        ExtractLimits::default(),
        "PODIUM_MAX_ARCHIVE_RATIO",
    );
    // Allowed a larger ratio, the same archive extracts.
    let dest = archives.path().join("out");
    let limits = ExtractLimits {
        max_ratio: 100_000,
        ..ExtractLimits::default()
    };
    let stats = extract_tar_gz(&archive, &dest, &limits).unwrap();
    assert_eq!(stats.bytes, 65 << 20);
}

/// Item 2: an archive that would leave less than PODIUM_MIN_FREE_DISK_BYTES free on its disk
/// is refused before the member is written.
#[test]
fn an_archive_that_would_fill_the_disk_is_refused() {
    let limits = ExtractLimits {
        min_free_bytes: u64::MAX / 2,
        ..ExtractLimits::default()
    };
    refused(&[file("a", b"12345")], limits, "PODIUM_MIN_FREE_DISK_BYTES");
}

/// Item 2: the settings are read as documented, and a bad value is an error naming it.
#[test]
fn extraction_limits_come_from_the_environment() {
    let env = |name: &str| match name {
        "PODIUM_MAX_ARCHIVE_RATIO" => Some("50".to_string()),
        "PODIUM_MIN_FREE_DISK_BYTES" => Some("0".to_string()),
        _ => None,
    };
    let limits = ExtractLimits::from_env(&env).unwrap();
    assert_eq!((limits.max_ratio, limits.min_free_bytes), (50, 0));
    let bad = |name: &str| (name == "PODIUM_MAX_ARCHIVE_RATIO").then(|| "0".to_string());
    let err = ExtractLimits::from_env(&bad).unwrap_err().to_string();
    assert!(err.contains("PODIUM_MAX_ARCHIVE_RATIO"), "{err}");
}

/// Item 3: the scratch folder a process killed mid-extraction left beside the destination is
/// removed by the next extraction there; one still locked by a live extraction is kept.
#[test]
fn an_extraction_killed_mid_way_leaves_nothing_the_next_one_keeps() {
    let archives = tempfile::tempdir().unwrap();
    let archive = archive_of(
        archives.path(),
        "ok.tar.gz",
        &[file("a/config.json", b"{}")],
    );
    let work = tempfile::tempdir().unwrap();
    let dead = work.path().join(".podium-extract-dead");
    std::fs::create_dir_all(dead.join("tree/a")).unwrap();
    std::fs::write(dead.join(".owner.lock"), b"").unwrap();
    std::fs::write(dead.join("tree/a/model.safetensors"), vec![1u8; 4096]).unwrap();
    let live = work.path().join(".podium-extract-live");
    std::fs::create_dir_all(&live).unwrap();
    let lock = std::fs::File::create(live.join(".owner.lock")).unwrap();
    fs4::FileExt::lock(&lock).unwrap();
    extract_tar_gz(
        &archive,
        &work.path().join("extracted"),
        &ExtractLimits::default(),
    )
    .unwrap();
    assert_eq!(
        tree(work.path())
            .into_iter()
            .filter(|path| !path.contains('/'))
            .collect::<Vec<_>>(),
        [".podium-extract-live", "extracted"]
    );
}
