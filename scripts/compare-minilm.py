#!/usr/bin/env python3
"""PyTorch vs `podium bench-model` on all-MiniLM-L6-v2, side by side: PyTorch, podium's fast
CPU path (`--execution cpu`) and its reference path on candle-transformers' models
(`--execution portable`), same threads, batch sizes and length, alternated for several rounds.
Prints each round's p50s and each path's ratio to PyTorch (the fast path's target: ≤ 0.55).

    cargo build --release -p podium-cli
    target/fixtures-venv/bin/python scripts/compare-minilm.py --podium target/release/podium

The checkpoint is fetched into target/models/all-MiniLM-L6-v2 like the tests do. Run it when
the machine is otherwise idle (check `uptime`): the load average is printed with each round.

`--baseline OTHER/target/release/podium` adds a release binary of another commit to every round
(its default execution, run from its own checkout, whose config/benchmark.yaml it reads), so a
change to the runtime is measured against the build before it on the same machine at the same
time rather than against a table from another day.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import runpy
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_json(command: list[str], cwd: pathlib.Path | None = None) -> dict:
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=cwd).stdout
    return json.loads(output)


def podium_p50(report: dict, batch: int) -> float:
    """The median from the report's per-batch results: every build has it there, while the
    metric names moved (`latency_batch_{b}_ms` was the median before it took the pipeline's
    meaning, the mean)."""
    for result in report["results"]:
        if result["batch_size"] == batch:
            return result["p50_ms"]
    raise KeyError(f"no result for batch {batch} in the podium report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--podium", default=str(ROOT / "target" / "release" / "podium"))
    parser.add_argument("--checkpoint", default=str(ROOT / "target" / "models" / "all-MiniLM-L6-v2"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--min-duration-s", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="podium binary of another build, as target/release/podium of its checkout")
    args = parser.parse_args()

    if not (pathlib.Path(args.checkpoint) / "model.safetensors").is_file():
        runpy.run_path(str(ROOT / "scripts" / "make-fixtures.py"))["fetch_minilm"]()
    common = [
        "--batch-sizes", args.batch_sizes, "--max-length", str(args.max_length),
        "--warmup", str(args.warmup), "--iterations", str(args.iterations),
        "--min-duration-s", str(args.min_duration_s), "--threads", str(args.threads),
    ]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    executions = ["cpu", "portable"]
    paths = executions + (["baseline"] if args.baseline else [])
    ratios: dict[tuple[str, int], list[float]] = {(p, b): [] for p in paths for b in batches}
    print(f"threads={args.threads} length={args.max_length} batches={batches}")
    for round_index in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        torch_report = run_json([sys.executable, str(ROOT / "scripts" / "bench-peer.py"),
                                 args.checkpoint, *common])
        reports = {
            path: run_json([args.podium, "bench-model", args.checkpoint, *common,
                            "--execution", path, "--format", "json", "-q"])
            for path in executions
        }
        if args.baseline:
            # Builds from before `--execution` existed take the fast path by default on CPU.
            baseline = pathlib.Path(args.baseline).resolve()
            checkout = baseline.parent.parent.parent
            reports["baseline"] = run_json(
                [str(baseline), "bench-model", str(pathlib.Path(args.checkpoint).resolve()),
                 *common, "--format", "json", "-q"],
                cwd=checkout,
            )
        for batch in batches:
            # The median on both sides: `latency_batch_{b}_ms` is the mean (the pipeline's
            # meaning), which one descheduled pass on a busy machine moves.
            key = f"latency_batch_{batch}_p50_ms"
            cv = f"latency_batch_{batch}_cv"
            peer = torch_report["metrics"][key]
            line = (f"round {round_index} (load {load:.2f}) batch {batch}: "
                    f"pytorch p50 {peer:.2f} ms (cv {torch_report['metrics'][cv]:.1%})")
            for path, report in reports.items():
                ours = podium_p50(report, batch)
                ratios[(path, batch)].append(ours / peer)
                line += (f", {path} p50 {ours:.2f} ms (cv {report['metrics'][cv]:.1%}, "
                         f"ratio {ours / peer:.3f})")
            print(line)
    print(f"pytorch: {torch_report['runtime']}")
    print(f"load average after: {os.getloadavg()}")
    for batch in batches:
        medians = ", ".join(
            f"{path} {statistics.median(ratios[(path, batch)]):.3f}" for path in paths
        )
        print(f"batch {batch}: median ratio to pytorch: {medians}")


if __name__ == "__main__":
    main()
