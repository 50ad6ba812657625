"""The PostgreSQL floor of champion selection: how long the database takes to hand over the
candidate rows of every backbone through `psql` when nothing is done with them.

Usage: python scripts/pg_select_floor.py POSTGRESQL_URI [--config-dir config] [--experiment NAME]

The project is read as podium reads it (scripts/select_python.py `load_project`). One `psql`
per backbone, all at once (as `podium select` runs its backbones), each running the candidate
queries of champion selection in their fallback order (stage `hpo_trial` with `code.backbone`,
`hpo_trial`, `hpo` with `code.backbone`, `hpo`; FINISHED, active runs of the backbone's
experiment) as `COPY (…) TO STDOUT` into /dev/null, each a plain join that returns the
candidate runs, their tags among those selection reads, and their objective metric — the same
rows podium reads, as one statement the planner is free to run its own way. A backbone stops
after the first query that returns rows, as selection does. Prints one JSON line: the wall time
of the slowest backbone and each backbone's time and row count.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from select_python import (hpo_experiment_name, load_project, rules_of,  # noqa: E402
                           short_name)

# The tags selection reads (podium_champion::selection::SELECTION_TAGS as config/tags.yaml
# names them, and the parent link).
TAGS = [
    "code.stage", "code.study_key_hash", "code.study.key_schema_version", "code.trial_key_hash",
    "code.artifact.available", "code.artifact.checkpoint_path", "code.refit.of_trial_run_id",
    "code.lineage.hpo_sweep_run_id", "code.fingerprint.data", "code.fingerprint.eval",
    "mlflow.parentRunId",
]


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def candidate_sql(experiment, stage, model, metric):
    conditions = [
        f"r.experiment_id = (SELECT experiment_id FROM experiments WHERE name = {literal(experiment)})",
        "r.lifecycle_stage = 'active'",
        "r.status = 'FINISHED'",
        "EXISTS (SELECT 1 FROM tags s WHERE s.run_uuid = r.run_uuid AND s.key = 'code.stage' "
        f"AND s.value = {literal(stage)})",
    ]
    if model is not None:
        conditions.append("EXISTS (SELECT 1 FROM tags s WHERE s.run_uuid = r.run_uuid "
                          f"AND s.key = 'code.backbone' AND s.value = {literal(model)})")
    tags = ", ".join(literal(tag) for tag in TAGS)
    return (
        "COPY (WITH c AS MATERIALIZED (SELECT r.run_uuid, r.experiment_id, r.name, r.status, "
        "r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage FROM runs r WHERE "
        + " AND ".join(conditions) + ") "
        "SELECT c.*, NULL AS key, NULL AS value, NULL::float8 AS metric FROM c "
        "UNION ALL SELECT c.run_uuid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, t.key, t.value, "
        f"NULL FROM c JOIN tags t ON t.run_uuid = c.run_uuid AND t.key IN ({tags}) "
        "UNION ALL SELECT c.run_uuid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, m.key, NULL, "
        f"m.value FROM c JOIN latest_metrics m ON m.run_uuid = c.run_uuid AND m.key = "
        f"{literal(metric)}) TO STDOUT"
    )


def psql_uri(uri):
    scheme, rest = uri.split("://", 1)
    return "postgresql://" + rest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("--config-dir", default="config")
    parser.add_argument("--experiment")
    args = parser.parse_args()
    experiment_name, backbones, selection = load_project(args.config_dir, args.experiment)
    metric = rules_of(selection)["metric"]
    uri = psql_uri(args.uri)
    results = {}

    def backbone_floor(backbone):
        started = time.time()
        experiment = hpo_experiment_name(experiment_name, backbone)
        rows = 0
        for stage in ("hpo_trial", "hpo"):
            for model in (short_name(backbone), None):
                sql = candidate_sql(experiment, stage, model, metric)
                out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", uri, "-c", sql],
                                     capture_output=True, check=True)
                rows = out.stdout.count(b"\n")
                if rows:
                    break
            if rows:
                break
        results[backbone] = {"seconds": round(time.time() - started, 3), "rows": rows}

    started = time.time()
    threads = [threading.Thread(target=backbone_floor, args=(backbone,))
               for backbone in dict.fromkeys(backbones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"wall_s": round(time.time() - started, 3), "backbones": results}))


if __name__ == "__main__":
    main()
