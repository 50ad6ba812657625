"""The champion-selection rules, stated plainly in Python: the differential peer of podium's
selection (tests/selection_differential.rs).

Reads a JSON list of cases on stdin; each case is {"config": {...}, "model": short backbone name,
"runs": [{"id", "status", "start", "tags", "metrics", "deleted"}]} — every run of one backbone's
HPO experiment. Prints a JSON list of answers: {"trial": id, "refit": id|null} or
{"error": "no_candidates" | "no_group" | "no_refit"}.

The rules:
1. Candidates: non-deleted FINISHED runs from the first non-empty of: stage hpo_trial with the
   backbone tag, stage hpo_trial, stage hpo with the backbone tag, stage hpo. Keep runs with a
   mlflow.parentRunId.
2. require_artifact_available: the parent's artifact tag decides when the parent exists and has
   one ("true" in any case keeps; otherwise drop unless the parent has no schema tag); else the
   run's own tag, same rule; no tag: keep.
3. Schema: own tag, missing = "2.0"; "2.0" -> v2 groups, anything else -> v1 groups. Groups by
   study_key_hash (non-empty). prefer "2.0"/"auto": v2 groups; "1.0": v1 groups; mixed: both,
   one group per hash.
4. Per group, finite metric values (NaN, inf and |v| >= max float do not count); fewer than
   min_trials -> out; stable = median of the best K = min(top_k, n). Winner: best stable; tie ->
   the group whose newest run (latest start, then smallest id) sorts first in start-descending,
   id-ascending order. Champion: best value; tie -> earliest start, then smallest id.
5. Refit (any status, not deleted): stage hpo_refit with the champion's non-empty
   trial_key_hash; else runs whose code.refit.of_trial_run_id is the champion's id. Latest start,
   then smallest id.
"""

import json
import math
import sys

MAX = sys.float_info.max
INT_MIN = -(2**63)


def start(run):
    return run["start"] if run["start"] is not None else INT_MIN


def mlflow_order(run):
    """Sort key of MLflow's default order: newest start first, then the smaller id."""
    return (-start(run), run["id"])


def decide(run):
    value = run["tags"].get("code.artifact.available")
    if value is None:
        return None
    return value.lower() == "true" or "code.study.key_schema_version" not in run["tags"]


def select(case):
    config, model = case["config"], case["model"]
    runs = [r for r in case["runs"] if not r["deleted"]]
    by_id = {r["id"]: r for r in case["runs"]}
    finished = [r for r in runs if r["status"] == "FINISHED"]
    candidates = []
    for stage in ("hpo_trial", "hpo"):
        for with_backbone in (True, False):
            candidates = [r for r in finished if r["tags"].get("code.stage") == stage and
                          (not with_backbone or r["tags"].get("code.backbone") == model)]
            if candidates:
                break
        if candidates:
            break
    if not candidates:
        return {"error": "no_candidates"}
    trials = [r for r in candidates if "mlflow.parentRunId" in r["tags"]]
    if config["require_artifact_available"]:
        kept = []
        for r in trials:
            parent = by_id.get(r["tags"]["mlflow.parentRunId"])
            verdict = decide(parent) if parent is not None else None
            if verdict is None:
                verdict = decide(r)
            if verdict is None or verdict:
                kept.append(r)
        trials = kept
    groups = {}
    for r in trials:
        study = r["tags"].get("code.study_key_hash")
        if not study:
            continue
        schema = "2.0" if r["tags"].get("code.study.key_schema_version", "2.0") == "2.0" else "1.0"
        if config["allow_mixed_schema_groups"]:
            key = study
        elif config["prefer_schema_version"] in ("2.0", "auto"):
            if schema != "2.0":
                continue
            key = study
        else:
            if schema != "1.0":
                continue
            key = study
        groups.setdefault(key, []).append(r)
    maximize = config["direction"] == "maximize"
    eligible = []
    for study, members in groups.items():
        valid = []
        for r in members:
            value = r["metrics"].get(config["metric"])
            if value is None or not math.isfinite(value) or abs(value) >= MAX:
                continue
            valid.append((r, value))
        if not valid or len(valid) < config["min_trials_per_group"]:
            continue
        values = sorted((v for _, v in valid), reverse=maximize)
        k = min(config["top_k_for_stable_score"], len(values))
        best = values[:k]
        stable = best[k // 2] if k % 2 == 1 else best[k // 2 - 1] / 2 + best[k // 2] / 2
        newest = min(members, key=mlflow_order)
        eligible.append((stable, newest, valid))
    if not eligible:
        return {"error": "no_group"}
    best_stable = max(e[0] for e in eligible) if maximize else min(e[0] for e in eligible)
    tied = [e for e in eligible if e[0] == best_stable]
    winner = min(tied, key=lambda e: mlflow_order(e[1]))
    valid = winner[2]
    best_value = max(v for _, v in valid) if maximize else min(v for _, v in valid)
    champion = min((r for r, v in valid if v == best_value), key=lambda r: (start(r), r["id"]))
    trial_key = champion["tags"].get("code.trial_key_hash")
    refits = []
    if trial_key:
        refits = [r for r in runs if r["tags"].get("code.stage") == "hpo_refit" and
                  r["tags"].get("code.trial_key_hash") == trial_key]
    if not refits:
        refits = [r for r in runs if r["tags"].get("code.refit.of_trial_run_id") == champion["id"]]
    if config["checkpoint_source"] == "trial":
        return {"trial": champion["id"], "refit": None}
    if not refits:
        return {"error": "no_refit", "trial": champion["id"]}
    refit = min(refits, key=mlflow_order)
    return {"trial": champion["id"], "refit": refit["id"]}


def main():
    cases = json.load(sys.stdin)
    # Metrics come as text ("nan", "inf", "0.8") so that the JSON stays strict.
    for case in cases:
        for run in case["runs"]:
            run["metrics"] = {k: float(v) for k, v in run["metrics"].items()}
    json.dump([select(case) for case in cases], sys.stdout)


if __name__ == "__main__":
    main()
