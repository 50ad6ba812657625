"""Logs runs described by a JSON spec with the real Python `mlflow` client (podium's tests).

Usage: python best-trials-log-runs.py TRACKING_URI SPEC_JSON_FILE

The spec is a list of runs, logged in order:
  {"name": "t0", "experiment": "exp", "tags": {...}, "params": {...}, "metrics": {...},
   "status": "FINISHED", "parent": "sweep", "tag_refs": {"tag.key": "run name"}}
`parent` (a name logged earlier) nests the run (mlflow.parentRunId); `tag_refs` sets a tag to the
run id of an earlier run. Prints `{name: run_id}` as JSON.
"""

import json
import sys
import time

import mlflow
from mlflow.tracking import MlflowClient


def main():
    uri, spec_path = sys.argv[1], sys.argv[2]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    with open(spec_path) as handle:
        spec = json.load(handle)
    ids = {}
    base_time = int(time.time() * 1000)
    for index, entry in enumerate(spec):
        experiment = client.get_experiment_by_name(entry["experiment"])
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(entry["experiment"])
        )
        tags = dict(entry.get("tags", {}))
        for key, ref in entry.get("tag_refs", {}).items():
            tags[key] = ids[ref]
        if "parent" in entry:
            tags["mlflow.parentRunId"] = ids[entry["parent"]]
        start = entry.get("start_time", base_time + index)
        run = client.create_run(
            experiment_id, start_time=start, tags=tags, run_name=entry["name"]
        )
        for key, value in entry.get("params", {}).items():
            client.log_param(run.info.run_id, key, value)
        for key, value in entry.get("metrics", {}).items():
            client.log_metric(run.info.run_id, key, float(value), timestamp=start, step=0)
        client.set_terminated(
            run.info.run_id, status=entry.get("status", "FINISHED"), end_time=start + 1
        )
        ids[entry["name"]] = run.info.run_id
    print(json.dumps(ids))


if __name__ == "__main__":
    main()
