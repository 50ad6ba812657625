//! `podium variants list|next`: the HPO study folders and final-training folders of a backbone.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use podium_project::variants::{
    FinalTrainingVariant, FoundVariants, HpoVariant, VariantsReport, VariantsRequest,
};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium variants …`.
#[derive(Debug, Subcommand)]
pub enum VariantsCommand {
    /// List the existing variants of a backbone.
    List(VariantArgs),
    /// Print the variant a new run would get (the folder name; the full record with --format json).
    Next {
        #[command(flatten)]
        args: VariantArgs,
        /// Claim the variant by creating its folder (and, for final training, its index entry),
        /// so that concurrent callers never get the same one.
        #[arg(long)]
        allocate: bool,
    },
}

/// Which variants: process, backbone and what names them.
#[derive(Debug, Args)]
pub struct VariantArgs {
    /// The process whose variants to look at.
    #[arg(long, value_enum)]
    process: VariantProcess,
    /// The backbone (full Hugging Face name or short name, e.g. distilbert-base-uncased).
    #[arg(long)]
    backbone: String,
    /// HPO config whose `checkpoint.study_name` / `hpo.study_name` names the studies
    /// (default base name: hpo_{backbone}). HPO only.
    #[arg(long, value_name = "PATH")]
    hpo_config: Option<PathBuf>,
    /// Specification fingerprint of the final training (hex). Final training only.
    #[arg(long, required_if_eq("process", "final_training"))]
    spec_fp: Option<String>,
    /// Execution fingerprint of the final training (hex). Final training only.
    #[arg(long, required_if_eq("process", "final_training"))]
    exec_fp: Option<String>,
}

/// The processes that have variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum VariantProcess {
    /// HPO study folders `{base}`, `{base}_v{N}`.
    Hpo,
    /// Final-training folders `spec-…_exec-…/v{N}`.
    FinalTraining,
}

impl VariantArgs {
    fn request(&self) -> VariantsRequest {
        VariantsRequest {
            process: match self.process {
                VariantProcess::Hpo => podium_project::variants::VariantProcess::Hpo,
                VariantProcess::FinalTraining => {
                    podium_project::variants::VariantProcess::FinalTraining
                }
            },
            backbone: self.backbone.clone(),
            hpo_config: self.hpo_config.clone(),
            spec_fp: self.spec_fp.clone(),
            exec_fp: self.exec_fp.clone(),
        }
    }
}

/// Runs `podium variants`.
pub fn run(global: &GlobalArgs, command: VariantsCommand) -> anyhow::Result<ExitCode> {
    let options = global.project_options();
    match &command {
        VariantsCommand::List(args) => {
            let report = options.list_variants(&args.request())?;
            match global.format {
                Format::Json => output::print_json(&report)?,
                Format::Table => print_list(&report),
            }
        }
        VariantsCommand::Next { args, allocate } => {
            let next = options.next_variant(&args.request(), *allocate)?;
            match global.format {
                Format::Json => output::print_json(&next)?,
                // The bare name, so that shell scripts can use `$(podium variants next …)`.
                Format::Table => output::print_line(&next.name),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_list(report: &VariantsReport) {
    match &report.variants {
        FoundVariants::Hpo(found) => {
            let pipeline = report.studies.as_deref().unwrap_or_default();
            if !pipeline.is_empty() {
                let mut table = output::table(["Study folder", "Study name", "Trials", "study.db"]);
                for study in pipeline {
                    table.add_row([
                        study.name.clone(),
                        study.study_name.clone().unwrap_or_else(|| "-".to_string()),
                        study.trials.to_string(),
                        yes_no(study.has_study_db).to_string(),
                    ]);
                }
                println!("{table}");
                if found.is_empty() {
                    return;
                }
            }
            // Every variant is a folder of `dir`: the folder once, then the names.
            output::print_wrapped(&format!("study variants in {}:", report.dir.display()));
            let mut table = output::table(["Variant", "Name"]);
            for HpoVariant { variant, name, .. } in found {
                table.add_row([variant.to_string(), name.clone()]);
            }
            println!("{table}");
        }
        FoundVariants::FinalTraining(found) => {
            output::print_wrapped(&format!(
                "final-training variants in {}:",
                report.dir.display()
            ));
            let mut table = output::table(["Variant", "Name", "In index", "On disk"]);
            for FinalTrainingVariant {
                variant,
                name,
                in_index,
                on_disk,
                ..
            } in found
            {
                table.add_row([
                    variant.to_string(),
                    name.clone(),
                    yes_no(*in_index).to_string(),
                    yes_no(*on_disk).to_string(),
                ]);
            }
            println!("{table}");
        }
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
