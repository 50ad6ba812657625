//! Study and trial keys of a pipeline config folder, with `podium-keys` alone.
//!
//! Loads the experiment of a config folder laid out as the Python pipeline lays it out
//! (`experiment/<name>.yaml` naming the data, train, HPO and benchmark files), reads every file
//! the way the pipeline does (`yaml.safe_load`, YAML 1.1), and prints what an HPO run of one
//! backbone's study is tagged with — the v2 study key and its hash, the family hash, the "v1"
//! key hash, the data and eval fingerprints — then the trial key of one set of
//! hyperparameters. The hashes are byte-identical to the pipeline's own functions.
//!
//! ```sh
//! cargo run --example keys_from_yaml
//! cargo run --example keys_from_yaml -- CONFIG_DIR [BACKBONE] [PARAMS_JSON]
//! # e.g.
//! cargo run --example keys_from_yaml -- config deberta '{"learning_rate": 2.5e-05, "batch_size": 16}'
//! ```
//!
//! Defaults: the repository's `config/`, its first backbone and
//! `{"learning_rate": 3e-05, "batch_size": 16, "dropout": 0.1, "weight_decay": 0.01}`.

use std::error::Error;
use std::path::PathBuf;

use podium_keys::{ProjectConfigs, load_json_str, trial_key, trial_key_hash};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let config_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"));
    let project = ProjectConfigs::load(&config_dir, None)?;
    let backbone = match args.next() {
        Some(backbone) => backbone,
        None => project
            .backbones
            .first()
            .cloned()
            .ok_or("the HPO config lists no backbone; name one")?,
    };
    let params = args.next().unwrap_or_else(|| {
        r#"{"learning_rate": 3e-05, "batch_size": 16, "dropout": 0.1, "weight_decay": 0.01}"#
            .to_string()
    });

    let keys = project.study_keys(&backbone)?;
    // json.loads semantics: 3e-05 is a float, 16 an int, exactly as Optuna hands them over.
    let hyperparameters = load_json_str(&params)?;
    let trial = trial_key(&keys.study_key_hash, &hyperparameters)?;

    println!("experiment:        {}", project.files.experiment_name);
    println!("hpo config:        {}", project.files.hpo.display());
    println!("backbone:          {backbone}");
    println!("study key:         {}", keys.study_key);
    println!("study_key_hash:    {}", keys.study_key_hash);
    println!("study_family_hash: {}", keys.study_family_hash);
    println!("v1_study_key_hash: {}", keys.v1_study_key_hash);
    println!("data fingerprint:  {}", keys.data_fingerprint);
    println!("eval fingerprint:  {}", keys.eval_fingerprint);
    println!("trial key:         {trial}");
    println!("trial_key_hash:    {}", trial_key_hash(&trial));
    Ok(())
}
