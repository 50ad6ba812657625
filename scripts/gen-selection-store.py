"""Generates a large MLflow SQLite store of HPO runs for the `podium select` speed comparison.

Usage: python scripts/gen-selection-store.py OUT_DB [--trials 100000] [--group-size 50] [--seed 7]
                                              [--tag-style podium|pipeline]

The experiments are created by Python `mlflow` itself (so the schema, alembic stamp and artifact
locations are exactly MLflow's); the runs are then bulk-inserted with SQL in one transaction, the
way MLflow's SQLAlchemy store lays them out (runs, tags, params, metrics, latest_metrics), so the
file is read back by `MlflowClient.search_runs` and by podium alike.

Per backbone of config/experiment.yaml (experiment `podium-ner-hpo-{short}`): trial runs in study
groups of GROUP_SIZE, each group with a sweep (parent) run and one refit run of its best trial
(linked by `code.refit.of_trial_run_id`). About 10 % of the groups are legacy (no schema tag), 1 %
of the trials have a NaN metric, 0.5 % are FAILED. Deterministic for a given seed.

Tag styles:
- `podium` (default): the tags `podium select` has read so far: `code.backbone`, stages
  `hpo_sweep` / `hpo_trial` / `hpo_refit`, the schema tag on every run of a v2 group, experiments
  `podium-ner-hpo-{short backbone}`.
- `pipeline`: the tags the Python pipeline writes (src/infrastructure/naming/mlflow/tags.py
  `build_mlflow_tags`, src/training/hpo/tracking/runs.py for trials, src/training/hpo/execution/
  local/refit.py for refits): sweep and trials with `code.stage = hpo` and `code.model = {short}`
  (no `code.backbone`), trials linked by `mlflow.parentRunId` and carrying no schema tag,
  `azureml.runType = trial` and `trial_number`; sweep and refit with schema "2.0" (legacy groups:
  explicit "1.0"); refits `code.stage = hpo_refit`, `code.run_type = refit`, parented to the sweep;
  experiments `podium-ner-hpo-{full backbone}`.
"""

import argparse
import os
import random
import sqlite3
import sys
import time
import uuid

from mlflow.tracking import MlflowClient

BACKBONES = ["distilbert-base-uncased", "distilroberta-base", "deberta-v3-small"]
METRIC = "macro-f1"


def run_id(rng):
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_db")
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--group-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tag-style", choices=["podium", "pipeline"], default="podium")
    args = parser.parse_args()
    pipeline = args.tag_style == "pipeline"

    if os.path.exists(args.out_db):
        sys.exit(f"{args.out_db} exists; remove it first")
    started = time.time()
    uri = f"sqlite:///{os.path.abspath(args.out_db)}"
    client = MlflowClient(uri)
    experiments = {}
    for backbone in BACKBONES:
        short = backbone.split("-")[0]
        experiment_id = client.create_experiment(
            f"podium-ner-hpo-{backbone if pipeline else short}")
        experiments[short] = (experiment_id, client.get_experiment(experiment_id).artifact_location)

    rng = random.Random(args.seed)
    runs, tags, params, metrics = [], [], [], []
    base_time = 1_700_000_000_000
    clock = [base_time]

    def add_run(short, name, status, run_tags, run_params, run_metrics):
        experiment_id, artifact_location = experiments[short]
        rid = run_id(rng)
        clock[0] += 1
        start = clock[0]
        runs.append((rid, name, "LOCAL", "", "", "podium", status, start, start + 1000, "",
                     "active", f"{artifact_location}/{rid}/artifacts", int(experiment_id)))
        run_tags = dict(run_tags)
        run_tags["mlflow.runName"] = name
        run_tags["mlflow.user"] = "podium"
        tags.extend((key, value, rid) for key, value in run_tags.items())
        params.extend((key, value, rid) for key, value in run_params.items())
        for key, value in run_metrics.items():
            is_nan = value != value
            metrics.append((key, 0.0 if is_nan else value, start + 500, rid, 0, int(is_nan)))
        return rid

    per_backbone = [args.trials // len(BACKBONES)] * len(BACKBONES)
    for index in range(args.trials % len(BACKBONES)):
        per_backbone[index] += 1
    for backbone, count in zip(BACKBONES, per_backbone):
        short = backbone.split("-")[0]
        group_index = 0
        while count > 0:
            size = min(args.group_size, count)
            count -= size
            study = f"{rng.getrandbits(256):064x}"
            legacy = rng.random() < 0.10
            if pipeline:
                schema = {"code.study.key_schema_version": "1.0" if legacy else "2.0"}
                trial_schema = {"code.study.key_schema_version": "1.0"} if legacy else {}
                identity = {"code.model": short, "code.env": "local", "code.storage_env": "local",
                            "code.execution_platform": "local", "code.created_by": "podium",
                            "code.project": "resume-ner"}
                stages = {"sweep": "hpo", "trial": "hpo", "refit": "hpo_refit"}
            else:
                schema = {} if legacy else {"code.study.key_schema_version": "2.0"}
                trial_schema = schema
                identity = {"code.backbone": short}
                stages = {"sweep": "hpo_sweep", "trial": "hpo_trial", "refit": "hpo_refit"}
            study = f"{rng.getrandbits(256):064x}"
            quality = rng.uniform(0.55, 0.85)
            sweep = add_run(short, f"hpo_{short}_{group_index}", "FINISHED",
                            {**identity, "code.stage": stages["sweep"],
                             "code.study_key_hash": study, "code.fingerprint.data": "data-fp",
                             "code.fingerprint.eval": "eval-fp",
                             "code.objective.direction": "maximize",
                             "code.artifact.available": "true", **schema}, {}, {})
            best = None
            for trial_number in range(size):
                trial_key = f"{rng.getrandbits(256):064x}"
                value = min(0.999, max(0.0, rng.gauss(quality, 0.04)))
                value = round(value, 6)
                if rng.random() < 0.01:
                    value = float("nan")
                status = "FAILED" if rng.random() < 0.005 else "FINISHED"
                if pipeline:
                    trial_tags = {
                        **identity, "code.stage": stages["trial"], "code.study_key_hash": study,
                        "code.trial_key_hash": trial_key, "code.hpo.trial_number": str(trial_number),
                        "mlflow.parentRunId": sweep, "azureml.runType": "trial",
                        "azureml.trial": "true", "trial_number": str(trial_number),
                        **trial_schema,
                    }
                else:
                    trial_tags = {
                        **identity, "code.stage": stages["trial"],
                        "code.study_key_hash": study, "code.trial_key_hash": trial_key,
                        "code.fingerprint.data": "data-fp", "code.fingerprint.eval": "eval-fp",
                        "code.artifact.available": "true", "code.objective.direction": "maximize",
                        "code.lineage.hpo_sweep_run_id": sweep, "mlflow.parentRunId": sweep,
                        "code.variant": str(group_index + 1), **trial_schema,
                    }
                trial_params = {
                    "learning_rate": f"{rng.choice([1e-5, 2e-5, 3e-5, 5e-5])}",
                    "batch_size": str(rng.choice([8, 16, 32])),
                    "weight_decay": f"{rng.uniform(0, 0.1):.4f}",
                }
                rid = add_run(short, f"trial_{trial_number}", status, trial_tags, trial_params,
                              {METRIC: value, "loss": round(rng.uniform(0.1, 1.0), 6)})
                if status == "FINISHED" and value == value and (best is None or value > best[0]):
                    best = (value, rid, trial_key)
            if best is not None:
                refit_tags = {**identity, "code.stage": stages["refit"],
                              "code.study_key_hash": study, "code.trial_key_hash": best[2],
                              "code.refit.of_trial_run_id": best[1],
                              "code.artifact.available": "true", **schema}
                if pipeline:
                    refit_tags.update({"code.run_type": "refit", "mlflow.runType": "refit",
                                       "mlflow.parentRunId": sweep})
                add_run(short, "refit", "FINISHED", refit_tags, {}, {})
            group_index += 1

    connection = sqlite3.connect(args.out_db)
    with connection:
        connection.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
            " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
            " experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", runs)
        connection.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        connection.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        connection.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, ?, ?)", metrics)
        connection.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(key, value, ts, step, is_nan, rid) for key, value, ts, rid, step, is_nan in metrics])
    connection.close()
    trials = sum(per_backbone)
    print(f"{args.out_db}: {len(runs)} runs ({trials} trials) in {time.time() - started:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
