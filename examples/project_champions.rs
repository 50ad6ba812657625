//! Open a podium project with `podium-project` and select each backbone's champion: the one
//! call `podium select` makes, the same data its `--format json` prints.
//!
//! ```sh
//! # A project made by `podium demo` (configs, mlflow.db, outputs in one folder):
//! cargo run -p podium-cli -- demo --dir podium-demo
//! cargo run --example project_champions -- podium-demo
//! # Without a project: the repository's configs on a new, empty store (every backbone then
//! # says why it has no champion).
//! cargo run --example project_champions
//! ```

use std::error::Error;
use std::path::PathBuf;

use podium::project::{ProjectOptions, SelectReport, StoreAccess};

fn main() -> Result<(), Box<dyn Error>> {
    let scratch = tempfile::tempdir()?;
    let (options, access) = match std::env::args().nth(1).map(PathBuf::from) {
        // An existing project: reading must not create a store where the path is mistyped.
        Some(dir) => {
            let db = dir.join("mlflow.db");
            let options = ProjectOptions::new(dir.join("config"), &dir)
                .tracking_uri(Some(format!("sqlite:///{}", db.display())));
            (options, StoreAccess::Existing)
        }
        None => {
            let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
            let db = scratch.path().join("mlflow.db");
            let options = ProjectOptions::new(config, scratch.path())
                .tracking_uri(Some(format!("sqlite:///{}", db.display())));
            (options, StoreAccess::Create)
        }
    };
    let project = options.open(access)?;
    println!(
        "experiment {} ({} backbones), store {}{}",
        project.experiment.name,
        project.experiment.backbones.len(),
        project.tracking_uri().unwrap_or("-"),
        if project.created_store() {
            " (created, empty)"
        } else {
            ""
        }
    );

    let report = SelectReport::from(&project.select(&[])?);
    for (backbone, champion) in &report.champions {
        println!(
            "{backbone}: trial {} ({} = {:.4}, stable score {:.4}), checkpoint from run {}",
            champion.champion.trial_run_id,
            champion.metadata.metric,
            champion.champion.metric,
            champion.champion.stable_score,
            champion.champion.run_id,
        );
    }
    for (backbone, reason) in &report.errors {
        println!("{backbone}: no champion: {reason}");
    }
    // The JSON a service would send on: exactly `podium select --format json`.
    let json = serde_json::to_string(&report)?;
    println!("{} bytes of JSON", json.len());
    Ok(())
}
