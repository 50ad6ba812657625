"""Champion selection with the Python MLflow client, for the `podium select` speed comparison.

Usage: python scripts/select_python.py TRACKING_URI [--config-dir config] [--experiment NAME]
                                        [--page-size 1000]

Reads the project the way podium does (config/experiment/<name>.yaml: experiment_name and the
HPO config of record, stages.hpo.hpo_config else hpo_config, whose search_space.backbone.values
are the backbones; config/best_model_selection.yaml; HPO experiments
`{experiment_name}-hpo-{backbone}`, the backbone as written) and runs the champion-selection
rules podium applies to runs tagged the way the Python pipeline tags them, with
`MlflowClient.search_runs` and the same server-side filters, every page read:

1. Candidates: the FINISHED active runs of the first non-empty query of: `code.stage` =
   `hpo_trial` with `code.backbone` = the short backbone (the text before the first '-'),
   `hpo_trial`, `hpo` with `code.backbone`, `hpo` (the pipeline's fallback order, on its
   backbone tag; its trials carry stage `hpo`, shared with their sweep, and `code.model` rather
   than `code.backbone`, so the last query finds them). Only runs with `mlflow.parentRunId`
   (trials) stay.
2. require_artifact_available (tag check): the trial's parent sweep decides when it carries
   `code.artifact.available`, else the trial's own tag; "true" in any case keeps, any other
   value drops unless that run has no `code.study.key_schema_version` (legacy: kept); no tag on
   either keeps the trial.
3. A run's schema is "2.0" when its schema tag is "2.0" or missing, else "1.0"; groups are
   (schema, `code.study_key_hash`), one per hash with allow_mixed_schema_groups. `auto`/`2.0`
   use v2 groups, `1.0` v1 groups.
4. Valid trials have a finite metric (not NaN, not +-inf, not the +-f64::MAX sentinels); groups
   with fewer than min_trials_per_group drop. Stable score: the median of the best K (K clamped
   to min_trials_per_group). Ties: the group whose newest candidate (latest start, then the
   smaller run id) comes first, then the study hash; within the group the earliest-started trial
   among those tied on the best value (then the smaller run id).
5. checkpoint_source refit: runs with stage `hpo_refit` and the champion's `code.trial_key_hash`
   (any status), else runs whose `code.refit.of_trial_run_id` names it; the latest start wins.

Prints `{"champions": {backbone: {...}}, "errors": {backbone: message}}` (a subset of
`podium select --format json`'s fields, flat) and the timing on stderr. Exit 1 when a backbone
has no champion.
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

PARENT = "mlflow.parentRunId"
STAGE = "code.stage"
BACKBONE = "code.backbone"
STUDY = "code.study_key_hash"
SCHEMA = "code.study.key_schema_version"
TRIAL_KEY = "code.trial_key_hash"
AVAILABLE = "code.artifact.available"
REFIT_OF = "code.refit.of_trial_run_id"
# The oldest possible start, for runs without one (as podium orders them).
NO_START = -(2**63)


def read_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def load_project(config_dir, experiment=None):
    """(experiment_name, backbones, selection config) from a pipeline-layout config folder."""
    folder = os.path.join(config_dir, "experiment")
    files = sorted(name for name in os.listdir(folder) if name.endswith((".yaml", ".yml")))
    if experiment is not None:
        chosen = [name for name in files if os.path.splitext(name)[0] == experiment]
        if not chosen:
            chosen = [name for name in files
                      if read_yaml(os.path.join(folder, name)).get("experiment_name") == experiment]
    else:
        chosen = files
    if len(chosen) != 1:
        sys.exit(f"{folder}: choose one experiment of {files} with --experiment")
    doc = read_yaml(os.path.join(folder, chosen[0]))
    hpo = ((doc.get("stages") or {}).get("hpo") or {}).get("hpo_config") or doc["hpo_config"]
    space = read_yaml(os.path.join(config_dir, hpo)).get("search_space") or {}
    backbones = [str(value) for value in (space.get("backbone") or {}).get("values") or []]
    path = os.path.join(config_dir, "best_model_selection.yaml")
    selection = read_yaml(path) if os.path.exists(path) else {}
    return doc["experiment_name"], backbones, selection


def hpo_experiment_name(experiment_name, backbone):
    return f"{experiment_name}-hpo-{backbone}"


def short_name(backbone):
    return backbone.split("-")[0]


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


def tag_eq(key, value):
    return f"tags.`{key}` = {quote(value)}"


def countable(value):
    return value is not None and math.isfinite(value) and abs(value) < sys.float_info.max


def start_of(run):
    return run.info.start_time if run.info.start_time is not None else NO_START


def newest_first(run):
    """Sort key: MLflow's default order (latest start first, then the smaller run id)."""
    return (-start_of(run), run.info.run_id)


def rules_of(selection):
    objective = selection.get("objective") or {}
    rules = selection.get("champion_selection") or {}
    direction = str(objective.get("direction") or objective.get("goal") or "maximize").lower()
    min_trials = int(rules.get("min_trials_per_group", 3))
    return {
        "metric": objective.get("metric", "macro-f1"),
        "maximize": direction in ("max", "maximize"),
        "min_trials": min_trials,
        "top_k": min(int(rules.get("top_k_for_stable_score", 3)), min_trials),
        "require_artifact": bool(rules.get("require_artifact_available", True)),
        "check_source": str(rules.get("artifact_check_source", "tag")),
        "prefer": str(rules.get("prefer_schema_version", "auto")),
        "mixed": bool(rules.get("allow_mixed_schema_groups", False)),
        "source": str(rules.get("checkpoint_source", "refit")),
    }


def candidate_filters(model):
    """The candidate queries in the order they are tried (rule 1)."""
    filters = []
    for stage in ("hpo_trial", "hpo"):
        for with_model in (True, False):
            parts = [tag_eq(STAGE, stage)]
            if with_model:
                parts.append(tag_eq(BACKBONE, model))
            parts.append("attributes.status = 'FINISHED'")
            filters.append(" AND ".join(parts))
    return filters


def candidates_of(client, experiment_id, model, page_size):
    for filter_string in candidate_filters(model):
        runs = search_all(client, experiment_id, filter_string, page_size)
        if runs:
            return runs
    return []


def decides(run):
    """The artifact verdict a run's own tags give, or None without the tag."""
    value = run.data.tags.get(AVAILABLE)
    if value is None:
        return None
    return value.lower() == "true" or SCHEMA not in run.data.tags


def select(client, backbone, experiment_name, rules, page_size):
    if rules["require_artifact"] and rules["check_source"] != "tag":
        raise LookupError("only artifact_check_source: tag is supported here")
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        raise LookupError(f"HPO experiment `{experiment_name}` not found")
    candidates = candidates_of(client, experiment.experiment_id, short_name(backbone), page_size)
    if not candidates:
        raise LookupError("no FINISHED trial runs")

    parents = {}

    def artifact_ok(run):
        parent_id = run.data.tags[PARENT]
        if parent_id not in parents:
            try:
                parents[parent_id] = client.get_run(parent_id)
            except Exception:  # an unreadable parent: the trial's own tag decides
                parents[parent_id] = None
        parent = parents[parent_id]
        verdict = decides(parent) if parent is not None else None
        if verdict is None:
            verdict = decides(run)
        return True if verdict is None else verdict

    sign = -1.0 if rules["maximize"] else 1.0
    groups = {}
    seen = set()
    for run in candidates:
        if run.info.run_id in seen:
            continue
        seen.add(run.info.run_id)
        if PARENT not in run.data.tags:
            continue
        if rules["require_artifact"] and not artifact_ok(run):
            continue
        study = run.data.tags.get(STUDY, "")
        if not study:
            continue
        schema = "2.0" if run.data.tags.get(SCHEMA, "2.0") == "2.0" else "1.0"
        key = ("", study) if rules["mixed"] else (schema, study)
        group = groups.setdefault(key, {"schemas": set(), "runs": []})
        group["schemas"].add(schema)
        group["runs"].append(run)
    used = "mixed" if rules["mixed"] else ("1.0" if rules["prefer"] == "1.0" else "2.0")
    eligible = []
    for (schema, study), group in groups.items():
        label = schema if schema else ("mixed" if len(group["schemas"]) > 1
                                       else next(iter(group["schemas"])))
        if used != "mixed" and label != used:
            continue
        valid = [(run, run.data.metrics.get(rules["metric"])) for run in group["runs"]]
        valid = [(run, value) for run, value in valid if countable(value)]
        if not valid or len(valid) < rules["min_trials"]:
            continue
        valid.sort(key=lambda item: (sign * item[1], start_of(item[0]), item[0].info.run_id))
        best = [value for _, value in valid[:rules["top_k"]]]
        k = len(best)
        stable = best[k // 2] if k % 2 else best[k // 2 - 1] / 2 + best[k // 2] / 2
        newest = min(group["runs"], key=newest_first)
        eligible.append(((sign * stable, newest_first(newest), study, label), stable, valid,
                         study, label))
    if not eligible:
        raise LookupError(f"no eligible schema {used} group")
    eligible.sort(key=lambda item: item[0])
    _, stable, valid, study, label = eligible[0]
    trial, value = valid[0]
    answer = {"trial_run_id": trial.info.run_id, "run_id": trial.info.run_id,
              "refit_run_id": None, "study_key_hash": study, "metric": value,
              "stable_score": stable, "schema_version": label, "counted_trials": len(valid)}
    if rules["source"] == "refit":
        trial_key = trial.data.tags.get(TRIAL_KEY, "")
        refits = []
        if trial_key:
            refits = [run for run in search_all(
                client, experiment.experiment_id,
                f"{tag_eq(TRIAL_KEY, trial_key)} AND {tag_eq(STAGE, 'hpo_refit')}", page_size)
                if run.data.tags.get(STAGE) == "hpo_refit"
                and run.data.tags.get(TRIAL_KEY) == trial_key]
        if not refits:
            refits = [run for run in search_all(
                client, experiment.experiment_id, tag_eq(REFIT_OF, trial.info.run_id), page_size)
                if run.data.tags.get(REFIT_OF) == trial.info.run_id]
        if not refits:
            raise LookupError(f"champion trial run {trial.info.run_id} has no refit run")
        refit = min(refits, key=newest_first)
        answer["run_id"] = answer["refit_run_id"] = refit.info.run_id
    return answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tracking_uri")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--experiment")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    started = time.time()
    experiment_name, backbones, selection = load_project(args.config_dir, args.experiment)
    rules = rules_of(selection)
    client = MlflowClient(args.tracking_uri)
    report = {"champions": {}, "errors": {}}
    for backbone in dict.fromkeys(backbones):
        name = hpo_experiment_name(experiment_name, backbone)
        try:
            report["champions"][backbone] = select(client, backbone, name, rules, args.page_size)
        except LookupError as err:
            report["errors"][backbone] = f"{backbone}: {err}"
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"python selection: {time.time() - started:.2f} s", file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
