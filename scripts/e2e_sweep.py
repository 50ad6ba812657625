"""A tiny but real HPO sweep, logged the way the Python pipeline logs it (podium's end-to-end test).

Usage:
  python e2e_sweep.py --tracking-uri URI --root ROOT --config-dir DIR --checkpoint-dir CKPT \
      --out RESULT.json [--trials N] [--backbone B ...]

For every backbone: an Optuna study stored in the study folder
`ROOT/outputs/hpo/{env}/{model}/hpo_{model}/study.db`, a sweep (parent) run, one nested MLflow
run per trial (tags from config/tags.yaml; study and trial key hashes computed with the canonical
JSON rule: json.dumps(sort_keys=True, separators=(",", ":")) + sha256), `trial_{n}/metrics.json`
on disk, and a refit run of the best trial that uploads `CKPT/{model}` as the MLflow artifact
`checkpoint/` (through the server's artifact proxy). Only the upload holds the checkpoint: no
checkpoint_path tag and no copy in the disk layout, so a reader must download it.

Writes to RESULT.json, per backbone: study_key_hash, sweep/best-trial/refit run ids, best value
(a file, because mlflow prints run links on stdout).
"""

import argparse
import hashlib
import json
import os

import mlflow
import optuna
import yaml


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compact(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def default_dump(value):
    return json.dumps(value, sort_keys=True)


def load(config_dir, name):
    with open(os.path.join(config_dir, name)) as handle:
        return yaml.safe_load(handle) or {}


def data_fingerprint(data):
    identity = data.get("content_hash") or data.get("manifest_hash")
    if identity:
        return sha256(str(identity))
    return sha256(
        default_dump(
            {
                "name": data.get("name"),
                "version": data.get("version"),
                "split_seed": data.get("split_seed"),
                "label_mapping": data.get("label_mapping", {}),
                "schema": data.get("schema", {}),
            }
        )
    )


def eval_fingerprint(evaluation):
    return sha256(
        default_dump(
            {
                "evaluator_version": evaluation.get("evaluator_version", "default"),
                "metric_spec": evaluation.get("metric", {}),
                "thresholding": evaluation.get("thresholding", {}),
                "full_eval_config": evaluation,
            }
        )
    )


def study_payload(data, hpo, train, evaluation, model, schema_version, with_search_space):
    objective = hpo.get("objective", {})
    payload = {
        "schema_version": schema_version,
        "data": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "schema": data.get("schema", {}),
            "split_seed": data.get("split_seed", "default"),
            "label_mapping": data.get("label_mapping", {}),
            "data_fingerprint": data_fingerprint(data),
        },
        "hpo": {
            "objective": {
                "metric": objective.get("metric", "macro-f1"),
                "direction": objective.get("direction", "maximize"),
            },
            "k_fold": hpo.get("k_fold", {}),
            "sampling": {"algorithm": hpo.get("sampling", {}).get("algorithm", "random")},
            "early_termination": hpo.get("early_termination", {}),
        },
        "training": {
            "max_steps": train.get("max_steps"),
            "num_epochs": train.get("num_epochs"),
            "seed_policy": train.get("seed_policy", "default"),
        },
        "evaluation": {"eval_fingerprint": eval_fingerprint(evaluation)},
        "model": model.lower().strip(),
    }
    if with_search_space:
        payload["hpo"]["search_space"] = hpo.get("search_space", {})
    return payload


def tag_keys(config_dir):
    """(section, name) -> MLflow tag key, from tags.yaml (every key the pipeline uses)."""
    return load(config_dir, "tags.yaml")


def suggest(trial, name, spec):
    kind = spec["type"]
    if kind == "loguniform":
        return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=True)
    if kind == "uniform":
        return trial.suggest_float(name, float(spec["low"]), float(spec["high"]))
    if kind == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]))
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
    data, hpo, train, evaluation, experiment = configs
    model = backbone.split("-")[0]
    environment = os.environ.get("PODIUM_ENVIRONMENT", "local")
    study_name = hpo.get("checkpoint", {}).get("study_name", "hpo_{backbone}").replace(
        "{backbone}", model
    )
    study_dir = os.path.join(args.root, "outputs", "hpo", environment, model, study_name)
    os.makedirs(study_dir, exist_ok=True)

    study_key_hash = sha256(compact(study_payload(data, hpo, train, evaluation, backbone, "2.0", True)))
    family_hash = sha256(
        compact(study_payload(data, hpo, train, evaluation, backbone, "family-2.0", False))
    )
    direction = hpo.get("objective", {}).get("direction", "maximize")
    metric = hpo.get("objective", {}).get("metric", "macro-f1")
    common = {
        tags["process"]["backbone"]: model,
        tags["process"]["variant"]: "1",
        tags["grouping"]["study_key_hash"]: study_key_hash,
        tags["grouping"]["study_family_hash"]: family_hash,
        tags["study"]["key_schema_version"]: "2.0",
        tags["fingerprint"]["data"]: data_fingerprint(data),
        tags["fingerprint"]["eval"]: eval_fingerprint(evaluation),
        tags["objective"]["direction"]: direction,
    }
    stage = tags["process"]["stage"]
    available = tags["artifact"]["available"]

    experiment_name = experiment["hpo_experiment"].replace("{name}", experiment["name"]).replace(
        "{backbone}", model
    )
    mlflow.set_experiment(experiment_name)
    study = optuna.create_study(
        study_name=study_name,
        storage=f"sqlite:///{os.path.join(study_dir, 'study.db')}",
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=index + 1),
        load_if_exists=True,
    )
    trial_runs = {}
    with mlflow.start_run(run_name=study_name, tags={**common, stage: "hpo_sweep", available: "false"}) as parent:
        sweep_run_id = parent.info.run_id

        def objective(trial):
            params = {name: suggest(trial, name, spec) for name, spec in hpo["search_space"].items()}
            trial_key_hash = sha256(
                compact(
                    {
                        "schema_version": "1.0",
                        "study_key_hash": study_key_hash,
                        "hyperparameters": params,
                    }
                )
            )
            run_tags = {
                **common,
                stage: "hpo_trial",
                available: "false",
                tags["grouping"]["trial_key_hash"]: trial_key_hash,
                tags["lineage"]["hpo_sweep_run_id"]: sweep_run_id,
            }
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
        refit_tags = {
            **common,
            stage: "hpo_refit",
            available: "true",
            tags["grouping"]["trial_key_hash"]: best_trial_key_hash,
            tags["lineage"]["hpo_sweep_run_id"]: sweep_run_id,
            tags["refit"]["of_trial_run_id"]: best_run_id,
        }
        with mlflow.start_run(run_name=f"refit_trial_{best.number}", nested=True, tags=refit_tags) as refit:
            mlflow.log_params(best_params)
            mlflow.log_metric(metric, best.value)
            mlflow.log_artifacts(os.path.join(args.checkpoint_dir, model), "checkpoint")
            refit_run_id = refit.info.run_id
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
    parser.add_argument("--hpo-config", default="hpo/prod.yaml")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--backbone", action="append", dest="backbones")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    mlflow.set_tracking_uri(args.tracking_uri)
    configs = (
        load(args.config_dir, "data.yaml"),
        load(args.config_dir, args.hpo_config),
        load(args.config_dir, "train.yaml"),
        load(args.config_dir, "eval.yaml"),
        load(args.config_dir, "experiment.yaml"),
    )
    tags = tag_keys(args.config_dir)
    backbones = args.backbones or configs[4]["backbones"]
    result = {
        backbone: sweep(args, backbone, index, configs, tags)
        for index, backbone in enumerate(backbones)
    }
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
