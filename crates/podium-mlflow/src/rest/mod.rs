//! The REST store: MLflow's `/api/2.0/mlflow` API over HTTP(S), with the Python client's retry,
//! timeout, auth and TLS settings.

mod config;
mod proxy;
mod store;
mod transport;
mod wire;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer, Serialize};

use crate::artifacts::{self, ArtifactEntry, ArtifactLocation, ArtifactSource, DownloadLimits};
use crate::error::MlflowError;
use crate::model::{
    Experiment, KeySelection, MetricPoint, MlflowFloat, Run, RunFields, RunInfo, RunStatus,
    RunsPage, ViewType,
};
use crate::request::SearchRequest;
use crate::store::TrackingStore;
use crate::uri::redact_uri;
use podium_variants::fs::read_regular_file;

pub use self::config::*;
use self::proxy::*;
pub use self::transport::*;
use self::wire::*;

/// `experiments/search` page size: MLflow's own default, well under its limit.
pub const EXPERIMENTS_PAGE_SIZE: usize = 1000;

impl RestStore {
    /// [`TrackingStore::experiments_with_prefix`] with `page_size` experiments a page (a small
    /// page shows that every page is read).
    pub fn experiments_with_prefix_paged(
        &self,
        prefix: &str,
        page_size: usize,
    ) -> Result<Vec<Experiment>, MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            max_results: usize,
            #[serde(skip_serializing_if = "Option::is_none")]
            filter: Option<&'a str>,
            view_type: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            page_token: Option<&'a str>,
        }
        #[derive(Deserialize)]
        struct Response {
            #[serde(default)]
            experiments: Vec<ExperimentJson>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let filter = crate::filter::experiment_name_prefix(prefix);
        let mut pages =
            crate::query::PageGuard::for_endpoint(&self.display_url, "experiments/search")
                .within(self.config.max_search_time);
        let mut token: Option<String> = None;
        let mut found = Vec::new();
        loop {
            let request = Request {
                max_results: page_size.max(1),
                filter: filter.as_deref(),
                view_type: "ACTIVE_ONLY",
                page_token: token.as_deref(),
            };
            let response = match self.post::<_, Response>("experiments/search", &request) {
                Err(MlflowError::Http {
                    status: 400,
                    message,
                    ..
                }) => {
                    return Err(MlflowError::InvalidQuery(format!(
                        "{} rejected experiment filter {filter:?}: {message}",
                        self.display_url
                    )));
                }
                other => other?,
            };
            found.extend(
                response
                    .experiments
                    .into_iter()
                    .map(Experiment::from)
                    .filter(|e| e.is_active() && crate::filter::name_has_prefix(&e.name, prefix)),
            );
            match response.next_page_token {
                Some(next) if !next.is_empty() => {
                    pages.next(&next)?;
                    token = Some(next);
                }
                _ => break,
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn env_settings_like_the_python_client() {
        let env = |name: &str| {
            Some(
                match name {
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES" => "3",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" => "0.5",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER" => "0",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT" => "7",
                    "MLFLOW_TRACKING_TOKEN" => "tok-secret",
                    "MLFLOW_TRACKING_USERNAME" => "me",
                    "MLFLOW_TRACKING_PASSWORD" => "pw-secret",
                    "MLFLOW_TRACKING_INSECURE_TLS" => "true",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let config = RestConfig::from_env(&env).unwrap();
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.timeout, Duration::from_secs(7));
        assert!(config.insecure_tls);
        assert!(matches!(config.auth, Auth::Basic { ref username, .. } if username == "me"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(config.backoff(1), Duration::ZERO);
        assert_eq!(config.backoff(2), Duration::from_secs(1));
        assert_eq!(config.backoff(3), Duration::from_secs(2));
        let token_only =
            |name: &str| (name == "MLFLOW_TRACKING_TOKEN").then(|| "tok-secret".to_string());
        let config = RestConfig::from_env(&token_only).unwrap();
        assert!(matches!(config.auth, Auth::Bearer(_)));
        assert!(!format!("{config:?}").contains("tok-secret"));
        let bad = |name: &str| (name == "MLFLOW_HTTP_REQUEST_TIMEOUT").then(|| "soon".to_string());
        assert!(matches!(
            RestConfig::from_env(&bad),
            Err(MlflowError::Config { .. })
        ));
    }

    #[test]
    fn absurd_settings_are_errors_or_saturate_never_panics() {
        for (name, value) in [
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "1e308"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "inf"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "NaN"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "-1"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "99999999999"),
            ("PODIUM_MAX_RESPONSE_BYTES", "0"),
            ("PODIUM_MAX_DOWNLOAD_FILES", "-3"),
        ] {
            let env = |asked: &str| (asked == name).then(|| value.to_string());
            let err = RestConfig::from_env(&env).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        let week = |name: &str| (name == "MLFLOW_HTTP_REQUEST_TIMEOUT").then(|| "604800".into());
        assert_eq!(
            RestConfig::from_env(&week).unwrap().timeout,
            Duration::from_secs(604_800)
        );
        // Huge factors and retry numbers saturate at the cap; a zero factor stays zero.
        let huge = RestConfig {
            backoff_factor: 1e308,
            backoff_jitter: 1e308,
            ..RestConfig::default()
        };
        assert_eq!(huge.backoff(5000), huge.backoff_max);
        let zero = RestConfig {
            backoff_factor: 0.0,
            backoff_jitter: 0.0,
            ..RestConfig::default()
        };
        assert_eq!(zero.backoff(5000), Duration::ZERO);
        assert_eq!(zero.backoff(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn credentials_are_redacted_from_server_text() {
        let text = "echo: authorization: Basic bWU6cHc= and BEARER abc.def, \"Bearer x\"";
        let redacted = redact_credentials(text, &["hunter2".into()]);
        assert_eq!(
            redacted,
            "echo: authorization: Basic *** and BEARER ***, \"Bearer ***\""
        );
        assert_eq!(
            redact_credentials("password hunter2 here", &["hunter2".into()]),
            "password *** here"
        );
        let long = "é".repeat(5000);
        let bounded = bounded_message(&long);
        assert!(bounded.starts_with(&"é".repeat(MAX_ERROR_MESSAGE_CHARS)));
        assert!(bounded.ends_with("(8000 more bytes left out)"), "{bounded}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let config = RestConfig::default();
        for retry in 2..12 {
            let delay = config.backoff(retry).as_secs_f64();
            let base = (2.0 * 2f64.powi(retry as i32 - 1)).min(120.0);
            assert!(delay >= base.min(120.0) - 1e-9 && delay <= (base + 1.0).min(120.0));
        }
    }

    #[test]
    fn batches_respect_mlflow_limits() {
        for (m, p, t) in [
            (0, 0, 0),
            (2500, 0, 0),
            (950, 250, 30),
            (10, 100, 100),
            (0, 101, 0),
        ] {
            let chunks = batch_chunks(m, p, t);
            let (mut sm, mut sp, mut st) = (0, 0, 0);
            for (cm, cp, ct) in &chunks {
                assert!(cm.len() <= MAX_METRICS_PER_BATCH);
                assert!(cp.len() <= MAX_PARAMS_PER_BATCH);
                assert!(ct.len() <= MAX_TAGS_PER_BATCH);
                assert!(cm.len() + cp.len() + ct.len() <= MAX_ENTITIES_PER_BATCH);
                assert!(cm.len() + cp.len() + ct.len() > 0);
                assert_eq!((cm.start, cp.start, ct.start), (sm, sp, st));
                (sm, sp, st) = (cm.end, cp.end, ct.end);
            }
            assert_eq!((sm, sp, st), (m, p, t));
        }
        assert_eq!(batch_chunks(2500, 0, 0).len(), 3);
    }

    #[test]
    fn runs_parse_with_non_finite_metrics() {
        let body =
            br#"{"runs": [{"info": {"run_id": "abc", "run_uuid": "abc", "experiment_id": "1",
            "run_name": "r", "status": "FINISHED", "start_time": 5, "end_time": "9",
            "artifact_uri": "mlflow-artifacts:/1/abc/artifacts", "lifecycle_stage": "active"},
            "data": {"metrics": [{"key": "a", "value": "NaN", "timestamp": 1, "step": 0},
                                 {"key": "b", "value": 1.7976931348623157e308},
                                 {"key": "c", "value": "-Infinity"}, {"key": "d", "value": 0.25}],
                     "params": [{"key": "lr", "value": "0.1"}],
                     "tags": [{"key": "q", "value": "it's \"x\""}]}}],
            "next_page_token": "tok"}"#;
        #[derive(Deserialize)]
        struct Response {
            runs: Vec<RunJson>,
            next_page_token: Option<String>,
        }
        let response: Response = serde_json::from_slice(body).unwrap();
        assert_eq!(response.next_page_token.as_deref(), Some("tok"));
        let run = response
            .runs
            .into_iter()
            .next()
            .unwrap()
            .into_run()
            .unwrap();
        assert_eq!(run.info.end_time, Some(9));
        assert!(run.metric("a").unwrap().is_nan());
        assert_eq!(run.metric("b"), Some(f64::INFINITY));
        assert_eq!(run.metric("c"), Some(f64::NEG_INFINITY));
        assert_eq!(run.metric("d"), Some(0.25));
        assert_eq!(run.tag("q"), Some("it's \"x\""));
        assert_eq!(run.params["lr"], "0.1");
    }
}
