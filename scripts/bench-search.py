#!/usr/bin/env python3
"""Python counterpart of crates/podium-mlflow/examples/bench_search.rs.

Times the candidate query of one backbone (its FINISHED HPO trials, tagged as the pipeline tags
them: stage `hpo`, `code.model` = the short name) with MlflowClient.search_runs,
paging with next_page_token to the end, on the same store podium queried. Prints JSON:
{"count": N, "median_ms": M, "min_ms": m, "median_cpu_ms": C, "page_size": P}.

    python scripts/bench-search.py URI EXPERIMENT BACKBONE REPEAT [PAGE_SIZE]
"""

import json
import logging
import statistics
import sys
import time

logging.disable(logging.CRITICAL)

from mlflow import MlflowClient  # noqa: E402


def main() -> int:
    uri, experiment_name, backbone, repeat = sys.argv[1:5]
    page_size = int(sys.argv[5]) if len(sys.argv) > 5 else 50000
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    query = (
        f"tags.`code.model` = '{backbone}' AND tags.`code.stage` = 'hpo' "
        "AND attributes.status = 'FINISHED'"
    )
    timings, cpu = [], []
    count = 0
    for _ in range(int(repeat)):
        started = time.perf_counter()
        cpu_started = time.process_time()
        runs, token = [], None
        while True:
            page = client.search_runs(
                [experiment.experiment_id], query, max_results=page_size, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        count = len(runs)
    print(json.dumps({
        "count": count,
        "median_ms": statistics.median(timings),
        "min_ms": min(timings),
        "median_cpu_ms": statistics.median(cpu),
        "page_size": page_size,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
