"""The pipeline's reads of a benchmark experiment at 8acbebb, stated in plain Python over
MLflow's client (podium's statement of the logic, not the pipeline's code):

- its existence check (`evaluation/benchmarking/existence_checker.py`,
  `benchmark_exists_in_mlflow`): FINISHED runs of the benchmark experiment tagged
  `benchmark_key = K`; failing that, FINISHED runs tagged with the champion's trial and study
  key hashes (`tags.code.trial_key_hash = T AND tags.code.study_key_hash = S`);
- the candidates of its best-model selection (`evaluation/selection/mlflow_selection.py`,
  `_query_and_filter_benchmark_runs`): FINISHED runs holding every required metric and both
  grouping tags;
- a stage query a notebook would write (`tags.code.stage = 'benchmarking'`) and the whole
  experiment, through `mlflow.search_runs`.

Usage: pipeline_benchmark_checks.py TRACKING_URI EXPERIMENT CHAMPIONS_JSON
CHAMPIONS_JSON: [{"key": K, "study_key_hash": S, "trial_key_hash": T}, ...]
Prints one JSON object: {"exists": {K: bool}, "matched": [run ids], "selection_candidates":
[run ids], "stage_benchmarking": [run ids], "all_runs": [run ids]}.
"""

import json
import logging
import sys

logging.disable(logging.CRITICAL)

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

REQUIRED_METRICS = ["latency_batch_1_ms"]
STUDY_TAG = "code.study_key_hash"
TRIAL_TAG = "code.trial_key_hash"


def main():
    uri, experiment_name, champions_json = sys.argv[1:4]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    ids = [experiment.experiment_id]

    def finished(filter_string):
        try:
            runs = client.search_runs(ids, filter_string=filter_string, max_results=1000)
        except Exception:  # the pipeline swallows a failed search and answers "missing"
            return []
        return [run for run in runs if run.info.status == "FINISHED"]

    exists = {}
    matched = []
    for champion in json.loads(champions_json):
        runs = finished(f"tags.benchmark_key = '{champion['key']}'")
        if not runs and champion.get("trial_key_hash") and champion.get("study_key_hash"):
            runs = finished(
                f"tags.{TRIAL_TAG} = '{champion['trial_key_hash']}' AND "
                f"tags.{STUDY_TAG} = '{champion['study_key_hash']}'"
            )
        exists[champion["key"]] = bool(runs)
        matched.extend(run.info.run_id for run in runs)

    candidates = [
        run.info.run_id
        for run in client.search_runs(ids, filter_string="", max_results=1000)
        if run.info.status == "FINISHED"
        and all(metric in run.data.metrics for metric in REQUIRED_METRICS)
        and STUDY_TAG in run.data.tags
        and TRIAL_TAG in run.data.tags
    ]

    mlflow.set_tracking_uri(uri)
    staged = mlflow.search_runs(
        experiment_ids=ids, filter_string="tags.`code.stage` = 'benchmarking'"
    )
    everything = mlflow.search_runs(experiment_ids=ids)
    print(
        json.dumps(
            {
                "exists": exists,
                "matched": sorted(set(matched)),
                "selection_candidates": sorted(candidates),
                "stage_benchmarking": sorted(staged["run_id"]) if len(staged) else [],
                "all_runs": sorted(everything["run_id"]) if len(everything) else [],
            }
        )
    )


main()
