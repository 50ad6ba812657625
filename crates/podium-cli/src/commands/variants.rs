//! `podium variants list|next`: the HPO study folders and final-training folders of a backbone.
//! The HPO ones come from podium-project (the experiment's HPO config of record names them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use podium_project::variants::{FinalTrainingRequest, FinalTrainingVariant, FinalTrainingsReport};
use podium_project::{HpoNextReport, HpoStudiesReport, HpoVariant};

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
    output::print_wrapped(&format!("layout: {}", report.layout.describe()));
    output::print_wrapped(&format!(
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
        // Every variant is a folder of `dir`: the folder once, then the names.
        output::print_wrapped(&format!("study variants in {}:", report.dir.display()));
        let mut table = output::table(["Variant", "Name"]);
        for HpoVariant { variant, name, .. } in &report.variants {
            table.add_row([variant.to_string(), name.clone()]);
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
    let request = FinalTrainingRequest {
        backbone: args.backbone.clone(),
        spec_fp: spec_fp.clone(),
        exec_fp: exec_fp.clone(),
    };
    let options = global.project_options();
    match action {
        None => {
            let report = options.final_trainings(&request)?;
            match global.format {
                Format::Json => output::print_json(&report)?,
                Format::Table => print_final_trainings(&report),
            }
        }
        Some(allocate) => {
            let next = options.next_final_training(&request, allocate)?;
            match global.format {
                Format::Json => output::print_json(&next)?,
                // The bare name, so that shell scripts can use `$(podium variants next …)`.
                Format::Table => output::print_line(&next.name),
            }
        }
    }
    Ok(())
}

fn print_final_trainings(report: &FinalTrainingsReport) {
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
    } in &report.variants
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

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}
