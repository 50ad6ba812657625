//! Artifact download shared by both stores: where a run's artifacts live, which paths are safe,
//! and the temp-dir-then-rename landing.
//!
//! Everything a server says about paths is untrusted: absolute paths, `..` components, separators
//! inside listing names and anything else that would land outside the target are refused, and
//! downloaded sizes are checked against the listing.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::MlflowError;
use crate::model::RunInfo;

/// Deepest directory nesting followed (a listing cannot lead the download on forever).
const MAX_DEPTH: usize = 64;

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
    /// Writes the file `remote_path` to `to`, returning the bytes written.
    fn fetch(&self, remote_path: &str, to: &Path) -> Result<u64, MlflowError>;
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

/// Prepares `dest/<name>` landing: a fresh temp dir inside `dest` (same file system, so the
/// final rename is atomic).
fn staging(dest: &Path) -> Result<tempfile::TempDir, MlflowError> {
    fs::create_dir_all(dest).map_err(io_error(format!("creating {}", dest.display())))?;
    tempfile::Builder::new()
        .prefix(".podium-download-")
        .tempdir_in(dest)
        .map_err(io_error(format!(
            "creating a temp dir in {}",
            dest.display()
        )))
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
) -> Result<PathBuf, MlflowError> {
    let components =
        safe_components(path).map_err(|message| artifact_error(run_id, path, message))?;
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
            fetch_checked(source, run_id, &join(&components), entry.size, &staged)?;
        }
        _ => {
            fs::create_dir(&staged).map_err(io_error(format!("creating {}", staged.display())))?;
            download_dir(source, run_id, &join(&components), &staged, 0)?;
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
) -> Result<(), MlflowError> {
    if depth > MAX_DEPTH {
        return Err(artifact_error(
            run_id,
            remote_dir,
            format!("directories nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    for entry in source.list(remote_dir)? {
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
        if entry.is_dir {
            fs::create_dir(&local).map_err(io_error(format!("creating {}", local.display())))?;
            download_dir(source, run_id, &remote, &local, depth + 1)?;
        } else {
            fetch_checked(source, run_id, &remote, entry.size, &local)?;
        }
    }
    Ok(())
}

fn fetch_checked(
    source: &dyn ArtifactSource,
    run_id: &str,
    remote: &str,
    expected: Option<u64>,
    local: &Path,
) -> Result<(), MlflowError> {
    let written = source.fetch(remote, local)?;
    match expected {
        Some(size) if size != written => Err(artifact_error(
            run_id,
            remote,
            format!("listing says {size} bytes but {written} were downloaded"),
        )),
        _ => Ok(()),
    }
}

/// Copies `path` of a local artifact root into `dest/<basename>` atomically.
pub(crate) fn download_local(
    run: &RunInfo,
    root: &Path,
    path: &str,
    dest: &Path,
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
    copy_entry(run, &source, &meta, &staged, 0)?;
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
) -> Result<(), MlflowError> {
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
            )?;
        }
        Ok(())
    } else {
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
