//! The one reader of the files podium is given (configs, `config.json`, tokenizers, test data,
//! metrics and state files, CA bundles): regular files only, up to a size cap.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use podium_io::{ReadError, read_regular_file};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("config.json");
//! std::fs::write(&path, b"{}")?;
//! assert_eq!(read_regular_file(&path, 1024)?, b"{}");
//! // Too large, a device, a missing file: errors that name the file and say why.
//! assert!(matches!(read_regular_file(&path, 1), Err(ReadError::Refused { .. })));
//! assert!(matches!(
//!     read_regular_file(std::path::Path::new("/dev/zero"), 1024),
//!     Err(ReadError::Refused { .. })
//! ));
//! assert!(read_regular_file(&dir.path().join("missing"), 1024).unwrap_err().is_not_found());
//! # Ok(()) }
//! ```
//!
//! A FIFO named as an input would block the open until a writer appears, `/dev/zero` (or a link
//! to it) would be read until memory runs out, and a multi-gigabyte file would be read whole: so
//! only regular files (after following symlinks) of at most the caller's cap are read, and
//! the check happens before the file is opened and again on the opened file.
//!
//! It is a crate of its own, below everything, because podium-runtime (which depends on no other
//! podium crate) reads `config.json`, `tokenizer.json` and test data too, and every file podium
//! reads goes through this one rule (`tests/invariants.rs` finds no other reader).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// It could not be opened or read (missing, no permission, an I/O error).
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It is not read, by rule: not a regular file, larger than the cap, not UTF-8 text.
    #[error("{}: {reason}", .path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl ReadError {
    /// True when the file does not exist (callers with a default treat that as "absent").
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. } | ReadError::Refused { path, .. } => path,
        }
    }

    /// What is wrong, without the path (for errors that name the file themselves).
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { source, .. } => source.to_string(),
            ReadError::Refused { reason, .. } => reason.clone(),
        }
    }
}

/// Reads `path` whole when it is a regular file (after following symlinks) of at most
/// `max_bytes` bytes. Anything else (a FIFO, a device such as `/dev/zero`, a directory, a file
/// larger than the cap, also one that grows past it while being read) is
/// [`ReadError::Refused`], without blocking or reading more than `max_bytes + 1` bytes.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ReadError> {
    let (file, size) = open_regular_file(path, max_bytes)?;
    let capacity = usize::try_from(size).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::Refused {
            path: path.to_path_buf(),
            reason: too_large(max_bytes),
        });
    }
    Ok(bytes)
}

/// Opens `path` for a caller that streams it (an upload) when it is a regular file (after
/// following symlinks) of at most `max_bytes` bytes, by the rule of [`read_regular_file`]:
/// checked before opening (a FIFO would block the open) and again on the opened file. Returns
/// the file and its size at that check; the caller reads no more than that size.
pub fn open_regular_file(path: &Path, max_bytes: u64) -> Result<(std::fs::File, u64), ReadError> {
    let io = |source: std::io::Error| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let refuse = |reason: String| ReadError::Refused {
        path: path.to_path_buf(),
        reason,
    };
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let before = std::fs::metadata(path).map_err(io)?;
    check_regular(&before, max_bytes).map_err(refuse)?;
    let file = std::fs::File::open(path).map_err(io)?;
    // Checked again on the opened file, in case the path was swapped in between.
    let opened = file.metadata().map_err(io)?;
    check_regular(&opened, max_bytes).map_err(refuse)?;
    Ok((file, opened.len()))
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    String::from_utf8(read_regular_file(path, max_bytes)?).map_err(|_| ReadError::Refused {
        path: path.to_path_buf(),
        reason: "not valid UTF-8 text".into(),
    })
}

fn check_regular(meta: &std::fs::Metadata, max_bytes: u64) -> Result<(), String> {
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(format!("{what}; only regular files are read"));
    }
    if meta.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(())
}

fn too_large(max_bytes: u64) -> String {
    format!("larger than the {max_bytes}-byte limit")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn fifos_devices_directories_and_large_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let zero_link = dir.path().join("zero.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero_link).unwrap();
        let started = std::time::Instant::now();
        for path in [
            fifo.as_path(),
            Path::new("/dev/zero"),
            &zero_link,
            dir.path(),
        ] {
            let err = read_regular_file(path, 1 << 20).unwrap_err();
            assert!(matches!(err, ReadError::Refused { .. }), "{path:?}: {err}");
            assert!(
                err.to_string().starts_with(&path.display().to_string()),
                "{err}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2048]).unwrap();
        let err = read_regular_file(&big, 1024).unwrap_err();
        assert!(err.to_string().contains("1024-byte limit"), "{err}");
        assert_eq!(read_regular_file(&big, 2048).unwrap().len(), 2048);
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_regular_text(&big, 16).unwrap_err().reason(),
            "not valid UTF-8 text"
        );
        let missing = read_regular_file(&dir.path().join("missing"), 16).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
    }
}
