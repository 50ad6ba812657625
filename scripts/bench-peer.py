#!/usr/bin/env python3
"""Times a Hugging Face checkpoint with PyTorch exactly the way `podium bench-model` times it
with candle: bare encoder (or token-classification model when it has a head), synthetic ids of
`max_length` with every token real, warmup, then at least `iterations` passes and at least
`min_duration_s` seconds, each forward timed alone. Prints JSON with the same metric names.

Needs torch + transformers (the fixtures venv, see scripts/make-fixtures.py):

    target/fixtures-venv/bin/python scripts/bench-peer.py target/models/all-MiniLM-L6-v2 \
        --batch-sizes 1,8 --max-length 128 --threads 2
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np
import torch
import transformers


def has_classifier(checkpoint: pathlib.Path) -> bool:
    safetensors_file = checkpoint / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors import safe_open

        with safe_open(str(safetensors_file), "pt") as weights:
            return "classifier.weight" in weights.keys()
    state = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu")
    return "classifier.weight" in state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--min-duration-s", type=float, default=1.0)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = transformers.AutoConfig.from_pretrained(args.checkpoint)
    if has_classifier(pathlib.Path(args.checkpoint)):
        model = transformers.AutoModelForTokenClassification.from_pretrained(args.checkpoint)
    else:
        # Like podium: a checkpoint without a head runs as the bare encoder (no pooler).
        extra = {"add_pooling_layer": False} if config.model_type in {"bert", "roberta", "xlm-roberta"} else {}
        model = transformers.AutoModel.from_pretrained(args.checkpoint, **extra)
    model = model.eval()
    generator = torch.Generator().manual_seed(args.seed)
    first_id = 1000 if config.vocab_size > 1000 else 0
    metrics: dict[str, float] = {"threads": float(torch.get_num_threads())}
    with torch.inference_mode():
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            ids = torch.randint(first_id, config.vocab_size, (batch, args.max_length), generator=generator)
            mask = torch.ones_like(ids)
            for _ in range(args.warmup):
                model(input_ids=ids, attention_mask=mask)
            samples: list[float] = []
            timed = 0.0
            while len(samples) < args.iterations or timed < args.min_duration_s:
                started = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                elapsed = time.perf_counter() - started
                timed += elapsed
                samples.append(elapsed * 1e3)
            values = np.array(samples)
            mean = float(values.mean())
            std = float(values.std())
            metrics.update({
                # The names and meanings of podium's harness: `_ms` is the mean (the
                # pipeline's meaning), the median is `_p50_ms`.
                f"latency_batch_{batch}_ms": mean,
                f"latency_batch_{batch}_p50_ms": float(np.percentile(values, 50)),
                f"latency_batch_{batch}_p90_ms": float(np.percentile(values, 90)),
                f"latency_batch_{batch}_p95_ms": float(np.percentile(values, 95)),
                f"latency_batch_{batch}_p99_ms": float(np.percentile(values, 99)),
                f"latency_batch_{batch}_std_ms": std,
                f"latency_batch_{batch}_cv": std / mean,
                f"throughput_batch_{batch}_seq_per_s": batch * 1e3 / mean,
            })
    print(json.dumps({
        "runtime": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "model_class": type(model).__name__,
        "metrics": metrics,
    }, indent=2))


if __name__ == "__main__":
    main()
