//! The one filter builder: MLflow filter strings with correct quoting, plus a client-side
//! remainder for conditions MLflow's grammar cannot express.

use crate::model::{Run, RunStatus};

/// One condition on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    TagEquals { key: String, value: String },
    StatusEquals(RunStatus),
}

/// A conjunction of conditions (MLflow has no OR).
///
/// ```
/// use podium_mlflow::{Filter, RunStatus};
/// let filter = Filter::new()
///     .tag_eq("code.backbone", "distilbert")
///     .tag_eq("code.stage", "hpo_trial")
///     .status(RunStatus::Finished);
/// assert_eq!(
///     filter.server_side(),
///     "tags.`code.backbone` = 'distilbert' AND tags.`code.stage` = 'hpo_trial' AND attributes.status = 'FINISHED'"
/// );
/// // A value holding ' is quoted with "; one holding both quote kinds is checked client-side.
/// let tricky = Filter::new().tag_eq("note", "it's").tag_eq("q", "both ' and \"");
/// assert_eq!(tricky.server_side(), "tags.`note` = \"it's\"");
/// assert!(tricky.has_client_side());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    conditions: Vec<Condition>,
}

impl Filter {
    /// A filter matching every run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires tag `key` to equal `value` exactly.
    pub fn tag_eq(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.conditions.push(Condition::TagEquals {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Requires the run's status.
    pub fn status(mut self, status: RunStatus) -> Self {
        self.conditions.push(Condition::StatusEquals(status));
        self
    }

    /// The MLflow filter string for every condition the server can evaluate.
    pub fn server_side(&self) -> String {
        self.conditions
            .iter()
            .filter_map(server_clause)
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// True when some condition must be checked by [`Filter::matches_client_side`].
    pub fn has_client_side(&self) -> bool {
        self.conditions.iter().any(|c| server_clause(c).is_none())
    }

    /// Checks the conditions the server could not evaluate (all others are assumed done).
    pub fn matches_client_side(&self, run: &Run) -> bool {
        self.conditions
            .iter()
            .filter(|c| server_clause(c).is_none())
            .all(|c| matches(c, run))
    }

    /// The tag keys [`Filter::matches_client_side`] reads: a projected search must fetch them.
    pub fn client_side_tag_keys(&self) -> impl Iterator<Item = &str> {
        self.conditions
            .iter()
            .filter(|c| server_clause(c).is_none())
            .filter_map(|c| match c {
                Condition::TagEquals { key, .. } => Some(key.as_str()),
                Condition::StatusEquals(_) => None,
            })
    }

    /// Checks every condition locally (for stores or tests that evaluate nothing server-side).
    pub fn matches(&self, run: &Run) -> bool {
        self.conditions.iter().all(|c| matches(c, run))
    }
}

fn matches(condition: &Condition, run: &Run) -> bool {
    match condition {
        Condition::TagEquals { key, value } => run.tag(key) == Some(value.as_str()),
        Condition::StatusEquals(status) => run.info.status == *status,
    }
}

/// `None` when MLflow's grammar cannot express the condition.
fn server_clause(condition: &Condition) -> Option<String> {
    match condition {
        Condition::TagEquals { key, value } => {
            if key.contains('`') {
                return None;
            }
            Some(format!("tags.`{key}` = {}", quote_literal(value)?))
        }
        Condition::StatusEquals(status) => Some(format!("attributes.status = '{status}'")),
    }
}

/// The `experiments/search` filter for names starting with `prefix`: `name LIKE '<prefix>%'`.
///
/// MLflow's LIKE has no escape character, so `_` and `%` inside `prefix` stay wildcards and
/// the server may return more than asked: callers keep only names that really start with
/// `prefix` ([`name_has_prefix`]). `None` when the prefix cannot be quoted (both quote kinds);
/// then every experiment is listed and the same check picks the matches.
///
/// ```
/// use podium_mlflow::filter::{experiment_name_prefix, name_has_prefix};
/// assert_eq!(
///     experiment_name_prefix("resume_ner-hpo-").as_deref(),
///     Some("name LIKE 'resume_ner-hpo-%'")
/// );
/// assert!(name_has_prefix("resume_ner-hpo-bert", "resume_ner-hpo-"));
/// // `_` matched any character on the server; the exact check drops it.
/// assert!(!name_has_prefix("resumeXner-hpo-bert", "resume_ner-hpo-"));
/// assert_eq!(experiment_name_prefix("both ' and \""), None);
/// ```
pub fn experiment_name_prefix(prefix: &str) -> Option<String> {
    let pattern = quote_literal(&format!("{prefix}%"))?;
    Some(format!("name LIKE {pattern}"))
}

/// True when `name` starts with `prefix`, character for character (no wildcards).
pub fn name_has_prefix(name: &str, prefix: &str) -> bool {
    name.starts_with(prefix)
}

/// MLflow string literals have no escape: `'…'` unless the value holds `'`, then `"…"`;
/// a value with both quote kinds cannot be written.
pub fn quote_literal(value: &str) -> Option<String> {
    match (value.contains('\''), value.contains('"')) {
        (false, _) => Some(format!("'{value}'")),
        (true, false) => Some(format!("\"{value}\"")),
        (true, true) => None,
    }
}
