//! Safe extraction of checkpoint archives (`.tar.gz`), the form the pipeline logs checkpoints in.
//!
//! An archive comes from a tracking store, so it is treated as hostile: only regular files and
//! directories are extracted; absolute paths, `..` components, symbolic and hard links, device
//! files and FIFOs are refused; the total size and the number of members are capped; a truncated
//! or corrupt gzip stream is an error. Members are written into a fresh temporary directory next
//! to the destination, which is renamed into place only once every member is out — so a refused
//! or broken archive leaves nothing behind, and nothing is ever written outside the destination
//! (no link is ever created, so no later member can be redirected through one).
//!
//! ```
//! use podium_bench::archive::{extract_tar_gz, ExtractLimits};
//!
//! let dir = tempfile::tempdir()?;
//! // Build a small archive the way Python's tarfile does: members under one folder.
//! let archive = dir.path().join("checkpoint.tar.gz");
//! let gz = flate2::write::GzEncoder::new(std::fs::File::create(&archive)?, flate2::Compression::fast());
//! let mut builder = tar::Builder::new(gz);
//! let mut header = tar::Header::new_gnu();
//! header.set_size(2);
//! header.set_mode(0o644);
//! builder.append_data(&mut header, "best_trial_checkpoint/config.json", &b"{}"[..])?;
//! builder.into_inner()?.finish()?;
//!
//! let dest = dir.path().join("extracted");
//! let stats = extract_tar_gz(&archive, &dest, &ExtractLimits::default())?;
//! assert_eq!(stats.files, 1);
//! assert_eq!(std::fs::read_to_string(dest.join("best_trial_checkpoint/config.json"))?, "{}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::error::BenchError;

/// Default cap on the bytes an archive may extract to (64 GiB: far above any checkpoint the
/// runtime can load, far below a disk-filling bomb).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 64 << 30;

/// Default cap on the members of an archive.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// What an extraction may produce at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Sum of the sizes of the regular files.
    pub max_total_bytes: u64,
    /// Number of members (files and directories).
    pub max_entries: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractStats {
    /// Regular files written.
    pub files: usize,
    /// Directories created.
    pub directories: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Extracts the `.tar.gz` file `archive` into the directory `dest`, which must not exist yet
/// (see the module docs for what is refused). On any error `dest` is not created.
pub fn extract_tar_gz(
    archive: &Path,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractStats, BenchError> {
    let refuse = |message: String| BenchError::Archive {
        archive: archive.to_path_buf(),
        message,
    };
    if dest.exists() {
        return Err(refuse(format!(
            "the destination {} already exists",
            dest.display()
        )));
    }
    let parent = dest
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|err| refuse(format!("cannot create {}: {err}", parent.display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".podium-extract-")
        .tempdir_in(parent)
        .map_err(|err| {
            refuse(format!(
                "cannot create a temp dir in {}: {err}",
                parent.display()
            ))
        })?;
    let file = File::open(archive).map_err(|source| BenchError::Read {
        file: archive.to_path_buf(),
        source,
    })?;
    let stats = extract_into(file, staging.path(), limits).map_err(refuse)?;
    let staged = staging.keep();
    std::fs::rename(&staged, dest).map_err(|err| {
        let _ = std::fs::remove_dir_all(&staged);
        refuse(format!(
            "cannot move the extracted files to {}: {err}",
            dest.display()
        ))
    })?;
    Ok(stats)
}

/// The member path as a relative path of normal components, or why it is refused.
fn safe_member_path(path: &Path) -> Result<PathBuf, String> {
    let mut safe = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => safe.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("member {} has a `..` component", path.display()));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("member {} has an absolute path", path.display()));
            }
        }
    }
    if safe.as_os_str().is_empty() {
        return Err(format!("member {:?} has an empty path", path.display()));
    }
    Ok(safe)
}

fn extract_into(
    reader: impl Read,
    root: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractStats, String> {
    let gzip = flate2::read::GzDecoder::new(io::BufReader::new(reader));
    let mut archive = tar::Archive::new(gzip);
    let mut stats = ExtractStats::default();
    let entries = archive
        .entries()
        .map_err(|err| format!("not a readable tar.gz: {err}"))?;
    for (index, entry) in entries.enumerate() {
        let mut entry =
            entry.map_err(|err| format!("member {index}: truncated or corrupt archive: {err}"))?;
        if index >= limits.max_entries {
            return Err(format!(
                "more than {} members (the member cap)",
                limits.max_entries
            ));
        }
        let raw_path = entry
            .path()
            .map_err(|err| format!("member {index}: unreadable path: {err}"))?
            .into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            // Archive-wide metadata (a PAX global header), not a member.
            continue;
        }
        let relative = safe_member_path(&raw_path)?;
        let target = root.join(&relative);
        if entry_type.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|err| format!("cannot create {}: {err}", target.display()))?;
            stats.directories += 1;
            continue;
        }
        if !(entry_type.is_file() || entry_type.is_contiguous()) {
            let kind = if entry_type.is_symlink() {
                "a symbolic link"
            } else if entry_type.is_hard_link() {
                "a hard link"
            } else {
                "not a regular file or directory"
            };
            return Err(format!("member {} is {kind}", raw_path.display()));
        }
        let size = entry
            .header()
            .size()
            .map_err(|err| format!("member {}: unreadable size: {err}", raw_path.display()))?;
        if stats.bytes.saturating_add(size) > limits.max_total_bytes {
            return Err(format!(
                "member {} ({size} bytes) takes the archive past the size cap of {} bytes",
                raw_path.display(),
                limits.max_total_bytes
            ));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
        }
        let mut out = File::create(&target)
            .map_err(|err| format!("cannot create {}: {err}", target.display()))?;
        // The tar reader yields at most the header's size; `take` makes the cap hold even so.
        let written = io::copy(&mut (&mut entry).take(size), &mut out).map_err(|err| {
            format!(
                "member {}: truncated or corrupt archive: {err}",
                raw_path.display()
            )
        })?;
        if written != size {
            return Err(format!(
                "member {}: truncated archive ({written} of {size} bytes)",
                raw_path.display()
            ));
        }
        stats.bytes += written;
        stats.files += 1;
    }
    Ok(stats)
}

/// The checkpoint directory inside an extracted archive: the root itself when it holds a
/// `config.json`, else the single top-level directory that does (the pipeline's archives put
/// every member under `best_trial_checkpoint/`).
pub fn checkpoint_root(extracted: &Path) -> Option<PathBuf> {
    if extracted.join("config.json").is_file() {
        return Some(extracted.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(extracted)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && path.join("config.json").is_file())
        .collect();
    dirs.sort();
    (dirs.len() == 1).then(|| dirs.remove(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn member_paths() {
        assert_eq!(
            safe_member_path(Path::new("./a/b.txt")).unwrap(),
            PathBuf::from("a/b.txt")
        );
        assert!(safe_member_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_member_path(Path::new("a/../../x")).is_err());
        assert!(safe_member_path(Path::new(".")).is_err());
    }
}
