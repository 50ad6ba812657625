//! Atomic file writes (the one place podium replaces a file on disk) and bounded reads (the one
//! place podium reads a small input file it did not write).
//!
//! A reader (another process, a crashed run resumed later) sees either the old file or the new
//! one, never a half-written file: the bytes go to a temporary file in the same directory, are
//! flushed to the device, and the temporary file is renamed over the destination.
//!
//! Inputs named by a user or a store (configs, `config.json`, test data, CA bundles) are read
//! with [`read_regular_file`]: a FIFO, `/dev/zero` or a multi-gigabyte file would otherwise
//! block or exhaust memory, so only regular files up to a size cap are read.

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::VariantsError;

/// Replaces `path` with `bytes` atomically, creating missing parent directories.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("cache/result.json");
/// podium_variants::fs::write_atomic(&path, b"{}")?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// # Ok(()) }
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VariantsError> {
    write_atomic_from(path, &mut &bytes[..]).map(|_| ())
}

/// [`write_atomic`] streaming from `source` (a file too large to hold in memory): the bytes
/// read go to a temporary file in the destination's directory, which is flushed and renamed
/// over `path` only once `source` is read to its end. Returns the bytes written. A read error
/// leaves `path` as it was (and no temporary file).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("artifacts/report.html");
/// let written = podium_variants::fs::write_atomic_from(&path, &mut &b"<html></html>"[..])?;
/// assert_eq!((written, std::fs::read(&path)?), (13, b"<html></html>".to_vec()));
/// # Ok(()) }
/// ```
pub fn write_atomic_from(
    path: &Path,
    source: &mut dyn std::io::Read,
) -> Result<u64, VariantsError> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(VariantsError::io("create directory", parent))?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| VariantsError::InvalidName {
            what: "file path".into(),
            value: path.display().to_string(),
            reason: "has no file name".into(),
        })?;
    // Same directory as the destination: a rename across file systems would not be atomic.
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(parent)
        .map_err(VariantsError::io("create a temporary file in", parent))?;
    let written = std::io::copy(source, &mut temp)
        .map_err(VariantsError::io("write a temporary file for", path))?;
    temp.flush()
        .map_err(VariantsError::io("write a temporary file for", path))?;
    temp.as_file()
        .sync_all()
        .map_err(VariantsError::io("flush a temporary file for", path))?;
    temp.persist(path).map_err(|err| VariantsError::Io {
        context: format!("cannot rename a temporary file to {}", path.display()),
        source: err.error,
    })?;
    sync_directory(parent);
    Ok(written)
}

/// Serialises `value` as pretty JSON (with a trailing newline) and writes it atomically.
pub fn write_json_atomic<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<(), VariantsError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| VariantsError::Json {
        context: path.display().to_string(),
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Size cap for config files (YAML and JSON written by people or the pipeline).
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` whole when it is a regular file (after following symlinks) of at most
/// `max_bytes` bytes. Anything else (a FIFO, a device such as `/dev/zero`, a directory, a file
/// larger than the cap, also one that grows past it while being read) is an error of kind
/// [`std::io::ErrorKind::InvalidInput`] saying which, without blocking or reading more than
/// `max_bytes + 1` bytes. Callers wrap the error with the path and what the file is.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use podium_variants::fs::read_regular_file;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("config.json");
/// std::fs::write(&path, b"{}")?;
/// assert_eq!(read_regular_file(&path, 1024)?, b"{}");
/// assert!(read_regular_file(&path, 1).is_err());
/// assert!(read_regular_file(std::path::Path::new("/dev/zero"), 1024).is_err());
/// # Ok(()) }
/// ```
pub fn read_regular_file(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let before = std::fs::metadata(path)?;
    check_regular(&before, max_bytes)?;
    let file = std::fs::File::open(path)?;
    // Checked again on the opened file, in case the path was swapped in between.
    let opened = file.metadata()?;
    check_regular(&opened, max_bytes)?;
    let capacity = usize::try_from(opened.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &Path, max_bytes: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular_file(path, max_bytes)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8 text"))
}

fn check_regular(meta: &std::fs::Metadata, max_bytes: u64) -> std::io::Result<()> {
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what}; only regular files are read"),
        ));
    }
    if meta.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(())
}

fn too_large(max_bytes: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("larger than the {max_bytes}-byte limit"),
    )
}

/// Makes the rename itself durable. Best effort: not every platform lets a directory be opened
/// and synced, and the rename has already happened atomically either way.
fn sync_directory(dir: &Path) {
    #[cfg(unix)]
    if let Err(err) = std::fs::File::open(dir).and_then(|handle| handle.sync_all()) {
        tracing::debug!("cannot sync directory {}: {err}", dir.display());
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("index.json")]);
    }

    #[cfg(unix)]
    #[test]
    fn bounded_reads_refuse_fifos_devices_and_large_files_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let started = std::time::Instant::now();
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let err = read_regular_file(path, 1 << 20).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 2048]).unwrap();
        let err = read_regular_file(&big, 1024).unwrap_err();
        assert!(err.to_string().contains("1024-byte limit"), "{err}");
        assert_eq!(read_regular_file(&big, 2048).unwrap().len(), 2048);
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_regular_text(&big, 16).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn json_is_pretty_with_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/value.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"a\": 1\n}\n"
        );
    }

    #[test]
    fn concurrent_writers_never_expose_partial_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.json");
        let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|scope| {
            for payload in &payloads {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, payload).unwrap();
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..200 {
                    if let Ok(bytes) = std::fs::read(&path) {
                        assert!(
                            payloads.contains(&bytes),
                            "torn read of {} bytes",
                            bytes.len()
                        );
                    }
                }
            });
        });
    }
}
