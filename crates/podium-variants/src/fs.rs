//! Atomic file writes (the one place podium replaces a file on disk) and bounded reads (the one
//! place podium reads a small input file it did not write).
//!
//! A reader (another process, a crashed run resumed later) sees either the old file or the new
//! one, never a half-written file: the bytes go to a temporary file in the same directory, are
//! flushed to the device, and the temporary file is renamed over the destination.
//!
//! Inputs named by a user or a store (configs, `config.json`, test data, CA bundles) are read
//! with [`read_regular_file`] (podium-io's, re-exported): a FIFO, `/dev/zero` or a
//! multi-gigabyte file would otherwise block or exhaust memory, so only regular files up to a
//! size cap are read; configs with [`read_config_text`], which also bounds their nesting.
//! Downloads and extractions stage their files in a [`ScratchDir`].

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
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // The mode any other program's new file gets (0666 less the umask, as Python's open()
    // writes the pipeline's files), not a temporary file's private 0600: results and report
    // pages are shared with the people who read them.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder
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

/// The deepest nesting of collections a config may have: serde_yaml's own recursion limit, so
/// every config podium reads can be parsed by every parser it uses.
pub const MAX_CONFIG_DEPTH: usize = 128;

pub use podium_io::{ReadError, open_regular_file, read_regular_file, read_regular_text};

/// Reads a config file (YAML or JSON) for parsing: a regular file of at most
/// [`MAX_CONFIG_BYTES`] of UTF-8 text whose collections nest at most [`MAX_CONFIG_DEPTH`]
/// levels deep. Every config podium reads comes through here, so a FIFO, `/dev/zero` or a
/// document of 100,000 `[` is refused in milliseconds, naming the file, whichever parser reads
/// it next.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use podium_variants::fs::read_config_text;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("paths.yaml");
/// std::fs::write(&path, "base: {outputs: outputs}\n")?;
/// assert_eq!(read_config_text(&path)?, "base: {outputs: outputs}\n");
/// std::fs::write(&path, format!("a: {}", "[".repeat(100_000)))?;
/// let err = read_config_text(&path).unwrap_err().to_string();
/// assert!(err.contains("paths.yaml") && err.contains("nested deeper than 128"), "{err}");
/// # Ok(()) }
/// ```
pub fn read_config_text(path: &Path) -> Result<String, ReadError> {
    let text = read_regular_text(path, MAX_CONFIG_BYTES)?;
    check_nesting(&text).map_err(|reason| ReadError::Refused {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(text)
}

/// Fails when the YAML (or JSON) `text` nests collections deeper than [`MAX_CONFIG_DEPTH`],
/// saying where. It reads tokens only up to that depth, so it takes time linear in the text
/// where a YAML parser that keeps every open level (libyaml, under serde_yaml) takes quadratic
/// time on deep flow nesting (100,000 `[`: ~25 s). A syntax error is left to the parser that
/// reads the text next, which reports it in its own words.
pub fn check_nesting(text: &str) -> Result<(), String> {
    use yaml_rust2::scanner::{Scanner, TokenType};
    let mut scanner = Scanner::new(text.chars());
    let mut depth = 0usize;
    let too_deep = |line: usize, column: usize| {
        format!("nested deeper than {MAX_CONFIG_DEPTH} levels at line {line}, column {column}")
    };
    loop {
        match scanner.next_token() {
            Ok(Some(token)) => match token.1 {
                TokenType::BlockSequenceStart
                | TokenType::BlockMappingStart
                | TokenType::FlowSequenceStart
                | TokenType::FlowMappingStart => {
                    depth += 1;
                    if depth > MAX_CONFIG_DEPTH {
                        return Err(too_deep(token.0.line(), token.0.col() + 1));
                    }
                }
                TokenType::BlockEnd | TokenType::FlowSequenceEnd | TokenType::FlowMappingEnd => {
                    depth = depth.saturating_sub(1);
                }
                TokenType::StreamEnd => return Ok(()),
                _ => {}
            },
            Ok(None) => return Ok(()),
            // The scanner's own limit (255 open flow levels) is deeper than ours: reached only
            // by text the count above has not seen yet, so it is the same verdict.
            Err(err) if err.info().contains("recursion limit") => {
                return Err(too_deep(err.marker().line(), err.marker().col() + 1));
            }
            Err(_) => return Ok(()),
        }
    }
}

/// Bytes free for an unprivileged user on the file system holding `path`.
pub fn available_space(path: &Path) -> std::io::Result<u64> {
    fs4::available_space(path)
}

/// A private working directory inside a destination folder, held under a file lock while in
/// use: downloads and archive extraction stage their files here, then rename the result into
/// place. Creating one first removes the directories of the same `prefix` that a killed
/// process left behind (their lock died with it, also on kill -9), so they never pile up.
/// Removed, then its lock released, when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    // Field order: the lock is released after the directory is gone.
    dir: tempfile::TempDir,
    _lock: std::fs::File,
}

/// File inside a scratch directory that its owner holds locked while it works.
const SCRATCH_LOCK: &str = ".owner.lock";

/// A scratch directory without its lock file is in use only in the instant between its
/// creation and the lock's; older than this, it was left by a process that died in between.
const UNLOCKED_SCRATCH_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

impl ScratchDir {
    /// Creates `parent` when missing, removes the stale `prefix*` directories in it, then
    /// creates and locks a fresh `prefix*` directory there. Errors say what failed on which
    /// path.
    pub fn new_in(parent: &Path, prefix: &str) -> std::io::Result<ScratchDir> {
        let failed = |action: &str, path: &Path| {
            let context = format!("cannot {action} {}", path.display());
            move |err: std::io::Error| std::io::Error::new(err.kind(), format!("{context}: {err}"))
        };
        std::fs::create_dir_all(parent).map_err(failed("create directory", parent))?;
        remove_stale_scratch(parent, prefix);
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(failed("create a temporary directory in", parent))?;
        let lock_path = dir.path().join(SCRATCH_LOCK);
        let lock = std::fs::File::create(&lock_path).map_err(failed("create", &lock_path))?;
        fs4::FileExt::lock(&lock).map_err(failed("lock", &lock_path))?;
        Ok(ScratchDir { dir, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the `prefix*` directories in `parent` whose owner is gone: their lock is free, or
/// they never got one and are old. Best effort: what cannot be removed stays for a later run.
fn remove_stale_scratch(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(prefix));
        if !ours || !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let stale = match std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join(SCRATCH_LOCK))
        {
            Ok(lock) => fs4::FileExt::try_lock(&lock).is_ok(),
            Err(_) => entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > UNLOCKED_SCRATCH_GRACE),
        };
        if stale {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => tracing::info!("removed {} left by an interrupted run", dir.display()),
                Err(err) => tracing::debug!("cannot remove stale {}: {err}", dir.display()),
            }
        }
    }
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

    #[cfg(unix)]
    #[test]
    fn replaced_files_get_the_mode_a_new_file_gets() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, b"x").unwrap();
        let atomic = dir.path().join("atomic.txt");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

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
    fn deep_nesting_is_refused_in_milliseconds_and_normal_nesting_passes() {
        for deep in [
            format!("a: {}", "[".repeat(100_000)),
            format!("a: {}", "{a: ".repeat(100_000)),
            format!("a:\n{}x\n", "- ".repeat(50_000)),
            (0..200)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect::<String>(),
        ] {
            let started = std::time::Instant::now();
            let err = check_nesting(&deep).unwrap_err();
            assert!(err.contains("nested deeper than 128 levels"), "{err}");
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
        }
        let at_limit = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(check_nesting(&at_limit), Ok(()));
        let over = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(
            check_nesting(&over)
                .unwrap_err()
                .contains("line 1, column 129")
        );
        // Brackets inside scalars, comments and block scalars are text, not nesting; syntax
        // errors are left to the parser.
        let text = format!(
            "pattern: \"{0}\"\nplain: a{0}\n# {0}\nblock: |\n  {0}\nbad: [\n",
            "[".repeat(300)
        );
        assert_eq!(check_nesting(&text), Ok(()));
    }

    #[cfg(unix)]
    #[test]
    fn config_reads_name_the_file_and_refuse_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("paths.yaml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_config_text(&fifo).unwrap_err().to_string();
        assert!(
            err.contains("paths.yaml") && err.contains("not a regular file"),
            "{err}"
        );
        let deep = dir.path().join("deep.yaml");
        std::fs::write(&deep, "[".repeat(100_000)).unwrap();
        let err = read_config_text(&deep).unwrap_err().to_string();
        assert!(
            err.contains("deep.yaml") && err.contains("nested deeper"),
            "{err}"
        );
    }

    #[test]
    fn scratch_dirs_of_dead_owners_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A dead owner: a scratch dir whose lock file nobody holds (its process was killed).
        let dead = dir.path().join(".podium-archive-dead");
        std::fs::create_dir_all(dead.join("extracted")).unwrap();
        std::fs::write(dead.join(SCRATCH_LOCK), "").unwrap();
        std::fs::write(dead.join("extracted/model.safetensors"), vec![0u8; 4096]).unwrap();
        let other = dir.path().join(".podium-download-dead");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join(SCRATCH_LOCK), "").unwrap();
        let live = ScratchDir::new_in(dir.path(), ".podium-archive-").unwrap();
        let second = ScratchDir::new_in(dir.path(), ".podium-archive-").unwrap();
        assert!(!dead.exists(), "the dead owner's scratch dir stays");
        assert!(live.path().is_dir(), "a live scratch dir was removed");
        assert!(other.exists(), "another prefix was touched");
        let live_path = live.path().to_path_buf();
        drop(live);
        drop(second);
        assert!(!live_path.exists());
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
