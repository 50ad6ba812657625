//! `podium config check`: load every config file with the loaders the commands use, and say
//! which are broken — and which keys are the pipeline's that podium ignores — before a long run
//! trips over them.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use podium_project::config_check::{CheckReport, check_config_dir};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate every config file of --config-dir (the pipeline's layout) with the
    /// loaders the commands use; list the ignored keys; exit 1 on any error.
    Check,
}

/// Runs `podium config`.
pub fn run(global: &GlobalArgs, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => check(global),
    }
}

fn check(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let report = check_config_dir(&global.config_dir, global.experiment.as_deref())?;
    let files = &report.files;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => print_table(&report),
    }
    for verdict in files.iter().filter(|verdict| !verdict.ok) {
        let file = verdict.file.display().to_string();
        if verdict.detail.contains(&file) {
            tracing::error!("{}", verdict.detail);
        } else {
            tracing::error!("{file}: {}", verdict.detail);
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The folder once, then one row per file named from it (and paths under it in the details
/// too), then each file's ignored keys beside it.
fn print_table(report: &CheckReport) {
    let dir = &report.config_dir;
    let failed = report.files.iter().filter(|verdict| !verdict.ok).count();
    output::print_wrapped(&format!(
        "{} ({} files): {}",
        dir.display(),
        report.files.len(),
        if failed == 0 {
            "every file loads and validates".to_string()
        } else {
            format!("{failed} with errors")
        }
    ));
    let mut table = output::table(["file", "status", "what podium read, or what is wrong"]);
    let mut ignored = output::Details::indented(2);
    for verdict in &report.files {
        let file = verdict.file.strip_prefix(dir).unwrap_or(&verdict.file);
        let file = file.display().to_string();
        table.add_row([
            file.clone(),
            if verdict.ok { "OK" } else { "ERROR" }.to_string(),
            under(dir, &verdict.detail),
        ]);
        if !verdict.ignored_keys.is_empty() {
            ignored.add(&file, &verdict.ignored_keys.join(", "));
        }
    }
    println!("{table}");
    if !ignored.is_empty() {
        println!("keys of the pipeline that podium does not read:");
        println!("{ignored}");
    }
}

/// `text` with the paths under `dir` written from it (`hpo/prod.yaml` for
/// `config/hpo/prod.yaml`): only where a path starts, not inside a longer name.
fn under(dir: &Path, text: &str) -> String {
    let prefix = dir.join("").display().to_string();
    if prefix.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&prefix) {
        let starts_path = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !(before.is_alphanumeric() || "_-./".contains(before)));
        out.push_str(&rest[..at]);
        if !starts_path {
            out.push_str(&prefix);
        }
        rest = &rest[at + prefix.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_folder_are_written_from_it() {
        let dir = Path::new("/p/config");
        assert_eq!(
            under(
                dir,
                "experiment x, HPO config /p/config/hpo/prod.yaml, backbones: a"
            ),
            "experiment x, HPO config hpo/prod.yaml, backbones: a"
        );
        assert_eq!(
            under(dir, "/p/config/train.yaml: seed: \"/p/config/x\""),
            "train.yaml: seed: \"x\""
        );
        // Not the start of a path: left alone.
        assert_eq!(under(dir, "/q/p/config/a"), "/q/p/config/a");
        assert_eq!(
            under(Path::new("config"), "myconfig/a config/b"),
            "myconfig/a b"
        );
    }
}
