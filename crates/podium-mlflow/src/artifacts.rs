//! Artifact transfer shared by the stores: where a run's artifacts live, which paths are safe,
//! the temp-dir-then-rename landing of downloads, and uploads ([`upload_to_local_root`] for
//! stores whose runs keep their artifacts in a local directory; the REST store's proxy upload
//! checks and opens its file with [`open_upload_source`]).
//!
//! Kept whole on purpose: location parsing, path checks, the byte/entry budget and the staging
//! directory are one trust boundary (about 800 lines before the tests), reviewed together.
//!
//! Everything a server says is untrusted: absolute paths, `..` components, separators inside
//! listing names and anything else that would land outside the target are refused; a file is
//! never written past the size its listing gives, and a whole download stops at
//! [`DownloadLimits`] (bytes and entries), listed sizes or not.
//!
//! Downloads are staged in a `.podium-download-*` directory inside the destination, held under
//! a file lock while in use; one left behind by a killed process is removed by the next
//! download into the same destination.
//!
//! Uploads follow the same rules the other way: the artifact path must be a relative path of
//! plain components, the source a regular file no larger than [`DownloadLimits::max_bytes`]
//! (`PODIUM_MAX_DOWNLOAD_BYTES`), and an upload into a local artifact root replaces the file
//! atomically (temporary file in the same folder, renamed into place), never following a
//! symbolic link inside the root.

use std::fs;
use std::path::{Component, Path, PathBuf};

use podium_variants::fs::ScratchDir;

use crate::error::MlflowError;
use crate::model::RunInfo;

/// Deepest directory nesting followed (a listing cannot lead the download on forever).
const MAX_DEPTH: usize = 64;

/// Prefix of the staging directories.
const STAGING_PREFIX: &str = ".podium-download-";

/// Default [`DownloadLimits::max_bytes`] (`PODIUM_MAX_DOWNLOAD_BYTES`): 64 GiB, many times
/// the largest checkpoint podium benchmarks.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 64 << 30;

/// Default [`DownloadLimits::max_entries`] (`PODIUM_MAX_DOWNLOAD_FILES`).
pub const DEFAULT_MAX_DOWNLOAD_ENTRIES: u64 = 10_000;

/// Caps of one artifact download (a file or a whole directory tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Bytes written in all (`PODIUM_MAX_DOWNLOAD_BYTES`).
    pub max_bytes: u64,
    /// Files and directories created in all (`PODIUM_MAX_DOWNLOAD_FILES`).
    pub max_entries: u64,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        DownloadLimits {
            max_bytes: DEFAULT_MAX_DOWNLOAD_BYTES,
            max_entries: DEFAULT_MAX_DOWNLOAD_ENTRIES,
        }
    }
}

impl DownloadLimits {
    /// Reads `PODIUM_MAX_DOWNLOAD_BYTES` and `PODIUM_MAX_DOWNLOAD_FILES` through `env` (unset
    /// or empty → default).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, MlflowError> {
        let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut limits = DownloadLimits::default();
        if let Some(value) = get("PODIUM_MAX_DOWNLOAD_BYTES") {
            limits.max_bytes =
                crate::rest::parse_positive_count("PODIUM_MAX_DOWNLOAD_BYTES", &value)?;
        }
        if let Some(value) = get("PODIUM_MAX_DOWNLOAD_FILES") {
            limits.max_entries =
                crate::rest::parse_positive_count("PODIUM_MAX_DOWNLOAD_FILES", &value)?;
        }
        Ok(limits)
    }
}

/// What is left of a download's [`DownloadLimits`].
struct Budget {
    limits: DownloadLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    fn new(limits: &DownloadLimits) -> Budget {
        Budget {
            limits: *limits,
            bytes: limits.max_bytes,
            entries: limits.max_entries,
        }
    }

    /// Counts one more file or directory.
    fn take_entry(&mut self, run_id: &str, path: &str) -> Result<(), MlflowError> {
        if self.entries == 0 {
            return Err(artifact_error(
                run_id,
                path,
                format!(
                    "more than {} files and directories (PODIUM_MAX_DOWNLOAD_FILES)",
                    self.limits.max_entries
                ),
            ));
        }
        self.entries -= 1;
        Ok(())
    }

    /// Counts `bytes` more written.
    fn take_bytes(&mut self, run_id: &str, path: &str, bytes: u64) -> Result<(), MlflowError> {
        if bytes > self.bytes {
            return Err(self.bytes_exceeded(run_id, path));
        }
        self.bytes -= bytes;
        Ok(())
    }

    fn bytes_exceeded(&self, run_id: &str, path: &str) -> MlflowError {
        artifact_error(
            run_id,
            path,
            format!(
                "more than {} bytes in all (PODIUM_MAX_DOWNLOAD_BYTES)",
                self.limits.max_bytes
            ),
        )
    }
}

/// Where a run's artifact root lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// `mlflow-artifacts:/<root>` (or `mlflow-artifacts://host:port/<root>`), served by the
    /// tracking server's artifact proxy.
    Proxy {
        /// `host:port` when the URI names one.
        authority: Option<String>,
        /// The root path relative to the server's artifact destination, without slashes around.
        root: String,
    },
    /// A directory on this machine (a plain path or `file://`).
    Local(PathBuf),
    /// Anything else (s3, gs, dbfs, …), by scheme.
    Unsupported(String),
}

impl ArtifactLocation {
    /// Classifies an `artifact_uri`.
    ///
    /// ```
    /// use podium_mlflow::artifacts::ArtifactLocation;
    /// assert_eq!(
    ///     ArtifactLocation::parse("mlflow-artifacts:/1/abc/artifacts"),
    ///     ArtifactLocation::Proxy { authority: None, root: "1/abc/artifacts".into() }
    /// );
    /// assert_eq!(
    ///     ArtifactLocation::parse("file:///tmp/mlruns/1/abc/artifacts"),
    ///     ArtifactLocation::Local("/tmp/mlruns/1/abc/artifacts".into())
    /// );
    /// assert_eq!(
    ///     ArtifactLocation::parse("s3://bucket/x"),
    ///     ArtifactLocation::Unsupported("s3".into())
    /// );
    /// ```
    pub fn parse(uri: &str) -> ArtifactLocation {
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            let (authority, path) = match rest.strip_prefix("//") {
                Some(after) => {
                    let end = after.find('/').unwrap_or(after.len());
                    let authority = &after[..end];
                    (
                        (!authority.is_empty()).then(|| authority.to_string()),
                        &after[end..],
                    )
                }
                None => (None, rest),
            };
            return ArtifactLocation::Proxy {
                authority,
                root: path.trim_matches('/').to_string(),
            };
        }
        if let Some(rest) = uri.strip_prefix("file://") {
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            return ArtifactLocation::Local(PathBuf::from(percent_decode(path)));
        }
        if let Some(rest) = uri.strip_prefix("file:") {
            return ArtifactLocation::Local(PathBuf::from(percent_decode(rest)));
        }
        match uri.split_once("://") {
            Some((scheme, _)) if !scheme.contains('/') => {
                ArtifactLocation::Unsupported(scheme.to_string())
            }
            _ => ArtifactLocation::Local(PathBuf::from(uri)),
        }
    }
}

fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let decoded = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The name as the server gave it (a basename; untrusted).
    pub path: String,
    /// A directory.
    pub is_dir: bool,
    /// Size in bytes of a file, when listed.
    pub size: Option<u64>,
}

/// A remote artifact tree (the tracking server's proxy).
pub(crate) trait ArtifactSource {
    /// Lists the directory `remote_dir` (a `/`-joined path relative to the artifact root of the
    /// server).
    fn list(&self, remote_dir: &str) -> Result<Vec<ArtifactEntry>, MlflowError>;
    /// Writes the file `remote_path` to `to`, returning the bytes written: at most
    /// `max_bytes + 1`, a body longer than that is not read further (the caller refuses it).
    fn fetch(&self, remote_path: &str, to: &Path, max_bytes: u64) -> Result<u64, MlflowError>;
}

/// Checks a run-relative artifact path and returns its normal components. Refuses absolute
/// paths, `..`, backslashes, drive prefixes and NUL.
pub fn safe_components(path: &str) -> Result<Vec<&str>, String> {
    if path.starts_with('/') {
        return Err("absolute paths are refused".to_string());
    }
    if path.contains('\\') || path.contains('\0') {
        return Err("backslashes and NUL are refused in artifact paths".to_string());
    }
    let mut components = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("`..` components are refused".to_string()),
            name if name.contains(':') && name.len() >= 2 && components.is_empty() => {
                // `C:` would make the joined path absolute on Windows.
                return Err(format!("drive-like component {name:?} is refused"));
            }
            name => components.push(name),
        }
    }
    Ok(components)
}

/// A listing entry's name must be exactly one normal path component.
fn safe_entry_name(name: &str) -> Result<&str, String> {
    let components = safe_components(name)?;
    match components.as_slice() {
        [single] => {
            let mut parsed = Path::new(single).components();
            match (parsed.next(), parsed.next()) {
                (Some(Component::Normal(_)), None) => Ok(single),
                _ => Err(format!("listing name {name:?} is not a plain file name")),
            }
        }
        _ => Err(format!(
            "listing name {name:?} must be a single file name (it would escape its directory)"
        )),
    }
}

pub(crate) fn artifact_error(run: &str, path: &str, message: impl Into<String>) -> MlflowError {
    MlflowError::Artifact {
        run_id: run.to_string(),
        path: path.to_string(),
        message: message.into(),
    }
}

pub(crate) fn unsupported(run: &RunInfo, path: &str, scheme: &str) -> MlflowError {
    artifact_error(
        &run.run_id,
        path,
        format!(
            "artifact URI {:?} uses scheme {scheme:?}; podium reads mlflow-artifacts:/ (through the \
             tracking server) and local/file:// artifact stores only",
            run.artifact_uri
        ),
    )
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> MlflowError {
    move |source| MlflowError::Io { context, source }
}

/// Prepares `dest/<name>` landing: a fresh staging directory inside `dest` (same file system,
/// so the final rename is atomic), locked while in use; staging directories of dead downloads
/// found there first are removed (podium-variants' [`ScratchDir`], shared with archive
/// extraction).
fn staging(dest: &Path) -> Result<ScratchDir, MlflowError> {
    ScratchDir::new_in(dest, STAGING_PREFIX).map_err(|source| MlflowError::Io {
        context: format!("preparing a download into {}", dest.display()),
        source,
    })
}

/// Moves the finished `staged` into `final_path`, replacing what was there.
fn land(staged: &Path, final_path: &Path) -> Result<(), MlflowError> {
    match fs::symlink_metadata(final_path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(final_path)
            .map_err(io_error(format!("replacing {}", final_path.display())))?,
        Ok(_) if staged.is_dir() => fs::remove_file(final_path)
            .map_err(io_error(format!("replacing {}", final_path.display())))?,
        _ => {}
    }
    fs::rename(staged, final_path).map_err(io_error(format!(
        "moving {} into place at {}",
        staged.display(),
        final_path.display()
    )))
}

/// The basename a download of `components` lands under.
fn landing_name(components: &[&str]) -> String {
    components
        .last()
        .map_or_else(|| "artifacts".to_string(), |name| (*name).to_string())
}

/// Downloads `path` (file or directory) of a proxied artifact tree rooted at `root`.
pub(crate) fn download_tree(
    source: &dyn ArtifactSource,
    run_id: &str,
    root: &str,
    path: &str,
    dest: &Path,
    limits: &DownloadLimits,
) -> Result<PathBuf, MlflowError> {
    let components =
        safe_components(path).map_err(|message| artifact_error(run_id, path, message))?;
    let mut budget = Budget::new(limits);
    let join = |parts: &[&str]| {
        std::iter::once(root)
            .chain(parts.iter().copied())
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    };
    let name = landing_name(&components);
    let staging = staging(dest)?;
    let staged = staging.path().join(&name);
    // A file or a directory? Ask the parent's listing (the root is always a directory).
    let entry = match components.split_last() {
        None => None,
        Some((last, parent)) => {
            let listing = source.list(&join(parent))?;
            let mut found = None;
            check_listing_size(&listing, &budget, run_id, path)?;
            for entry in listing {
                let entry_name =
                    safe_entry_name(&entry.path).map_err(|m| artifact_error(run_id, path, m))?;
                if entry_name == *last {
                    found = Some(entry);
                }
            }
            Some(found.ok_or_else(|| MlflowError::NotFound {
                what: "artifact",
                id: format!("{run_id}/{path}"),
                store: root.to_string(),
            })?)
        }
    };
    match entry {
        Some(entry) if !entry.is_dir => {
            let remote = join(&components);
            budget.take_entry(run_id, &remote)?;
            fetch_checked(source, run_id, &remote, entry.size, &staged, &mut budget)?;
        }
        _ => {
            fs::create_dir(&staged).map_err(io_error(format!("creating {}", staged.display())))?;
            download_dir(source, run_id, &join(&components), &staged, 0, &mut budget)?;
        }
    }
    let final_path = dest.join(&name);
    land(&staged, &final_path)?;
    Ok(final_path)
}

fn download_dir(
    source: &dyn ArtifactSource,
    run_id: &str,
    remote_dir: &str,
    local_dir: &Path,
    depth: usize,
    budget: &mut Budget,
) -> Result<(), MlflowError> {
    if depth > MAX_DEPTH {
        return Err(artifact_error(
            run_id,
            remote_dir,
            format!("directories nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let listing = source.list(remote_dir)?;
    check_listing_size(&listing, budget, run_id, remote_dir)?;
    for entry in listing {
        let name = safe_entry_name(&entry.path)
            .map_err(|message| artifact_error(run_id, remote_dir, message))?;
        let remote = if remote_dir.is_empty() {
            name.to_string()
        } else {
            format!("{remote_dir}/{name}")
        };
        let local = local_dir.join(name);
        if fs::symlink_metadata(&local).is_ok() {
            return Err(artifact_error(
                run_id,
                &remote,
                "listed twice in the same directory",
            ));
        }
        budget.take_entry(run_id, &remote)?;
        if entry.is_dir {
            fs::create_dir(&local).map_err(io_error(format!("creating {}", local.display())))?;
            download_dir(source, run_id, &remote, &local, depth + 1, budget)?;
        } else {
            fetch_checked(source, run_id, &remote, entry.size, &local, budget)?;
        }
    }
    Ok(())
}

/// A listing longer than the entries left is refused before anything of it is fetched.
fn check_listing_size(
    listing: &[ArtifactEntry],
    budget: &Budget,
    run_id: &str,
    path: &str,
) -> Result<(), MlflowError> {
    if listing.len() as u64 > budget.entries {
        return Err(artifact_error(
            run_id,
            path,
            format!(
                "a listing of {} entries exceeds the {} files and directories allowed \
                 (PODIUM_MAX_DOWNLOAD_FILES)",
                listing.len(),
                budget.limits.max_entries
            ),
        ));
    }
    Ok(())
}

/// Fetches one file, never writing past its listed size or the bytes left in `budget`.
fn fetch_checked(
    source: &dyn ArtifactSource,
    run_id: &str,
    remote: &str,
    expected: Option<u64>,
    local: &Path,
    budget: &mut Budget,
) -> Result<(), MlflowError> {
    if expected.is_some_and(|size| size > budget.bytes) {
        return Err(budget.bytes_exceeded(run_id, remote));
    }
    let cap = expected.unwrap_or(u64::MAX).min(budget.bytes);
    let written = source.fetch(remote, local, cap)?;
    if written > cap {
        return Err(match expected {
            Some(size) if size <= budget.bytes => artifact_error(
                run_id,
                remote,
                format!("listing says {size} bytes but the server sent more"),
            ),
            _ => budget.bytes_exceeded(run_id, remote),
        });
    }
    if let Some(size) = expected
        && size != written
    {
        return Err(artifact_error(
            run_id,
            remote,
            format!("listing says {size} bytes but {written} were downloaded"),
        ));
    }
    budget.take_bytes(run_id, remote, written)
}

/// Copies `path` of a local artifact root into `dest/<basename>` atomically, within the
/// [`DownloadLimits`] of the process environment.
pub(crate) fn download_local(
    run: &RunInfo,
    root: &Path,
    path: &str,
    dest: &Path,
) -> Result<PathBuf, MlflowError> {
    let limits = DownloadLimits::from_env(&|name| std::env::var(name).ok())?;
    download_local_with(run, root, path, dest, &limits)
}

/// A database store's download (SQLite, PostgreSQL): the run's artifact URI is a local artifact
/// root read directly; one served by an MLflow tracking server (`mlflow-artifacts:`) needs that
/// server, and any other scheme is not supported.
pub(crate) fn download_for_database_store(
    run: &RunInfo,
    path: &str,
    dest: &Path,
) -> Result<PathBuf, MlflowError> {
    match ArtifactLocation::parse(&run.artifact_uri) {
        ArtifactLocation::Local(root) => download_local(run, &root, path, dest),
        ArtifactLocation::Proxy { .. } => Err(artifact_error(
            &run.run_id,
            path,
            format!(
                "artifact URI {:?} is served by an MLflow tracking server; open the store with \
                 that server's http(s):// URI to download it",
                run.artifact_uri
            ),
        )),
        ArtifactLocation::Unsupported(scheme) => Err(unsupported(run, path, &scheme)),
    }
}

/// [`download_local`] within `limits`.
pub(crate) fn download_local_with(
    run: &RunInfo,
    root: &Path,
    path: &str,
    dest: &Path,
    limits: &DownloadLimits,
) -> Result<PathBuf, MlflowError> {
    let components =
        safe_components(path).map_err(|message| artifact_error(&run.run_id, path, message))?;
    let source = components
        .iter()
        .fold(root.to_path_buf(), |acc, part| acc.join(part));
    let meta = fs::symlink_metadata(&source).map_err(|_| MlflowError::NotFound {
        what: "artifact",
        id: format!("{}/{path}", run.run_id),
        store: root.display().to_string(),
    })?;
    let name = landing_name(&components);
    let staging = staging(dest)?;
    let staged = staging.path().join(&name);
    copy_entry(run, &source, &meta, &staged, 0, &mut Budget::new(limits))?;
    let final_path = dest.join(&name);
    land(&staged, &final_path)?;
    Ok(final_path)
}

fn copy_entry(
    run: &RunInfo,
    source: &Path,
    meta: &fs::Metadata,
    target: &Path,
    depth: usize,
    budget: &mut Budget,
) -> Result<(), MlflowError> {
    let shown = source.display().to_string();
    budget.take_entry(&run.run_id, &shown)?;
    if meta.file_type().is_symlink() {
        // A link could point anywhere on this machine; artifact stores do not create them.
        return Err(artifact_error(
            &run.run_id,
            &source.display().to_string(),
            "symbolic links in artifact stores are refused",
        ));
    }
    if meta.is_dir() {
        if depth > MAX_DEPTH {
            return Err(artifact_error(
                &run.run_id,
                &source.display().to_string(),
                format!("directories nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        fs::create_dir(target).map_err(io_error(format!("creating {}", target.display())))?;
        let entries =
            fs::read_dir(source).map_err(io_error(format!("listing {}", source.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_error(format!("listing {}", source.display())))?;
            let meta = entry
                .metadata()
                .map_err(io_error(format!("reading {}", entry.path().display())))?;
            copy_entry(
                run,
                &entry.path(),
                &meta,
                &target.join(entry.file_name()),
                depth + 1,
                budget,
            )?;
        }
        Ok(())
    } else {
        if !meta.is_file() {
            return Err(artifact_error(
                &run.run_id,
                &shown,
                "not a regular file (a FIFO, socket or device)",
            ));
        }
        budget.take_bytes(&run.run_id, &shown, meta.len())?;
        let copied = fs::copy(source, target).map_err(io_error(format!(
            "copying {} to {}",
            source.display(),
            target.display()
        )))?;
        if copied != meta.len() {
            return Err(artifact_error(
                &run.run_id,
                &source.display().to_string(),
                format!("{} bytes on disk but {copied} copied", meta.len()),
            ));
        }
        Ok(())
    }
}

/// The components of an upload's `artifact_path`: a relative path naming a file (at least one
/// plain component; no `..`, absolute paths, backslashes or NUL).
pub fn upload_components<'p>(
    run_id: &str,
    artifact_path: &'p str,
) -> Result<Vec<&'p str>, MlflowError> {
    let components = safe_components(artifact_path)
        .map_err(|message| artifact_error(run_id, artifact_path, message))?;
    if components.is_empty() || artifact_path.ends_with('/') {
        return Err(artifact_error(
            run_id,
            artifact_path,
            "an upload needs the artifact's file name (e.g. `report.html`), not a folder",
        ));
    }
    Ok(components)
}

/// `source`, opened for an upload as `artifact_path`, and its size: a regular file (after
/// following links; podium-io's rule, so a FIFO or a device is refused without blocking) of at
/// most `limits.max_bytes` bytes, the cap of downloads.
pub fn open_upload_source(
    run_id: &str,
    artifact_path: &str,
    source: &Path,
    limits: &DownloadLimits,
) -> Result<(fs::File, u64), MlflowError> {
    podium_variants::fs::open_regular_file(source, limits.max_bytes).map_err(|err| match err {
        podium_variants::fs::ReadError::Io { source: cause, .. } => MlflowError::Io {
            context: format!(
                "reading {} to upload it as artifact {artifact_path} of run {run_id}",
                source.display()
            ),
            source: cause,
        },
        refused @ podium_variants::fs::ReadError::Refused { .. } => artifact_error(
            run_id,
            artifact_path,
            format!(
                "{} (the cap is PODIUM_MAX_DOWNLOAD_BYTES, as for downloads)",
                refused
            ),
        ),
    })
}

/// Reads exactly `left` bytes of a file whose size was checked before: a file that shrank is
/// an error (so nothing half-read is put in place), one that grew is read up to its checked
/// size.
pub(crate) struct CheckedSize<R> {
    inner: R,
    left: u64,
}

impl<R> CheckedSize<R> {
    pub(crate) fn new(inner: R, size: u64) -> Self {
        CheckedSize { inner, left: size }
    }
}

impl<R: std::io::Read> std::io::Read for CheckedSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let wanted = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let read = self.inner.read(&mut buf[..wanted])?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended {} bytes early (it changed while uploading)",
                    self.left
                ),
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// Uploads `source` as the artifact `artifact_path` of `run` into the run's local artifact
/// root (a plain path or `file://` URI): the one writer every store whose runs keep their
/// artifacts on this machine calls (SQLite; any database-backed store). The file is replaced
/// atomically; an `mlflow-artifacts:` root is refused (only the tracking server can write
/// there), as is any other scheme. Returns where the file landed.
pub fn upload_to_local_root(
    run: &RunInfo,
    artifact_path: &str,
    source: &Path,
    limits: &DownloadLimits,
) -> Result<PathBuf, MlflowError> {
    match ArtifactLocation::parse(&run.artifact_uri) {
        ArtifactLocation::Local(root) => write_local(run, &root, artifact_path, source, limits),
        ArtifactLocation::Proxy { .. } => Err(artifact_error(
            &run.run_id,
            artifact_path,
            format!(
                "artifact URI {:?} is served by an MLflow tracking server; open the store with \
                 that server's http(s):// URI to upload to it",
                run.artifact_uri
            ),
        )),
        ArtifactLocation::Unsupported(scheme) => Err(unsupported(run, artifact_path, &scheme)),
    }
}

/// [`upload_to_local_root`] into the directory `root`.
pub(crate) fn write_local(
    run: &RunInfo,
    root: &Path,
    artifact_path: &str,
    source: &Path,
    limits: &DownloadLimits,
) -> Result<PathBuf, MlflowError> {
    let components = upload_components(&run.run_id, artifact_path)?;
    let (file, size) = open_upload_source(&run.run_id, artifact_path, source, limits)?;
    // Nothing inside the root may lead the write elsewhere on this machine.
    let mut target = root.to_path_buf();
    for component in &components {
        target.push(component);
        if fs::symlink_metadata(&target).is_ok_and(|meta| meta.file_type().is_symlink()) {
            return Err(artifact_error(
                &run.run_id,
                artifact_path,
                format!(
                    "{} is a symbolic link; podium does not write through links in an \
                     artifact store",
                    target.display()
                ),
            ));
        }
    }
    if target.is_dir() {
        return Err(artifact_error(
            &run.run_id,
            artifact_path,
            format!("{} is a directory", target.display()),
        ));
    }
    podium_variants::fs::write_atomic_from(&target, &mut CheckedSize::new(file, size)).map_err(
        |err| {
            artifact_error(
                &run.run_id,
                artifact_path,
                format!(
                    "writing {} from {}: {err}",
                    target.display(),
                    source.display()
                ),
            )
        },
    )?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["/etc/passwd", "../x", "a/../../b", "a\\b", "C:/x", "a/\0"] {
            assert!(safe_components(bad).is_err(), "{bad}");
        }
        assert_eq!(safe_components("a/./b/").unwrap(), vec!["a", "b"]);
        assert!(safe_components("").unwrap().is_empty());
        for bad in ["..", "a/b", "/x", ".", ""] {
            assert!(safe_entry_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            safe_entry_name("model.safetensors").unwrap(),
            "model.safetensors"
        );
    }

    fn local_run(root: &Path) -> RunInfo {
        RunInfo {
            run_id: "r1".into(),
            experiment_id: "1".into(),
            run_name: "r".into(),
            status: crate::model::RunStatus::Finished,
            start_time: Some(1),
            end_time: None,
            artifact_uri: format!("file://{}", root.display()),
            lifecycle_stage: "active".into(),
        }
    }

    #[test]
    fn local_uploads_replace_atomically_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("artifacts");
        let source = dir.path().join("page.html");
        std::fs::write(&source, "one").unwrap();
        let run = local_run(&root);
        let limits = DownloadLimits::default();
        let landed = upload_to_local_root(&run, "report/page.html", &source, &limits).unwrap();
        assert_eq!(landed, root.join("report/page.html"));
        std::fs::write(&source, "two!").unwrap();
        upload_to_local_root(&run, "report/page.html", &source, &limits).unwrap();
        assert_eq!(std::fs::read_to_string(&landed).unwrap(), "two!");
        let names: Vec<_> = std::fs::read_dir(root.join("report"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["page.html"]);

        #[cfg(unix)]
        {
            let outside = dir.path().join("outside");
            std::fs::create_dir(&outside).unwrap();
            std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
            let err = upload_to_local_root(&run, "linked/page.html", &source, &limits)
                .unwrap_err()
                .to_string();
            assert!(err.contains("symbolic link"), "{err}");
            assert!(!outside.join("page.html").exists());
        }
        let tiny = DownloadLimits {
            max_bytes: 3,
            max_entries: 10,
        };
        let err = upload_to_local_root(&run, "big.html", &source, &tiny)
            .unwrap_err()
            .to_string();
        assert!(err.contains("PODIUM_MAX_DOWNLOAD_BYTES"), "{err}");
        let proxied = RunInfo {
            artifact_uri: "mlflow-artifacts:/1/r1/artifacts".into(),
            ..run
        };
        let err = upload_to_local_root(&proxied, "page.html", &source, &limits)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tracking server"), "{err}");
    }

    #[test]
    fn a_file_that_shrinks_while_read_is_an_error() {
        use std::io::Read;
        let mut short = CheckedSize::new(&b"abc"[..], 5);
        let mut out = Vec::new();
        let err = short.read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        let mut long = CheckedSize::new(&b"abcdef"[..], 4);
        let mut out = Vec::new();
        long.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn proxy_uri_with_authority() {
        assert_eq!(
            ArtifactLocation::parse("mlflow-artifacts://host:5000/2/r/artifacts"),
            ArtifactLocation::Proxy {
                authority: Some("host:5000".into()),
                root: "2/r/artifacts".into()
            }
        );
        assert_eq!(
            ArtifactLocation::parse("/tmp/a b/artifacts"),
            ArtifactLocation::Local("/tmp/a b/artifacts".into())
        );
        assert_eq!(
            ArtifactLocation::parse("file:///tmp/a%20b"),
            ArtifactLocation::Local("/tmp/a b".into())
        );
    }
}
