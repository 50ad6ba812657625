//! Artifact download through the server's `mlflow-artifacts` proxy.

use super::*;

/// The mlflow-artifacts proxy of a server (the tracking server, or a host trusted for it).
pub(super) struct ProxySource<'a> {
    pub(super) store: &'a RestStore,
    pub(super) base: String,
}

impl ProxySource<'_> {
    pub(super) fn artifact_url(&self, remote_path: &str) -> Result<reqwest::Url, MlflowError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base))
                .map_err(|err| MlflowError::Config {
                    name: "artifact URL".to_string(),
                    value: redact_uri(&self.base),
                    message: err.to_string(),
                })?;
        if !remote_path.is_empty() {
            let mut segments = url.path_segments_mut().map_err(|()| MlflowError::Config {
                name: "artifact URL".to_string(),
                value: redact_uri(&self.base),
                message: "cannot hold a path".to_string(),
            })?;
            segments.extend(remote_path.split('/'));
        }
        Ok(url)
    }
}

impl ArtifactSource for ProxySource<'_> {
    fn list(&self, remote_dir: &str) -> Result<Vec<ArtifactEntry>, MlflowError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            files: Vec<FileJson>,
        }
        #[derive(Deserialize)]
        struct FileJson {
            path: String,
            #[serde(default)]
            is_dir: bool,
            #[serde(default, deserialize_with = "flexible_i64")]
            file_size: Option<i64>,
        }
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
        let endpoint = "mlflow-artifacts/artifacts (list)";
        let listing: Listing = self.store.request(
            endpoint,
            true,
            &|| self.store.client.get(&url).query(&[("path", remote_dir)]),
            &|response| {
                self.store
                    .read_json(endpoint, response, PhantomData::<Listing>)
            },
        )?;
        Ok(listing
            .files
            .into_iter()
            .map(|file| ArtifactEntry {
                path: file.path,
                is_dir: file.is_dir,
                size: file.file_size.and_then(|size| u64::try_from(size).ok()),
            })
            .collect())
    }

    fn fetch(&self, remote_path: &str, to: &Path, max_bytes: u64) -> Result<u64, MlflowError> {
        let url = self.artifact_url(remote_path)?;
        let endpoint = "mlflow-artifacts/artifacts (download)";
        // Read inside the retry loop: a body cut off mid-way is retried like a failed request.
        // At most one byte past `max_bytes` is written, so the caller can tell "more".
        self.store.request(
            endpoint,
            true,
            &|| self.store.client.get(url.clone()),
            &|response| {
                if response
                    .content_length()
                    .is_some_and(|length| length > max_bytes)
                {
                    return Ok(max_bytes.saturating_add(1));
                }
                let mut file = std::fs::File::create(to).map_err(|source| {
                    BodyFailure::Fatal(MlflowError::Io {
                        context: format!("creating {}", to.display()),
                        source,
                    })
                })?;
                let mut limited = response.take(max_bytes.saturating_add(1));
                let written =
                    copy_body(&mut limited, &mut file).map_err(|failure| match failure {
                        CopyFailure::Read(err) => BodyFailure::Transient(describe_io_error(&err)),
                        CopyFailure::Write(source) => BodyFailure::Fatal(MlflowError::Io {
                            context: format!("writing {}", to.display()),
                            source,
                        }),
                    })?;
                file.flush().map_err(|source| {
                    BodyFailure::Fatal(MlflowError::Io {
                        context: format!("writing {}", to.display()),
                        source,
                    })
                })?;
                Ok(written)
            },
        )
    }
}

impl ProxySource<'_> {
    /// `PUT`s the opened file `opened` (of `size` bytes, checked when the caller opened it with
    /// [`crate::artifacts::open_upload_source`]) as `remote_path` through the proxy, replacing
    /// what is there; retried like every call, the file read again from its start on each
    /// attempt.
    pub(super) fn upload(
        &self,
        remote_path: &str,
        opened: &std::fs::File,
        size: u64,
    ) -> Result<(), MlflowError> {
        let url = self.artifact_url(remote_path)?;
        let endpoint = "mlflow-artifacts/artifacts (upload)";
        self.store.request(
            endpoint,
            true,
            &|| {
                // Each attempt sends the file from its start: a handle of its own, rewound.
                let body = match opened.try_clone().and_then(|mut file| {
                    std::io::Seek::rewind(&mut file)?;
                    Ok(file)
                }) {
                    Ok(file) => reqwest::blocking::Body::sized(
                        crate::artifacts::CheckedSize::new(file, size),
                        size,
                    ),
                    // Sent empty with the full length, which the request then fails on (and
                    // retries, reopening nothing it cannot).
                    Err(_) => reqwest::blocking::Body::sized(std::io::empty(), size),
                };
                self.store
                    .client
                    .put(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            },
            &|_response| Ok(()),
        )
    }
}

pub(super) enum CopyFailure {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `from` to `to`, telling a failed read (the network) from a failed write (the disk).
pub(super) fn copy_body(from: &mut dyn Read, to: &mut dyn Write) -> Result<u64, CopyFailure> {
    let mut buffer = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(CopyFailure::Read(err)),
        };
        to.write_all(&buffer[..read]).map_err(CopyFailure::Write)?;
        total += read as u64;
    }
}
