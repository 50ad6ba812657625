//! Safe extraction of checkpoint archives (`.tar.gz`), the form the pipeline logs checkpoints in.
//!
//! An archive comes from a tracking store, so it is treated as hostile: only regular files and
//! directories are extracted; absolute paths, `..` components, symbolic and hard links, device
//! files and FIFOs are refused; the total size, the expansion over the compressed size (a gzip
//! bomb), the disk space it would leave and the number of members are capped; a truncated or
//! corrupt gzip stream is an error. Members are written into a fresh, locked scratch directory
//! next to the destination (`.podium-extract-*`, one left by a killed process is removed by the
//! next extraction there), which is renamed into place only once every member is out — so a
//! refused or broken archive leaves nothing behind, and nothing is ever written outside the
//! destination (no link is ever created, so no later member can be redirected through one).
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

use podium_variants::fs::ScratchDir;

use crate::error::BenchError;

/// Default cap on the bytes an archive may extract to (64 GiB: far above any checkpoint the
/// runtime can load, far below a disk-filling bomb).
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 64 << 30;

/// Default cap on the members of an archive.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Default [`ExtractLimits::max_ratio`] (`PODIUM_MAX_ARCHIVE_RATIO`): checkpoint weights barely
/// compress (about 1.1×), tokenizer files about 4×; a gzip bomb expands 1000×.
pub const DEFAULT_MAX_RATIO: u64 = 20;

/// An archive may always expand to this many bytes, whatever its ratio (small archives of
/// text compress well).
pub const RATIO_FLOOR_BYTES: u64 = 64 << 20;

/// Default [`ExtractLimits::min_free_bytes`] (`PODIUM_MIN_FREE_DISK_BYTES`).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 512 << 20;

/// Prefix of the scratch directories extraction stages its members in.
pub const SCRATCH_PREFIX: &str = ".podium-extract-";

/// What an extraction may produce at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Sum of the sizes of the regular files.
    pub max_total_bytes: u64,
    /// Number of members (files and directories).
    pub max_entries: usize,
    /// Sum of the sizes of the regular files over the size of the compressed archive, at most
    /// (`PODIUM_MAX_ARCHIVE_RATIO`); archives may always expand to [`RATIO_FLOOR_BYTES`].
    pub max_ratio: u64,
    /// Bytes that must stay free on the destination's file system once the archive is out
    /// (`PODIUM_MIN_FREE_DISK_BYTES`): an archive that would leave less is refused before its
    /// member is written.
    pub min_free_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_ratio: DEFAULT_MAX_RATIO,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
        }
    }
}

impl ExtractLimits {
    /// The defaults, with `PODIUM_MAX_ARCHIVE_RATIO` and `PODIUM_MIN_FREE_DISK_BYTES` read
    /// through `env` (unset or empty: the default; `PODIUM_MIN_FREE_DISK_BYTES` may be 0).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, BenchError> {
        let mut limits = ExtractLimits::default();
        let parse = |name: &str, minimum: u64| -> Result<Option<u64>, BenchError> {
            let Some(text) = env(name).filter(|text| !text.trim().is_empty()) else {
                return Ok(None);
            };
            match text.trim().parse::<u64>() {
                Ok(value) if value >= minimum => Ok(Some(value)),
                _ => Err(BenchError::Config {
                    file: name.into(),
                    key: name.into(),
                    message: format!("{text:?} is not a whole number of at least {minimum}"),
                }),
            }
        };
        if let Some(ratio) = parse("PODIUM_MAX_ARCHIVE_RATIO", 1)? {
            limits.max_ratio = ratio;
        }
        if let Some(bytes) = parse("PODIUM_MIN_FREE_DISK_BYTES", 0)? {
            limits.min_free_bytes = bytes;
        }
        Ok(limits)
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
    let staging =
        ScratchDir::new_in(parent, SCRATCH_PREFIX).map_err(|err| refuse(err.to_string()))?;
    let file = File::open(archive).map_err(|source| BenchError::Read {
        file: archive.to_path_buf(),
        source,
    })?;
    let compressed = file
        .metadata()
        .map_err(|source| BenchError::Read {
            file: archive.to_path_buf(),
            source,
        })?
        .len();
    let free = podium_variants::fs::available_space(parent).ok();
    let budget = Budget::new(limits, compressed, free);
    let tree = staging.path().join("tree");
    std::fs::create_dir(&tree)
        .map_err(|err| refuse(format!("cannot create {}: {err}", tree.display())))?;
    let stats = extract_into(file, &tree, limits, &budget).map_err(refuse)?;
    std::fs::rename(&tree, dest).map_err(|err| {
        refuse(format!(
            "cannot move the extracted files to {}: {err}",
            dest.display()
        ))
    })?;
    Ok(stats)
}

/// The most bytes an archive may expand to, and why (for the refusal).
struct Budget {
    bytes: u64,
    why: String,
}

impl Budget {
    /// The tightest of the size cap, the ratio to the compressed size and the disk space free
    /// (`free`, when known) less the space that must stay free.
    fn new(limits: &ExtractLimits, compressed: u64, free: Option<u64>) -> Budget {
        let mut budget = Budget {
            bytes: limits.max_total_bytes,
            why: format!("the size cap of {} bytes", limits.max_total_bytes),
        };
        let by_ratio = compressed
            .saturating_mul(limits.max_ratio)
            .max(RATIO_FLOOR_BYTES);
        if by_ratio < budget.bytes {
            budget = Budget {
                bytes: by_ratio,
                why: format!(
                    "{}× its compressed size of {compressed} bytes, {by_ratio} bytes \
                     (a gzip bomb?; PODIUM_MAX_ARCHIVE_RATIO raises the ratio)",
                    limits.max_ratio
                ),
            };
        }
        if let Some(free) = free {
            let usable = free.saturating_sub(limits.min_free_bytes);
            if usable < budget.bytes {
                budget = Budget {
                    bytes: usable,
                    why: format!(
                        "the {free} bytes free on its disk less the {} that must stay free \
                         (PODIUM_MIN_FREE_DISK_BYTES)",
                        limits.min_free_bytes
                    ),
                };
            }
        }
        budget
    }
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
    budget: &Budget,
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
        if stats.bytes.saturating_add(size) > budget.bytes {
            return Err(format!(
                "member {} ({size} bytes) would expand the archive past {}",
                raw_path.display(),
                budget.why
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
