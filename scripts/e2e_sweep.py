"""A tiny but real HPO sweep, logged the way the Python pipeline logs it (podium's end-to-end test).

Usage:
  python e2e_sweep.py --tracking-uri URI --root ROOT --config-dir DIR --checkpoint-dir CKPT \
      --out RESULT.json [--experiment NAME] [--trials N] [--backbone B ...]

Reads the pipeline's config layout: `DIR/experiment/<name>.yaml` (the only one unless
--experiment names it) names the data, train, HPO (stages.hpo.hpo_config, else hpo_config) and
benchmark files, relative to DIR; the backbones are the HPO config's search_space.backbone.values
(as written). The key formulas (fingerprints, derived eval config, study key v2, family key,
trial key schema "2.0") are those of scripts/keys-reference.py, imported, not restated.

For every backbone: an MLflow experiment `{experiment_name}-hpo-{backbone}`, an Optuna study
stored in the study folder `ROOT/outputs/hpo/{env}/{model}/{study_name}/study.db` ({model}: the
text before the first '-'), a sweep (parent) run, one nested MLflow run per trial and a refit run
of the best trial, tagged as the pipeline tags them (tag keys from tags.yaml): the sweep has stage
`hpo` and `code.model` = the backbone as written; trials have stage `hpo`, `code.model` = the short
name, `mlflow.parentRunId` = the sweep and no schema tag (read as "2.0"); sweep and refit carry
`code.study.key_schema_version` "2.0", both fingerprints and the objective direction. The refit
uploads `CKPT/{model}` as the MLflow artifact `checkpoint/` (through the server's artifact proxy),
then the sweep's `code.artifact.available` turns "true". Only the upload holds the checkpoint: no
checkpoint_path tag and no copy in the disk layout, so a reader must download it. Each trial also
writes `trial_{n}/metrics.json` in the study folder.

Writes to RESULT.json, per backbone: study_key_hash, sweep/best-trial/refit run ids, best value
(a file, because mlflow prints run links on stdout).
"""

import argparse
import importlib.util
import json
import os

import mlflow
import optuna


def load_keys_reference():
    """scripts/keys-reference.py (a hyphenated file name: loaded by path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keys-reference.py")
    spec = importlib.util.spec_from_file_location("keys_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


keys = load_keys_reference()


def bound(spec, *names):
    for name in names:
        if name in spec:
            return float(spec[name])  # PyYAML reads `1e-5` (no dot) as a string
    raise ValueError(f"search space entry {spec!r} has none of {names}")


def suggest(trial, name, spec):
    kind = spec["type"]
    if kind == "loguniform":
        return trial.suggest_float(name, bound(spec, "min", "low"), bound(spec, "max", "high"), log=True)
    if kind == "uniform":
        return trial.suggest_float(name, bound(spec, "min", "low"), bound(spec, "max", "high"))
    if kind == "int":
        return trial.suggest_int(name, int(bound(spec, "min", "low")), int(bound(spec, "max", "high")))
    if kind in ("choice", "categorical"):
        return trial.suggest_categorical(name, spec.get("values", spec.get("choices")))
    raise ValueError(f"unknown search space type {kind!r} for {name}")


def fake_score(params, offset):
    """A deterministic stand-in for training: smooth in the hyperparameters."""
    score = 0.80 + offset
    if "learning_rate" in params:
        score += 0.03 - abs(params["learning_rate"] - 3e-5) * 1000
    if "batch_size" in params:
        score += 0.01 if params["batch_size"] == 16 else 0.0
    return round(score, 6)


def sweep(args, backbone, index, configs, tags):
    data, hpo, train, benchmark, experiment_name = configs
    model = backbone.split("-")[0]
    environment = os.environ.get("PODIUM_ENVIRONMENT", "local")
    study_name = hpo.get("checkpoint", {}).get("study_name", "hpo_{backbone}").replace(
        "{backbone}", model
    )
    study_dir = os.path.join(args.root, "outputs", "hpo", environment, model, study_name)
    os.makedirs(study_dir, exist_ok=True)

    study_keys = keys.study_keys(data, hpo, train, benchmark, backbone)
    study_key_hash = study_keys["study_key_hash"]
    direction = hpo.get("objective", {}).get("direction", "maximize")
    metric = hpo.get("objective", {}).get("metric", "macro-f1")
    key_schema = {tags["study"]["key_schema_version"]: "2.0"}
    sweep_copied = {
        **key_schema,
        tags["fingerprint"]["data"]: study_keys["data_fingerprint"],
        tags["fingerprint"]["eval"]: study_keys["eval_fingerprint"],
        tags["objective"]["direction"]: direction,
    }
    grouping = {
        tags["grouping"]["study_key_hash"]: study_key_hash,
        tags["grouping"]["study_family_hash"]: study_keys["study_family_hash"],
        tags["grouping"]["grouping_schema_version"]: "1",
        tags["process"]["storage_env"]: environment,
        tags["process"]["env"]: environment,
    }
    stage = tags["process"]["stage"]
    model_tag = tags["process"]["model"]
    available = tags["artifact"]["available"]
    search_space = {name: spec for name, spec in hpo["search_space"].items() if name != "backbone"}

    mlflow.set_experiment(f"{experiment_name}-hpo-{backbone}")
    study = optuna.create_study(
        study_name=study_name,
        storage=f"sqlite:///{os.path.join(study_dir, 'study.db')}",
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=index + 1),
        load_if_exists=True,
    )
    trial_runs = {}
    sweep_tags = {
        **grouping,
        **sweep_copied,
        stage: "hpo",
        model_tag: backbone,
        available: "false",
        tags["mlflow"]["run_type"]: "sweep",
        tags["azureml"]["run_type"]: "sweep",
        tags["azureml"]["sweep"]: "true",
        tags["hpo"]["refit_planned"]: "true",
    }
    with mlflow.start_run(run_name=study_name, tags=sweep_tags) as parent:
        sweep_run_id = parent.info.run_id

        def objective(trial):
            params = {name: suggest(trial, name, spec) for name, spec in search_space.items()}
            trial_key_hash = keys.sha256_hex(keys.trial_key(study_key_hash, params))
            run_tags = {
                **grouping,
                stage: "hpo",
                model_tag: model,
                tags["grouping"]["trial_key_hash"]: trial_key_hash,
                tags["azureml"]["run_type"]: "trial",
                tags["legacy"]["trial_number"]: str(trial.number),
                tags["hpo"]["trial_number"]: str(trial.number),
            }
            # nested=True: mlflow.parentRunId is the sweep run.
            with mlflow.start_run(run_name=f"trial_{trial.number}", nested=True, tags=run_tags) as run:
                value = fake_score(params, 0.01 * index)
                mlflow.log_params(params)
                mlflow.log_metric(metric, value)
                trial_runs[trial.number] = (run.info.run_id, trial_key_hash, params)
            trial_dir = os.path.join(study_dir, f"trial_{trial.number}")
            os.makedirs(trial_dir, exist_ok=True)
            with open(os.path.join(trial_dir, "metrics.json"), "w") as handle:
                json.dump({metric: value}, handle)
            return value

        study.optimize(objective, n_trials=args.trials)
        best = study.best_trial
        best_run_id, best_trial_key_hash, best_params = trial_runs[best.number]
        mlflow.set_tags({
            tags["hpo"]["best_trial_run_id"]: best_run_id,
            tags["hpo"]["best_trial_number"]: str(best.number),
        })
        refit_tags = {
            **grouping,
            **sweep_copied,
            stage: "hpo_refit",
            model_tag: model,
            tags["grouping"]["trial_key_hash"]: best_trial_key_hash,
            tags["grouping"]["parent_run_id"]: sweep_run_id,
            tags["process"]["run_type"]: "refit",
            tags["mlflow"]["run_type"]: "refit",
            tags["azureml"]["run_type"]: "refit",
            tags["refit"]["of_trial_run_id"]: best_run_id,
            tags["training"]["refit"]: "true",
            tags["training"]["refit_has_validation"]: "false",
        }
        with mlflow.start_run(run_name=f"refit_trial_{best.number}", nested=True, tags=refit_tags) as refit:
            mlflow.log_params(best_params)
            mlflow.log_metric(metric, best.value)
            mlflow.log_artifacts(os.path.join(args.checkpoint_dir, model), "checkpoint")
            mlflow.set_tag(available, "true")
            refit_run_id = refit.info.run_id
        # The sweep's artifact tag turns "true" once the checkpoint is logged.
        mlflow.set_tag(available, "true")
    return {
        "study_key_hash": study_key_hash,
        "sweep_run_id": sweep_run_id,
        "best_trial_run_id": best_run_id,
        "refit_run_id": refit_run_id,
        "best_value": best.value,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--config-dir", required=True)
    parser.add_argument("--checkpoint-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--experiment", help="config/experiment/<NAME>.yaml (default: the only one)")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--backbone", action="append", dest="backbones")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mlflow.set_tracking_uri(args.tracking_uri)
    files = keys.experiment_files(args.config_dir, args.experiment)
    folder = os.path.join(args.config_dir, "experiment")
    experiment_file = (
        os.path.join(folder, f"{args.experiment}.yaml")
        if args.experiment
        else os.path.join(folder, next(f for f in sorted(os.listdir(folder)) if f.endswith((".yaml", ".yml"))))
    )
    experiment_name = keys.load(experiment_file)["experiment_name"]
    hpo = keys.load(files["hpo"])
    configs = (
        keys.load(files["data"]),
        hpo,
        keys.load(files["train"]),
        keys.load(files["benchmark"]) if os.path.exists(files["benchmark"]) else None,
        experiment_name,
    )
    tags = keys.load(os.path.join(args.config_dir, "tags.yaml"))
    backbones = args.backbones or hpo["search_space"]["backbone"]["values"]
    result = {
        backbone: sweep(args, backbone, index, configs, tags)
        for index, backbone in enumerate(backbones)
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
