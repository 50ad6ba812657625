#!/usr/bin/env python3
"""Build MLflow stores and outputs/ trees the way the Python NER pipeline writes them.

Usage:
    gen-pipeline-store.py --tracking-uri sqlite:///DIR/mlflow.db --root DIR --store NAME
                          [--config-dir DIR] [--checkpoint DIR] [--manifest FILE]
    gen-pipeline-store.py --tracking-uri http://127.0.0.1:PORT ...   (a running `mlflow server`)

With one --store the experiment name is "resume_ner_baseline" (--experiment-name changes it);
with several, each store's experiment name is the store's name (":" becomes "-") and its config
folder is `<config-dir>/<that name>`, so one call fills one database with many stores.

Writes, with real mlflow (MlflowClient), per backbone: an experiment
`{experiment_name}-hpo-{backbone}` (the backbone as written, never shortened), sweep (parent)
runs, their trial runs, CV fold runs and refit runs, each with the tag set the pipeline's code
writes for that kind of run (see TAG SETS below), metrics with NaN / missing / tied values,
FAILED runs, and refits whose checkpoint is a real `.tar.gz` archive logged as the artifact
`best_trial_checkpoint.tar.gz/<file>.tar.gz` (members under `best_trial_checkpoint/`, with a
`best_trial_checkpoint_manifest.json` beside it). Legacy sweeps tag their runs with an explicit
study-key schema "1.0" (a missing tag means "2.0"). Under --root it writes the study tree
`outputs/hpo/local/{model}/study-{s8}/trial-{t8}/trial_meta.json`, and under --config-dir a
pipeline-style config folder (experiment/<name>.yaml, the data and train configs it names,
hpo/prod.yaml naming the backbones, best_model_selection.yaml).

The manifest (JSON, --manifest or stdout) lists every run by name with its id, the
experiment of each backbone and the backbones in config order.

TAG SETS (module paths under the pipeline's src/):
- every kind but fold runs: `infrastructure/naming/mlflow/tags.py::build_mlflow_tags` — stage
  (the context's process type), `code.model`, `code.storage_env`, `code.env`,
  `code.execution_platform`, `code.created_by`, `code.project`, `code.output_dir`,
  `code.grouping_schema_version` "1", the study/family/trial key hashes it is given, and
  `code.run_key_hash`.
- sweep: context from `training/hpo/tracking/setup.py` (process type "hpo", model = the backbone
  as written); `mlflow.runType`/`azureml.runType`/`azureml.sweep` from
  `infrastructure/tracking/mlflow/trackers/sweep_tracker/metrics.py`; schema "2.0", both
  fingerprints and `code.objective.direction` from `training/hpo/execution/local/sweep_original.py`,
  which also sets `code.artifact.available` "false" at start and "true" once the checkpoint is
  logged, `code.refit_run_id`, `code.refit_completed`, and `interrupted=true` on a FAILED sweep;
  `best_trial_run_id`/`best_trial_number` from `…/sweep_tracker/trial_finder.py`;
  `code.refit_planned` from `sweep_original.py`. No parent, no `code.backbone`.
- trial: `training/hpo/execution/local/cv.py` (with CV) or `training/hpo/tracking/runs.py`
  (without): stage "hpo", `code.model` = the short name, `mlflow.parentRunId`,
  `azureml.runType` "trial", `azureml.trial` "true", `trial_number`, `code.hpo.trial_number`,
  `mlflow.runName`. Without CV no `code.trial_key_hash` and no run key hash. No schema tag.
- fold: `training/hpo/execution/local/cv.py`: only `mlflow.parentRunId` (the trial),
  `trial_number`, `fold_idx`, `mlflow.runName`.
- refit: `training/hpo/execution/local/refit.py`: stage "hpo_refit", `code.run_type` "refit",
  `code.parent_run_id`, `code.refit_protocol_fp`, `mlflow.runType` "refit", `mlflow.runName`,
  schema/fingerprints/direction copied from the sweep, `mlflow.parentRunId` (the sweep),
  `azureml.runType` "refit", `code.refit.of_trial_run_id`, `code.refit` "true",
  `code.refit_has_validation` "false"; `sweep_original.py` adds `code.refit_training_done`,
  `code.refit_artifacts_uploaded` (and `code.refit_error` when the upload failed: FAILED run).
"""

import argparse
import hashlib
import io
import json
import math
import os
import random
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

EXPERIMENT_NAME = "resume_ner_baseline"
PROJECT = "resume-ner"
ENV = "local"
BASE_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
METRIC = "macro-f1"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def short(backbone):
    return backbone.split("-")[0]


# --------------------------------------------------------------------------------------------
# Named stores. A sweep: backbone, schema ("2.0" tagged on sweep/refit only, as the pipeline
# does; "1.0" explicit on every run: legacy), artifact tag on the sweep ("true"/"false"/None),
# cv (trials carry trial_key_hash), trials (metric, "nan", None = never logged, "failed"),
# refit: "best" (Optuna's best_trial: the first to reach the best value), an index, None,
# "failed" (FAILED refit, upload error), "running" (left RUNNING).
def sweep(backbone, trials, schema="2.0", artifact="true", cv=True, refit="best", study=None,
          refit_artifact=True, interrupted=False):
    return dict(backbone=backbone, trials=trials, schema=schema, artifact=artifact, cv=cv,
                refit=refit, study=study, refit_artifact=refit_artifact, interrupted=interrupted)


STORES = {
    # Two backbones, one with `-` in its name; NaN, missing and FAILED trials.
    "basic": [
        sweep("distilbert", [0.81, 0.84, "nan", 0.83, None, "failed"]),
        sweep("deberta-v3-small", [0.78, 0.86, 0.85, 0.80]),
    ],
    # distilbert: two trials tie on the best metric (the earlier is refitted); deberta: two
    # groups tie on stable score (the group whose newest trial started last wins).
    "ties": [
        sweep("distilbert", [0.80, 0.88, 0.85, 0.88]),
        sweep("deberta", [0.70, 0.75, 0.72], study="g1"),
        sweep("deberta", [0.72, 0.70, 0.75], study="g2"),
    ],
    # A legacy v1 group (explicit "1.0") with the best metrics next to a v2 group; and a
    # backbone with only a legacy group (no answer under prefer_schema_version auto).
    "legacy": [
        sweep("distilbert", [0.95, 0.94, 0.93], schema="1.0", refit=None, cv=False),
        sweep("distilbert", [0.80, 0.82, 0.81]),
        sweep("distilroberta", [0.90, 0.91, 0.92], schema="1.0", refit=None, cv=False),
    ],
    # The better sweep's artifact tag is "false": its trials are dropped; a legacy sweep
    # without schema tag and artifact "false" is kept (leniency).
    "artifact-false": [
        sweep("distilbert", [0.95, 0.96, 0.97], artifact="false"),
        sweep("distilbert", [0.80, 0.82, 0.81]),
        sweep("deberta", [0.85, 0.86, 0.84], artifact="false", schema=None, cv=False),
    ],
    # distilbert has no refit (an error for it alone); deberta's refit FAILED on upload and is
    # still its answer; distilroberta's trials have no CV (no trial_key_hash: link tag).
    "missing-refit": [
        sweep("distilbert", [0.80, 0.82, 0.81], refit=None),
        sweep("deberta", [0.85, 0.86, 0.84], refit="failed", refit_artifact=False),
        sweep("distilroberta", [0.70, 0.71, 0.72], cv=False),
    ],
    # NaN everywhere but two trials: below min_trials_per_group.
    "nan": [
        sweep("distilbert", ["nan", 0.80, "nan", None, 0.81], refit=None),
        sweep("deberta", [0.70, "nan", 0.73, 0.71, "failed", 0.74]),
    ],
}


def random_store(seed):
    rng = random.Random(seed)
    backbones = ["distilbert", "deberta-v3-small", "distilroberta"]
    sweeps = []
    for backbone in backbones[: rng.randint(1, 3)]:
        for group in range(rng.randint(1, 3)):
            n = rng.randint(1, 6)
            values = []
            for _ in range(n):
                r = rng.random()
                if r < 0.1:
                    values.append("nan")
                elif r < 0.15:
                    values.append(None)
                elif r < 0.2:
                    values.append("failed")
                else:
                    values.append(rng.choice([0.7, 0.75, 0.8, 0.85, round(rng.random(), 3)]))
            sweeps.append(sweep(
                backbone, values,
                schema=rng.choice(["2.0", "2.0", "2.0", "1.0", None]),
                artifact=rng.choice(["true", "true", "false", None, "TRUE"]),
                cv=rng.random() < 0.8,
                refit=rng.choice(["best", "best", "best", None, "failed", "running"]),
                study=f"r{seed}-{backbone}-{group}",
            ))
    return sweeps


# --------------------------------------------------------------------------------------------
def base_tags(stage, model, output_dir, study=None, family=None, trial=None, run_key=None):
    """`build_mlflow_tags` (infrastructure/naming/mlflow/tags.py)."""
    tags = {
        "code.stage": stage,
        "code.model": model,
        "code.storage_env": ENV,
        "code.env": ENV,
        "code.execution_platform": ENV,
        "code.created_by": os.environ.get("USER", "system"),
        "code.project": PROJECT,
        "code.output_dir": str(output_dir),
    }
    if study or family or trial:
        tags["code.grouping_schema_version"] = "1"
    if study:
        tags["code.study_key_hash"] = study
    if family:
        tags["code.study_family_hash"] = family
    if trial:
        tags["code.trial_key_hash"] = trial
    if run_key:
        tags["code.run_key_hash"] = run_key
    return tags


def make_checkpoint_dir(dst, source, label):
    if source:
        shutil.copytree(source, dst)
    else:
        dst.mkdir(parents=True)
        (dst / "config.json").write_text(json.dumps({"model_type": "bert", "label": label}))
        (dst / "model.safetensors").write_bytes(b"placeholder weights of " + label.encode())


def archive_checkpoint(checkpoint_dir, trial_number, scratch):
    """`create_checkpoint_archive` (infrastructure/tracking/mlflow/artifacts/manager.py)."""
    fd, path = tempfile.mkstemp(suffix=".tar.gz", prefix="checkpoint_", dir=scratch)
    os.close(fd)
    manifest = {"trial_number": trial_number, "archive_format": "tar.gz",
                "extracted_path": "best_trial_checkpoint", "files": [], "total_size": 0,
                "created_at": "2026-01-01 00:00:00"}
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(checkpoint_dir.rglob("*")):
            if file.is_file():
                rel = file.relative_to(checkpoint_dir)
                tar.add(file, arcname=f"best_trial_checkpoint/{rel}", recursive=False)
                manifest["files"].append({"path": str(rel), "size": file.stat().st_size})
                manifest["total_size"] += file.stat().st_size
    manifest["file_count"] = len(manifest["files"])
    return Path(path), manifest


class Writer:
    def __init__(self, client, root, checkpoint_source, artifact_root, experiment_name):
        self.experiment_name = experiment_name
        self.client = client
        self.root = root
        self.checkpoint_source = checkpoint_source
        self.artifact_root = artifact_root
        self.clock = BASE_TIME_MS
        self.manifest = {"runs": {}, "experiments": {}}
        self.scratch = Path(tempfile.mkdtemp(prefix="gen-pipeline-store-"))
        self.experiments = {}

    def tick(self, minutes=1):
        self.clock += minutes * 60_000
        return self.clock

    def experiment(self, backbone):
        name = f"{self.experiment_name}-hpo-{backbone}"
        if name not in self.experiments:
            existing = self.client.get_experiment_by_name(name)
            if existing:
                self.experiments[name] = existing.experiment_id
            else:
                location = None
                if self.artifact_root:
                    location = (self.artifact_root / name).resolve().as_uri()
                self.experiments[name] = self.client.create_experiment(
                    name, artifact_location=location)
            self.manifest["experiments"][backbone] = name
        return self.experiments[name]

    def run(self, experiment_id, name, tags, start):
        tags = dict(tags)
        tags["mlflow.runName"] = name
        run = self.client.create_run(experiment_id, start_time=start, tags=tags, run_name=name)
        self.manifest["runs"][name] = run.info.run_id
        return run.info.run_id

    def log(self, run_id, metrics=(), params=(), tags=()):
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, self.clock, 0) for k, v in metrics],
            params=[Param(k, str(v)) for k, v in params],
            tags=[RunTag(k, v) for k, v in tags],
        )

    def write_sweep(self, index, spec):
        backbone, model = spec["backbone"], short(spec["backbone"])
        exp = self.experiment(backbone)
        label = f'{self.experiment_name}:{spec["study"] or f"{backbone}-{index}"}'
        study = sha(f"study:{label}")
        family = sha(f"family:{backbone}")
        legacy = spec["schema"] == "1.0"
        schema_tags = {} if spec["schema"] is None else {"code.study.key_schema_version": spec["schema"]}
        study_dir = self.root / "outputs" / "hpo" / ENV / model / f"study-{study[:8]}"
        study_dir.mkdir(parents=True, exist_ok=True)
        prefix = f"{model}-{index}"

        sweep_tags = base_tags("hpo", backbone, study_dir, study=study, family=family,
                               run_key=sha(f"run:{label}"))
        sweep_tags.update({"mlflow.runType": "sweep", "azureml.runType": "sweep",
                           "azureml.sweep": "true", "code.objective.direction": "maximize",
                           "code.fingerprint.data": sha("data"), "code.fingerprint.eval": sha("eval"),
                           "code.refit_planned": "true" if spec["refit"] else "false"})
        sweep_tags.update(schema_tags)
        if spec["artifact"] is not None:
            sweep_tags["code.artifact.available"] = "false"
        sweep_start = self.tick(5)
        sweep_id = self.run(exp, f"{prefix}-sweep", sweep_tags, sweep_start)

        trials = []
        for number, value in enumerate(spec["trials"]):
            params = {"learning_rate": round(1e-5 * (number + 1), 8), "batch_size": 16}
            trial_key = sha(f"trial:{study}:{json.dumps(params, sort_keys=True)}") if spec["cv"] else None
            trial_dir = study_dir / f"trial-{(trial_key or sha(str(number)))[:8]}"
            tags = base_tags("hpo", model, trial_dir, study=study, family=family, trial=trial_key,
                             run_key=sha(f"run:{label}:{number}") if spec["cv"] else None)
            tags.update({"mlflow.parentRunId": sweep_id, "azureml.runType": "trial",
                         "azureml.trial": "true", "trial_number": str(number),
                         "code.hpo.trial_number": str(number)})
            if legacy:
                tags.update(schema_tags)
            start = self.tick(10)
            name = f"{prefix}-trial-{number}"
            run_id = self.run(exp, name, tags, start)
            if value == "failed":
                self.client.set_terminated(run_id, "FAILED", end_time=self.tick())
                trials.append((run_id, number, None, False, trial_key, trial_dir))
                continue
            metrics = []
            if value == "nan":
                metrics.append((METRIC, float("nan")))
            elif value is not None:
                metrics.append((METRIC, float(value)))
            metrics.append(("cv_std", 0.01))
            self.log(run_id, metrics=metrics, params=params.items())
            if spec["cv"]:
                for fold in range(2):
                    fold_id = self.run(exp, f"{name}-fold{fold}",
                                       {"mlflow.parentRunId": run_id, "trial_number": str(number),
                                        "fold_idx": str(fold)}, self.tick())
                    self.client.set_terminated(fold_id, "FINISHED", end_time=self.tick())
            self.client.set_terminated(run_id, "FINISHED", end_time=self.tick())
            trial_dir.mkdir(parents=True, exist_ok=True)
            (trial_dir / "trial_meta.json").write_text(json.dumps({
                "study_key_hash": study, "trial_key_hash": trial_key, "trial_number": number,
                # The pipeline writes the study folder's name here (sweep_original.py, cv.py).
                "study_name": trial_dir.parent.name, "run_id": run_id,
                "created_at": "2026-01-01T00:00:00",
            }, indent=2))
            finite = isinstance(value, float) and math.isfinite(value)
            trials.append((run_id, number, value if finite else None, True, trial_key, trial_dir))

        finite = [t for t in trials if t[2] is not None]
        best = None
        if finite:
            best_value = max(t[2] for t in finite)
            best = next(t for t in finite if t[2] == best_value)  # Optuna: the first to reach it
        refit_target = None
        if spec["refit"] in ("best", "failed", "running") and best:
            refit_target = best
        elif isinstance(spec["refit"], int):
            refit_target = trials[spec["refit"]]
        sweep_end_tags = []
        if best:
            sweep_end_tags += [("best_trial_run_id", best[0]), ("best_trial_number", str(best[1]))]
        if refit_target:
            run_id, number, _, _, trial_key, trial_dir = refit_target
            refit_dir = trial_dir / "refit"
            tags = base_tags("hpo_refit", model, refit_dir, study=study, family=family,
                             trial=trial_key, run_key=sha(f"refit:{label}"))
            tags["code.run_type"] = "refit"
            tags["code.parent_run_id"] = sweep_id
            tags["code.refit_protocol_fp"] = sha("refit-protocol")
            tags.update({"mlflow.runType": "refit", "mlflow.parentRunId": sweep_id,
                         "azureml.runType": "refit"})
            for key in ("code.study.key_schema_version", "code.fingerprint.data",
                        "code.fingerprint.eval", "code.objective.direction"):
                if key in sweep_tags:
                    tags[key] = sweep_tags[key]
            refit_name = f"{prefix}-refit-{number}"
            refit_id = self.run(exp, refit_name, tags, self.tick(10))
            self.log(refit_id, metrics=[(METRIC, 0.9)], tags=[
                ("code.refit.of_trial_run_id", run_id), ("code.refit", "true"),
                ("code.refit_has_validation", "false"), ("code.refit_training_done", "true")])
            if spec["refit_artifact"]:
                checkpoint = self.scratch / f"ckpt-{refit_name}"
                make_checkpoint_dir(checkpoint, self.checkpoint_source, refit_name)
                archive, manifest = archive_checkpoint(checkpoint, number, self.scratch)
                self.client.log_artifact(refit_id, str(archive), "best_trial_checkpoint.tar.gz")
                manifest_file = self.scratch / "best_trial_checkpoint_manifest.json"
                manifest_file.write_text(json.dumps(manifest, indent=2))
                self.client.log_artifact(refit_id, str(manifest_file))
                self.client.set_tag(refit_id, "code.artifact.available", "true")
            status = {"failed": "FAILED", "running": None}.get(spec["refit"], "FINISHED")
            if status == "FAILED":
                self.log(refit_id, tags=[("code.refit_artifacts_uploaded", "false"),
                                         ("code.refit_error", "upload failed: connection reset")])
            else:
                self.log(refit_id, tags=[("code.refit_artifacts_uploaded", "true")])
            if status:
                self.client.set_terminated(refit_id, status, end_time=self.tick())
            sweep_end_tags += [("code.refit_run_id", refit_id), ("code.refit_completed", "true")]
        if spec["artifact"] is not None:
            sweep_end_tags.append(("code.artifact.available", spec["artifact"]))
        if spec["interrupted"]:
            sweep_end_tags.append(("interrupted", "true"))
        self.log(sweep_id, params=[("n_trials", len(trials))], tags=sweep_end_tags)
        self.client.set_terminated(sweep_id, "FAILED" if spec["interrupted"] else "FINISHED",
                                   end_time=self.tick())
        return dict(backbone=backbone, study=study, legacy=spec["schema"] not in (None, "2.0"),
                    trials=trials, refit_for=refit_target[0] if refit_target else None)


def write_config(config_dir, backbones, experiment_name):
    """A pipeline-style config folder naming these backbones."""
    for folder in ("experiment", "hpo", "data"):
        (config_dir / folder).mkdir(parents=True, exist_ok=True)
    (config_dir / "experiment" / f"{experiment_name}.yaml").write_text(
        f'experiment_name: "{experiment_name}"\n'
        'data_config: "data/resume_tiny.yaml"\nmodel_config: "model/distilbert.yaml"\n'
        'train_config: "train.yaml"\nhpo_config: "hpo/prod.yaml"\nenv_config: "env/local.yaml"\n'
        'benchmark_config: "benchmark.yaml"\n')
    # The data and train configs the experiment names, shaped like the pipeline's (the data
    # config feeds the data fingerprint of champions without fingerprint tags; the pipeline's
    # train file nests its settings under `training:`).
    (config_dir / "data" / "resume_tiny.yaml").write_text(
        'name: "resume-ner-data-tiny"\nversion: "v3"\nlocal_path: "../dataset_tiny"\nseed: 0\n'
        'schema:\n  format: "json"\n  annotation_format: "character_spans"\n'
        '  entity_types: ["SKILL", "EDUCATION", "NAME"]\n')
    (config_dir / "train.yaml").write_text(
        'training:\n  epochs: 1\n  batch_size: 1\n  learning_rate: 2e-5\n  metric: "macro-f1"\n')
    values = ", ".join(f'"{b}"' for b in backbones)
    (config_dir / "hpo" / "prod.yaml").write_text(
        f'search_space:\n  backbone:\n    type: "choice"\n    values: [{values}]\n'
        'checkpoint:\n  study_name: "hpo_{backbone}"\n  storage_path: "{study_name}/study.db"\n')
    (config_dir / "best_model_selection.yaml").write_text(
        'objective:\n  metric: "macro-f1"\n  direction: "maximize"\n'
        'champion_selection:\n  min_trials_per_group: 3\n  top_k_for_stable_score: 3\n'
        '  require_artifact_available: true\n  artifact_check_source: "tag"\n'
        '  prefer_schema_version: "auto"\n  allow_mixed_schema_groups: false\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--root", required=True, type=Path, help="project root (outputs/ goes here)")
    parser.add_argument("--store", required=True, action="append",
                        help=f"one of {sorted(STORES)} or random:SEED (repeatable)")
    parser.add_argument("--experiment-name", help="experiment_name of a single store")
    parser.add_argument("--config-dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="checkpoint directory to archive for refits")
    parser.add_argument("--artifact-root", type=Path,
                        help="artifact root of new experiments (file store; default: the store's)")
    parser.add_argument("--manifest", type=Path)
    args = parser.parse_args()

    client = MlflowClient(tracking_uri=args.tracking_uri)
    manifests = {}
    for store in args.store:
        if store.startswith("random:"):
            sweeps = random_store(int(store.split(":", 1)[1]))
        else:
            sweeps = STORES[store]
        single = len(args.store) == 1
        name = (args.experiment_name or EXPERIMENT_NAME) if single else store.replace(":", "-")
        writer = Writer(client, args.root, args.checkpoint, args.artifact_root, name)
        for index, spec in enumerate(sweeps):
            writer.write_sweep(index, spec)
        backbones = list(dict.fromkeys(s["backbone"] for s in sweeps))
        if args.config_dir:
            write_config(args.config_dir if single else args.config_dir / name, backbones, name)
        writer.manifest["backbones"] = backbones
        writer.manifest["experiment_name"] = name
        shutil.rmtree(writer.scratch, ignore_errors=True)
        manifests[store] = writer.manifest
    result = manifests[args.store[0]] if len(args.store) == 1 else manifests
    text = json.dumps(result, indent=2, sort_keys=True)
    if args.manifest:
        args.manifest.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
