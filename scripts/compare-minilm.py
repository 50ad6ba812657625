#!/usr/bin/env python3
"""PyTorch vs `podium bench-model` on all-MiniLM-L6-v2, back to back, same threads, batch
sizes and length; alternates the two for several rounds and prints each round's p50s and the
ratio podium/PyTorch (the issue-7 target: ≤ 1.0 at batch 1, ≤ 0.8 at batch 8).

    cargo build --release -p podium-cli
    target/fixtures-venv/bin/python scripts/compare-minilm.py --podium target/release/podium

The checkpoint is fetched into target/models/all-MiniLM-L6-v2 like the tests do. Run it when
the machine is otherwise idle (check `uptime`): the load average is printed with each round.
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


def run_json(command: list[str]) -> dict:
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output)


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
    args = parser.parse_args()

    if not (pathlib.Path(args.checkpoint) / "model.safetensors").is_file():
        runpy.run_path(str(ROOT / "scripts" / "make-fixtures.py"))["fetch_minilm"]()
    common = [
        "--batch-sizes", args.batch_sizes, "--max-length", str(args.max_length),
        "--warmup", str(args.warmup), "--iterations", str(args.iterations),
        "--min-duration-s", str(args.min_duration_s), "--threads", str(args.threads),
    ]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    ratios: dict[int, list[float]] = {b: [] for b in batches}
    print(f"threads={args.threads} length={args.max_length} batches={batches}")
    for round_index in range(1, args.rounds + 1):
        load = os.getloadavg()[0]
        torch_report = run_json([sys.executable, str(ROOT / "scripts" / "bench-peer.py"),
                                 args.checkpoint, *common])
        podium_report = run_json([args.podium, "bench-model", args.checkpoint, *common,
                                  "--format", "json", "-q"])
        for batch in batches:
            key = f"latency_batch_{batch}_ms"
            peer = torch_report["metrics"][key]
            ours = podium_report["metrics"][key]
            ratios[batch].append(ours / peer)
            print(f"round {round_index} (load {load:.2f}) batch {batch}: "
                  f"pytorch p50 {peer:.2f} ms (cv {torch_report['metrics'][f'latency_batch_{batch}_cv']:.1%}), "
                  f"podium p50 {ours:.2f} ms (cv {podium_report['metrics'][f'latency_batch_{batch}_cv']:.1%}), "
                  f"ratio {ours / peer:.3f}")
    print(f"pytorch: {torch_report['runtime']}")
    for batch in batches:
        print(f"batch {batch}: median ratio podium/pytorch {statistics.median(ratios[batch]):.3f}")


if __name__ == "__main__":
    main()
