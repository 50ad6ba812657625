//! `podium variants list|next`: the HPO study folders and final-training folders of a backbone.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use podium_variants::{
    Environment, FinalTrainingKey, FinalTrainingVariant, FinalTrainings, HpoStudies, HpoVariant,
    OutputLayout, PipelineStudy, Process, StudyNaming, model_folder, pipeline_studies,
};
use serde::Serialize;

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

enum Variants {
    Hpo(HpoStudies),
    FinalTraining(FinalTrainings),
}

/// What `next` reports, in JSON.
#[derive(Debug, Serialize)]
struct NextReport<'a> {
    process: Process,
    environment: &'a Environment,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    variant: u32,
    name: String,
    path: PathBuf,
    allocated: bool,
}

/// What `list` reports, in JSON.
#[derive(Debug, Serialize)]
struct ListReport<'a, T> {
    process: Process,
    environment: &'a Environment,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a str>,
    dir: &'a Path,
    variants: Vec<T>,
    /// The pipeline's `study-{s8}` folders (HPO only).
    #[serde(skip_serializing_if = "Option::is_none")]
    studies: Option<Vec<PipelineStudy>>,
}

/// Runs `podium variants`.
pub fn run(global: &GlobalArgs, command: VariantsCommand) -> anyhow::Result<ExitCode> {
    let (args, action) = match &command {
        VariantsCommand::List(args) => (args, None),
        VariantsCommand::Next { args, allocate } => (args, Some(*allocate)),
    };
    let environment = Environment::detect().context("cannot determine the environment")?;
    let model = model_folder(&args.backbone)?;
    let variants = resolve(global, args, &environment)?;
    match action {
        None => list(global.format, &variants, &environment, model),
        Some(allocate) => next(global.format, &variants, &environment, model, allocate),
    }?;
    Ok(ExitCode::SUCCESS)
}

fn resolve(
    global: &GlobalArgs,
    args: &VariantArgs,
    environment: &Environment,
) -> anyhow::Result<Variants> {
    let layout = OutputLayout::new(&global.root);
    match args.process {
        VariantProcess::Hpo => {
            if args.spec_fp.is_some() || args.exec_fp.is_some() {
                anyhow::bail!("--spec-fp and --exec-fp apply to --process final_training only");
            }
            let naming = match &args.hpo_config {
                Some(path) => StudyNaming::from_hpo_config(path)?,
                None => StudyNaming::default(),
            };
            let studies = HpoStudies::locate(&layout, environment, &args.backbone, &naming)?;
            tracing::info!(
                "HPO studies of {} in {}",
                studies.base(),
                studies.dir().display()
            );
            Ok(Variants::Hpo(studies))
        }
        VariantProcess::FinalTraining => {
            if args.hpo_config.is_some() {
                anyhow::bail!("--hpo-config applies to --process hpo only");
            }
            let (Some(spec_fp), Some(exec_fp)) = (&args.spec_fp, &args.exec_fp) else {
                anyhow::bail!("--process final_training needs --spec-fp and --exec-fp");
            };
            let key = FinalTrainingKey::new(spec_fp, exec_fp)?;
            let trainings = FinalTrainings::locate(&layout, environment, &args.backbone, key)?;
            tracing::info!(
                "final trainings in {} (index {})",
                trainings.dir().display(),
                trainings.index_path().display()
            );
            Ok(Variants::FinalTraining(trainings))
        }
    }
}

fn list(
    format: Format,
    variants: &Variants,
    environment: &Environment,
    model: &str,
) -> anyhow::Result<()> {
    match variants {
        Variants::Hpo(studies) => {
            let found = studies.list()?;
            let pipeline = pipeline_studies(studies.dir())?;
            match format {
                Format::Json => output::print_json(&ListReport {
                    process: Process::Hpo,
                    environment,
                    model,
                    base: Some(studies.base()),
                    dir: studies.dir(),
                    variants: found,
                    studies: Some(pipeline),
                }),
                Format::Table => {
                    if !pipeline.is_empty() {
                        let mut table =
                            output::table(["Study folder", "Study name", "Trials", "study.db"]);
                        for study in &pipeline {
                            table.add_row([
                                study.name.clone(),
                                study.study_name.clone().unwrap_or_else(|| "-".to_string()),
                                study.trials.to_string(),
                                yes_no(study.has_study_db).to_string(),
                            ]);
                        }
                        println!("{table}");
                        if found.is_empty() {
                            return Ok(());
                        }
                    }
                    let mut table = output::table(["Variant", "Name", "Path"]);
                    for HpoVariant {
                        variant,
                        name,
                        path,
                    } in &found
                    {
                        table.add_row([
                            variant.to_string(),
                            name.clone(),
                            path.display().to_string(),
                        ]);
                    }
                    println!("{table}");
                    Ok(())
                }
            }
        }
        Variants::FinalTraining(trainings) => {
            let found = trainings.list()?;
            match format {
                Format::Json => output::print_json(&ListReport {
                    process: Process::FinalTraining,
                    environment,
                    model,
                    base: None,
                    dir: trainings.dir(),
                    variants: found,
                    studies: None,
                }),
                Format::Table => {
                    let mut table =
                        output::table(["Variant", "Name", "Path", "In index", "On disk"]);
                    for FinalTrainingVariant {
                        variant,
                        name,
                        path,
                        in_index,
                        on_disk,
                    } in &found
                    {
                        table.add_row([
                            variant.to_string(),
                            name.clone(),
                            path.display().to_string(),
                            yes_no(*in_index).to_string(),
                            yes_no(*on_disk).to_string(),
                        ]);
                    }
                    println!("{table}");
                    Ok(())
                }
            }
        }
    }
}

fn next(
    format: Format,
    variants: &Variants,
    environment: &Environment,
    model: &str,
    allocate: bool,
) -> anyhow::Result<()> {
    let (process, base, variant, name, path) = match variants {
        Variants::Hpo(studies) => {
            let found = if allocate {
                studies.allocate()?
            } else {
                studies.next()?
            };
            (
                Process::Hpo,
                Some(studies.base()),
                found.variant,
                found.name,
                found.path,
            )
        }
        Variants::FinalTraining(trainings) => {
            let found = if allocate {
                trainings.allocate()?
            } else {
                trainings.next()?
            };
            (
                Process::FinalTraining,
                None,
                found.variant,
                found.name,
                found.path,
            )
        }
    };
    if allocate {
        tracing::info!("allocated {}", path.display());
    }
    match format {
        Format::Json => output::print_json(&NextReport {
            process,
            environment,
            model,
            base,
            variant,
            name,
            path,
            allocated: allocate,
        }),
        // The bare name, so that shell scripts can use `$(podium variants next …)`.
        Format::Table => {
            output::print_line(&name);
            Ok(())
        }
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
