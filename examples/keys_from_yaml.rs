//! Study and trial keys from YAML configs, with `podium-keys` alone.
//!
//! Loads `data.yaml`, an HPO config, `train.yaml` and `eval.yaml` the way the Python pipeline
//! does (`yaml.safe_load`, YAML 1.1), and prints what an HPO run of that study is tagged with:
//! the v2 study key and its hash, the study family hash, the data and eval fingerprints — then
//! the trial key hash of one set of hyperparameters. The hashes are byte-identical to Python's
//! `hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode())`.
//!
//! ```sh
//! cargo run --example keys_from_yaml
//! cargo run --example keys_from_yaml -- CONFIG_DIR [HPO_CONFIG] [BACKBONE] [PARAMS_JSON]
//! # e.g.
//! cargo run --example keys_from_yaml -- config hpo/smoke.yaml distilroberta-base \
//!     '{"learning_rate": 2.5e-05, "batch_size": 16}'
//! ```
//!
//! Defaults: the repository's `config/`, `hpo/prod.yaml`, `distilbert-base-uncased` and
//! `{"learning_rate": 3e-05, "batch_size": 16, "dropout": 0.1, "weight_decay": 0.01}`.

use std::error::Error;
use std::path::PathBuf;

use podium_keys::{
    StudyConfigs, StudyIdentity, StudyKeySchema, load_json_str, load_path, trial_key,
    trial_key_hash,
};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let config_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"));
    let hpo_config = args.next().unwrap_or_else(|| "hpo/prod.yaml".to_string());
    let backbone = args
        .next()
        .unwrap_or_else(|| "distilbert-base-uncased".to_string());
    let params = args.next().unwrap_or_else(|| {
        r#"{"learning_rate": 3e-05, "batch_size": 16, "dropout": 0.1, "weight_decay": 0.01}"#
            .to_string()
    });

    let load = |name: &str| load_path(&config_dir.join(name));
    let (data, hpo, train, eval) = (
        load("data.yaml")?,
        load(&hpo_config)?,
        load("train.yaml")?,
        load("eval.yaml")?,
    );
    let configs = StudyConfigs {
        data: &data,
        hpo: &hpo,
        train: &train,
        eval: &eval,
        model: &backbone,
        benchmark: None,
        code_version: None,
    };
    let study = StudyIdentity::compute(&configs, StudyKeySchema::V2)?;
    // json.loads semantics: 3e-05 is a float, 16 an int, exactly as Optuna hands them over.
    let hyperparameters = load_json_str(&params)?;
    let trial = trial_key(&study.study_key_hash, &hyperparameters)?;

    println!("config dir:        {}", config_dir.display());
    println!("hpo config:        {hpo_config}");
    println!("backbone:          {backbone}");
    println!("study key:         {}", study.study_key);
    println!("study_key_hash:    {}", study.study_key_hash);
    println!("study_family_hash: {}", study.study_family_hash);
    println!("data fingerprint:  {}", study.data_fingerprint);
    println!("eval fingerprint:  {}", study.eval_fingerprint);
    println!("direction:         {}", study.objective_direction);
    println!("trial key:         {trial}");
    println!("trial_key_hash:    {}", trial_key_hash(&trial));
    Ok(())
}
