"""Champion selection with the Python MLflow client, for the `podium select` speed comparison.

Usage: python scripts/select_python.py TRACKING_URI [--config-dir config] [--page-size 1000]

Runs the champion-selection steps as the Python pipeline does, but with podium's fixes (every page read,
deterministic tie-breaks, refit resolution that fails loudly): `MlflowClient.search_runs` with
the same server-side filter, paging with `page_token` to the end. Supports what the comparison
store needs (artifact check by tag, checkpoint_source refit|trial). Prints
`{"champions": {backbone: {...}}, "errors": {backbone: message}}` like
`podium select --format json` (a subset of the fields), and the timing on stderr.
"""

import argparse
import json
import math
import os
import sys
import time

import yaml
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient


def load_config(config_dir):
    with open(os.path.join(config_dir, "experiment.yaml")) as handle:
        experiment = yaml.safe_load(handle)
    path = os.path.join(config_dir, "best_model_selection.yaml")
    selection = {}
    if os.path.exists(path):
        with open(path) as handle:
            selection = yaml.safe_load(handle) or {}
    return experiment, selection


def search_all(client, experiment_id, filter_string, page_size):
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=filter_string, run_view_type=ViewType.ACTIVE_ONLY,
            max_results=page_size, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def quote(value):
    return f"'{value}'" if "'" not in value else f'"{value}"'


def countable(value):
    return value is not None and math.isfinite(value) and abs(value) < sys.float_info.max


def select(client, backbone, experiment_name, selection, page_size):
    objective = selection.get("objective", {}) or {}
    metric = objective.get("metric", "macro-f1")
    direction = objective.get("direction") or objective.get("goal") or "maximize"
    maximize = direction.lower() in ("max", "maximize")
    rules = selection.get("champion_selection", {}) or {}
    min_trials = rules.get("min_trials_per_group", 3)
    top_k = min(rules.get("top_k_for_stable_score", 3), min_trials)
    require_artifact = rules.get("require_artifact_available", True)
    prefer = str(rules.get("prefer_schema_version", "2.0"))
    mixed = rules.get("allow_mixed_schema_groups", False)
    source = rules.get("checkpoint_source", "refit")
    short = backbone.split("-")[0]

    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise LookupError(f"HPO experiment `{experiment_name}` not found")
    filter_string = (f"tags.`code.stage` = 'hpo_trial' AND tags.`code.backbone` = {quote(short)}"
                     " AND attributes.status = 'FINISHED'")
    candidates = search_all(client, experiment.experiment_id, filter_string, page_size)
    if not candidates:
        raise LookupError("no FINISHED hpo_trial runs")

    def artifact_ok(run):
        return run.data.tags.get("code.artifact.available", "").strip().lower() == "true"

    def better_key(value):
        return -value if maximize else value

    groups = {}
    for run in candidates:
        if source == "trial" and require_artifact and not artifact_ok(run):
            continue
        study = run.data.tags.get("code.study_key_hash", "").strip()
        if not study:
            continue
        schema = run.data.tags.get("code.study.key_schema_version", "1.0")
        if schema not in ("1.0", "2.0"):
            continue
        groups.setdefault((schema, study), []).append(run)
    has_v2 = any(schema == "2.0" for schema, _ in groups)
    used = "mixed" if mixed else ("2.0" if prefer == "2.0" or (prefer == "auto" and has_v2)
                                  else "1.0")
    eligible = []
    for (schema, study), runs in groups.items():
        if used != "mixed" and schema != used:
            continue
        valid = [(run, run.data.metrics.get(metric)) for run in runs]
        valid = [(run, value) for run, value in valid if countable(value)]
        if not valid or len(valid) < min_trials:
            continue
        valid.sort(key=lambda item: (better_key(item[1]), item[0].info.start_time or sys.maxsize,
                                     item[0].info.run_id))
        best = [value for _, value in valid[:min(top_k, len(valid))]]
        k = len(best)
        stable = best[k // 2] if k % 2 else best[k // 2 - 1] / 2 + best[k // 2] / 2
        eligible.append((better_key(stable), -len(valid), study, schema, stable, valid))
    if not eligible:
        raise LookupError(f"no eligible schema {used} group")
    eligible.sort(key=lambda item: item[:4])
    _, _, study, schema, stable, valid = eligible[0]
    trial, value = valid[0]
    answer = {"trial_run_id": trial.info.run_id, "run_id": trial.info.run_id,
              "refit_run_id": None, "study_key_hash": study, "metric": value,
              "stable_score": stable, "schema_version": schema}
    if source == "refit":
        base = "tags.`code.stage` = 'hpo_refit' AND attributes.status = 'FINISHED'"
        refits = search_all(
            client, experiment.experiment_id,
            f"{base} AND tags.`code.refit.of_trial_run_id` = '{trial.info.run_id}'", page_size)
        trial_key = trial.data.tags.get("code.trial_key_hash")
        if not refits and trial_key:
            refits = search_all(
                client, experiment.experiment_id,
                f"{base} AND tags.`code.study_key_hash` = {quote(study)}"
                f" AND tags.`code.trial_key_hash` = {quote(trial_key)}", page_size)
        if not refits:
            raise LookupError(f"champion trial run {trial.info.run_id} has no refit run")
        refit = max(refits, key=lambda run: (run.info.start_time or -1, run.info.run_id))
        if require_artifact and not artifact_ok(refit):
            raise LookupError(f"refit run {refit.info.run_id} of champion trial run "
                              f"{trial.info.run_id} has no available checkpoint")
        answer["run_id"] = answer["refit_run_id"] = refit.info.run_id
    return answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracking_uri")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    started = time.time()
    experiment, selection = load_config(args.config_dir)
    client = MlflowClient(args.tracking_uri)
    report = {"champions": {}, "errors": {}}
    for backbone in experiment["backbones"]:
        name = experiment.get("hpo_experiment", "{name}-hpo-{backbone}").replace(
            "{name}", experiment["name"]).replace("{backbone}", backbone.split("-")[0])
        try:
            report["champions"][backbone] = select(client, backbone, name, selection,
                                                   args.page_size)
        except LookupError as err:
            report["errors"][backbone] = f"{backbone}: {err}"
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"python selection: {time.time() - started:.2f} s", file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
