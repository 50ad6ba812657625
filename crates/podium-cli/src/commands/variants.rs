//! `podium variants list|next`: the HPO study folders and final-training folders of a backbone.
//! The HPO ones come from podium-project (the experiment's HPO config of record names them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use podium_project::{HpoNextReport, HpoStudiesReport};
use podium_variants::{
    Environment, FinalTrainingKey, FinalTrainingVariant, FinalTrainings, HpoVariant, OutputLayout,
    Process, model_folder,
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
    /// The backbone, as the HPO config's search space writes it (e.g. distilbert).
    #[arg(long)]
    backbone: String,
    /// HPO config whose `checkpoint.study_name` (else `study_name`) names the studies and that
    /// feeds the study key [default: the experiment's HPO config of record]. HPO only.
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
    /// HPO study folders: the pipeline's `study-{s8}`, or the legacy `{base}`, `{base}_v{N}`.
    Hpo,
    /// Final-training folders `spec-…_exec-…/v{N}`.
    FinalTraining,
}

/// What `next` reports for final training, in JSON.
#[derive(Debug, Serialize)]
struct NextReport<'a> {
    process: Process,
    environment: &'a Environment,
    model: &'a str,
    variant: u32,
    name: String,
    path: PathBuf,
    allocated: bool,
}

/// What `list` reports for final training, in JSON.
#[derive(Debug, Serialize)]
struct ListReport<'a> {
    process: Process,
    environment: &'a Environment,
    model: &'a str,
    dir: &'a Path,
    variants: Vec<FinalTrainingVariant>,
}

/// Runs `podium variants`.
pub fn run(global: &GlobalArgs, command: VariantsCommand) -> anyhow::Result<ExitCode> {
    let (args, action) = match &command {
        VariantsCommand::List(args) => (args, None),
        VariantsCommand::Next { args, allocate } => (args, Some(*allocate)),
    };
    match args.process {
        VariantProcess::Hpo => {
            if args.spec_fp.is_some() || args.exec_fp.is_some() {
                anyhow::bail!("--spec-fp and --exec-fp apply to --process final_training only");
            }
            let options = global.project_options();
            let hpo_config = args.hpo_config.as_deref();
            match action {
                None => print_hpo_list(
                    global.format,
                    &options.hpo_studies(&args.backbone, hpo_config)?,
                )?,
                Some(allocate) => print_hpo_next(
                    global.format,
                    &options.next_hpo_study(&args.backbone, hpo_config, allocate)?,
                )?,
            }
        }
        VariantProcess::FinalTraining => final_training(global, args, action)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_hpo_list(format: Format, report: &HpoStudiesReport) -> anyhow::Result<()> {
    if format == Format::Json {
        return output::print_json(report);
    }
    output::print_line(&format!("layout: {}", report.layout.describe()));
    output::print_line(&format!(
        "next sweep: study {:?} in {} (HPO config {})",
        report.study_name,
        report.study_folder,
        report.hpo_config.display()
    ));
    if !report.studies.is_empty() {
        let mut table = output::table(["Study folder", "Optuna studies", "Trials", "study.db"]);
        for study in &report.studies {
            table.add_row([
                study.folder.name.clone(),
                study.optuna_studies.join(", "),
                study.folder.trials.to_string(),
                yes_no(study.folder.has_study_db).to_string(),
            ]);
        }
        println!("{table}");
    }
    if !report.variants.is_empty() {
        let mut table = output::table(["Variant", "Name", "Path"]);
        for HpoVariant {
            variant,
            name,
            path,
        } in &report.variants
        {
            table.add_row([
                variant.to_string(),
                name.clone(),
                path.display().to_string(),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}

fn print_hpo_next(format: Format, report: &HpoNextReport) -> anyhow::Result<()> {
    if report.allocated {
        tracing::info!("allocated {}", report.path.display());
    }
    match format {
        Format::Json => output::print_json(report),
        // The bare folder name on stdout, so that shell scripts can use
        // `$(podium variants next …)`; what it is, for people, on stderr.
        Format::Table => {
            output::print_line(&report.name);
            let what = match report.variant {
                Some(variant) => format!(
                    "{}: variant {variant} of {}",
                    report.listing.layout.describe(),
                    report.listing.base
                ),
                None => format!(
                    "{}: study {:?} ({}{})",
                    report.listing.layout.describe(),
                    report.listing.study_name,
                    if report.exists {
                        "folder exists"
                    } else {
                        "new folder"
                    },
                    if report.holds_study {
                        "; its study.db holds the study: the sweep resumes it"
                    } else {
                        ""
                    }
                ),
            };
            output::eprint_line(&what);
            Ok(())
        }
    }
}

fn final_training(
    global: &GlobalArgs,
    args: &VariantArgs,
    action: Option<bool>,
) -> anyhow::Result<()> {
    if args.hpo_config.is_some() {
        anyhow::bail!("--hpo-config applies to --process hpo only");
    }
    let (Some(spec_fp), Some(exec_fp)) = (&args.spec_fp, &args.exec_fp) else {
        anyhow::bail!("--process final_training needs --spec-fp and --exec-fp");
    };
    let environment = Environment::detect().context("cannot determine the environment")?;
    let model = model_folder(&args.backbone)?;
    let layout = OutputLayout::new(&global.root);
    let key = FinalTrainingKey::new(spec_fp, exec_fp)?;
    let trainings = FinalTrainings::locate(&layout, &environment, &args.backbone, key)?;
    tracing::info!(
        "final trainings in {} (index {})",
        trainings.dir().display(),
        trainings.index_path().display()
    );
    match action {
        None => list_final_training(global.format, &trainings, &environment, model),
        Some(allocate) => {
            next_final_training(global.format, &trainings, &environment, model, allocate)
        }
    }
}

fn list_final_training(
    format: Format,
    trainings: &FinalTrainings,
    environment: &Environment,
    model: &str,
) -> anyhow::Result<()> {
    let found = trainings.list()?;
    match format {
        Format::Json => output::print_json(&ListReport {
            process: Process::FinalTraining,
            environment,
            model,
            dir: trainings.dir(),
            variants: found,
        }),
        Format::Table => {
            let mut table = output::table(["Variant", "Name", "Path", "In index", "On disk"]);
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

fn next_final_training(
    format: Format,
    trainings: &FinalTrainings,
    environment: &Environment,
    model: &str,
    allocate: bool,
) -> anyhow::Result<()> {
    let found = if allocate {
        trainings.allocate()?
    } else {
        trainings.next()?
    };
    if allocate {
        tracing::info!("allocated {}", found.path.display());
    }
    match format {
        Format::Json => output::print_json(&NextReport {
            process: Process::FinalTraining,
            environment,
            model,
            variant: found.variant,
            name: found.name,
            path: found.path,
            allocated: allocate,
        }),
        // The bare name, so that shell scripts can use `$(podium variants next …)`.
        Format::Table => {
            output::print_line(&found.name);
            Ok(())
        }
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
