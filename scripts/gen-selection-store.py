"""Generates a large MLflow SQLite store of HPO runs for the `podium select` speed comparison.

Usage: python scripts/gen-selection-store.py OUT_DB [--config-dir config] [--experiment NAME]
                                              [--trials 100000] [--group-size 50] [--seed 7]

The experiments are created by Python `mlflow` itself (so the schema, alembic stamp and artifact
locations are exactly MLflow's); the runs are then bulk-inserted with SQL in one transaction, the
way MLflow's SQLAlchemy store lays them out (runs, tags, params, metrics, latest_metrics), so the
file is read back by `MlflowClient.search_runs` and by podium alike. Rows are written every
20,000 runs, so a million-run store is generated in bounded memory.

The project is read as podium reads it (scripts/select_python.py `load_project`): per backbone of
the HPO config of record, experiment `{experiment_name}-hpo-{backbone}` (the backbone as
written). Runs carry the tags the Python pipeline writes (src/infrastructure/naming/mlflow/tags.py
`build_mlflow_tags`, src/training/hpo/tracking/runs.py and execution/local/cv.py for trials,
execution/local/refit.py for refits; scripts/gen-pipeline-store.py describes them in full):
- sweep: `code.stage = hpo`, `code.model` = the backbone as written, schema "2.0" (legacy groups:
  "1.0"), both fingerprints, `code.objective.direction`, `code.artifact.available` ("false" on
  about 3 % of the sweeps: an interrupted upload, so their trials lose), no parent;
- trials: `code.stage = hpo`, `code.model` = the short name (text before the first '-'),
  `mlflow.parentRunId` = the sweep, `code.trial_key_hash`, `trial_number`,
  `azureml.runType = trial`; no schema tag (legacy groups: "1.0"), no artifact tag;
- refit of each group's best trial: `code.stage = hpo_refit`, `code.run_type = refit`, the
  trial's `code.trial_key_hash`, `code.refit.of_trial_run_id`, parented to the sweep.
Study groups of GROUP_SIZE trials; about 10 % of the groups are legacy, 1 % of the trials have a
NaN metric, 0.5 % are FAILED. Deterministic for a given seed.
"""

import argparse
import os
import random
import sqlite3
import sys
import time
import uuid

from mlflow.tracking import MlflowClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from select_python import hpo_experiment_name, load_project, short_name  # noqa: E402

METRIC = "macro-f1"


def run_id(rng):
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_db")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--experiment")
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--group-size", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    experiment_name, backbones, _ = load_project(args.config_dir, args.experiment)
    backbones = list(dict.fromkeys(backbones))
    if not backbones:
        sys.exit(f"{args.config_dir}: the HPO config of record names no backbone")

    if os.path.exists(args.out_db):
        sys.exit(f"{args.out_db} exists; remove it first")
    started = time.time()
    uri = f"sqlite:///{os.path.abspath(args.out_db)}"
    client = MlflowClient(uri)
    experiments = {}
    for backbone in backbones:
        experiment_id = client.create_experiment(hpo_experiment_name(experiment_name, backbone))
        experiments[backbone] = (experiment_id,
                                 client.get_experiment(experiment_id).artifact_location)

    rng = random.Random(args.seed)
    runs, tags, params, metrics = [], [], [], []
    connection = sqlite3.connect(args.out_db)
    connection.execute("BEGIN")
    written = [0]

    def flush():
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
        written[0] += len(runs)
        for rows in (runs, tags, params, metrics):
            rows.clear()
    base_time = 1_700_000_000_000
    clock = [base_time]

    def add_run(backbone, name, status, run_tags, run_params, run_metrics):
        experiment_id, artifact_location = experiments[backbone]
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

    per_backbone = [args.trials // len(backbones)] * len(backbones)
    for index in range(args.trials % len(backbones)):
        per_backbone[index] += 1
    for backbone, count in zip(backbones, per_backbone):
        short = short_name(backbone)
        common = {"code.env": "local", "code.storage_env": "local",
                  "code.execution_platform": "local", "code.created_by": "podium",
                  "code.project": "resume-ner", "code.grouping_schema_version": "1"}
        group_index = 0
        while count > 0:
            size = min(args.group_size, count)
            count -= size
            legacy = rng.random() < 0.10
            schema = {"code.study.key_schema_version": "1.0" if legacy else "2.0"}
            trial_schema = {"code.study.key_schema_version": "1.0"} if legacy else {}
            study = f"{rng.getrandbits(256):064x}"
            quality = rng.uniform(0.55, 0.85)
            uploaded = "false" if rng.random() < 0.03 else "true"
            sweep = add_run(backbone, f"hpo_{short}_{group_index}", "FINISHED",
                            {**common, "code.model": backbone, "code.stage": "hpo",
                             "code.study_key_hash": study, "code.fingerprint.data": "data-fp",
                             "code.fingerprint.eval": "eval-fp",
                             "code.objective.direction": "maximize",
                             "mlflow.runType": "sweep", "azureml.runType": "sweep",
                             "azureml.sweep": "true",
                             "code.artifact.available": uploaded, **schema}, {}, {})
            best = None
            for trial_number in range(size):
                trial_key = f"{rng.getrandbits(256):064x}"
                value = min(0.999, max(0.0, rng.gauss(quality, 0.04)))
                value = round(value, 6)
                if rng.random() < 0.01:
                    value = float("nan")
                status = "FAILED" if rng.random() < 0.005 else "FINISHED"
                trial_tags = {
                    **common, "code.model": short, "code.stage": "hpo",
                    "code.study_key_hash": study, "code.trial_key_hash": trial_key,
                    "code.hpo.trial_number": str(trial_number), "mlflow.parentRunId": sweep,
                    "azureml.runType": "trial", "azureml.trial": "true",
                    "trial_number": str(trial_number), **trial_schema,
                }
                trial_params = {
                    "learning_rate": f"{rng.choice([1e-5, 2e-5, 3e-5, 5e-5])}",
                    "batch_size": str(rng.choice([8, 16, 32])),
                    "weight_decay": f"{rng.uniform(0, 0.1):.4f}",
                }
                rid = add_run(backbone, f"trial_{trial_number}", status, trial_tags,
                              trial_params,
                              {METRIC: value, "loss": round(rng.uniform(0.1, 1.0), 6)})
                if status == "FINISHED" and value == value and (best is None or value > best[0]):
                    best = (value, rid, trial_key)
            if best is not None:
                refit_tags = {**common, "code.model": short, "code.stage": "hpo_refit",
                              "code.run_type": "refit", "mlflow.runType": "refit",
                              "azureml.runType": "refit", "code.refit": "true",
                              "code.study_key_hash": study, "code.trial_key_hash": best[2],
                              "code.refit.of_trial_run_id": best[1],
                              "code.parent_run_id": sweep, "mlflow.parentRunId": sweep,
                              "code.artifact.available": "true", **schema}
                add_run(backbone, "refit", "FINISHED", refit_tags, {}, {})
            group_index += 1
            if len(runs) >= 20_000:
                flush()

    flush()
    connection.commit()
    connection.close()
    trials = sum(per_backbone)
    print(f"{args.out_db}: {written[0]} runs ({trials} trials) in {time.time() - started:.1f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
