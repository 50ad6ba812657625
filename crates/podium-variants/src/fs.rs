//! Atomic file writes: the one place podium replaces a file on disk.
//!
//! A reader (another process, a crashed run resumed later) sees either the old file or the new
//! one, never a half-written file: the bytes go to a temporary file in the same directory, are
//! flushed to the device, and the temporary file is renamed over the destination.

use std::io::Write;
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
    temp.write_all(bytes)
        .map_err(VariantsError::io("write a temporary file for", path))?;
    temp.as_file()
        .sync_all()
        .map_err(VariantsError::io("flush a temporary file for", path))?;
    temp.persist(path).map_err(|err| VariantsError::Io {
        context: format!("cannot rename a temporary file to {}", path.display()),
        source: err.error,
    })?;
    sync_directory(parent);
    Ok(())
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
