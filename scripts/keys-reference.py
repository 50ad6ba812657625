"""A Python statement of the pipeline's key formulas, written with json.dumps + hashlib, for
podium-keys' reference and differential tests (not the pipeline's code: the same formulas).

Usage:
  keys-reference.py --config-dir C [--experiment NAME] --backbone B [--params P]
                    [--run-id R] [--code-version V]
  keys-reference.py --config-dir C [--experiment NAME] --benchmark-workflow --run-id R

Reads the experiment file (config/experiment/<name>.yaml), the data, train, HPO (of record:
stages.hpo.hpo_config, else hpo_config) and benchmark files it names with yaml.safe_load, and
prints one JSON object with every key, hash and fingerprint.

With --benchmark-workflow it prints instead the benchmark key the pipeline's existence check
(`filter_missing_benchmarks`) computes for champion run R, as its notebook 02 and
`run_benchmarking_workflow` compute it: the data fingerprint of the experiment's data config,
the eval fingerprint of `derive_eval_config(hpo.get("train", {}), hpo)` where hpo is the
experiment's own `hpo_config` (what `load_all_configs` loads; stages.hpo.hpo_config plays no
part), and the config hash of `CONFIG_DIR/benchmark.yaml`.
"""

import argparse
import hashlib
import json
import os

import yaml

EXCLUDED_PARAMS = ("backbone", "trial_number", "run_id")


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compact(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def compute_data_fingerprint(data_config):
    data_config = data_config or {}
    content_hash = data_config.get("content_hash") or data_config.get("manifest_hash")
    if content_hash:
        return sha256_hex(str(content_hash))
    return sha256_hex(compact({
        "name": data_config.get("name"),
        "version": data_config.get("version"),
        "split_seed": data_config.get("split_seed"),
        "label_mapping": data_config.get("label_mapping", {}),
        "schema": data_config.get("schema", {}),
    }))


def derive_eval_config(train_config, hpo_config):
    eval_config = {}
    if train_config:
        eval_config = train_config.get("eval", {}) or {}
    if not eval_config and hpo_config:
        eval_config = hpo_config.get("evaluation", {}) or {}
    if not eval_config and hpo_config:
        eval_config = {"evaluator_version": "default", "metric": hpo_config.get("objective", {})}
    if not eval_config:
        eval_config = {"evaluator_version": "default"}
    return eval_config


def compute_eval_fingerprint(eval_config):
    eval_config = eval_config or {}
    return sha256_hex(compact({
        "evaluator_version": eval_config.get("evaluator_version", "default"),
        "metric_spec": eval_config.get("metric", {}),
        "thresholding": eval_config.get("thresholding", {}),
        "full_eval_config": eval_config,
    }))


def study_key_v2(data, hpo, train, model, data_fp, eval_fp, code_version=None):
    objective = hpo.get("objective", {})
    payload = {
        "schema_version": "2.0",
        "data": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "schema": data.get("schema", {}),
            "split_seed": data.get("split_seed", "default"),
            "label_mapping": data.get("label_mapping", {}),
            "data_fingerprint": data_fp,
        },
        "hpo": {
            "search_space": hpo.get("search_space", {}),
            "objective": {
                "metric": objective.get("metric", "macro-f1"),
                "direction": objective.get("direction", "maximize"),
            },
            "k_fold": hpo.get("k_fold", {}),
            "sampling": {"algorithm": hpo.get("sampling", {}).get("algorithm", "random")},
            "early_termination": hpo.get("early_termination", {}),
        },
        "training": {
            "max_steps": train.get("max_steps"),
            "num_epochs": train.get("num_epochs"),
            "seed_policy": train.get("seed_policy", "default"),
        },
        "evaluation": {"eval_fingerprint": eval_fp},
        "model": model.lower().strip(),
    }
    if code_version is not None:
        payload["code_version"] = code_version
    return compact(payload)


def v1_payload(data, hpo, benchmark):
    bench_key = {}
    if benchmark:
        section = benchmark.get("benchmarking", {})
        bench_key = {
            "metric": section.get("metric", "macro-f1"),
            "max_length": section.get("max_length", 512),
        }
    return {
        "schema_version": "2.0",
        "data": {
            "name": data.get("name", ""),
            "version": data.get("version", ""),
            "local_path": str(data.get("local_path", "")),
            "schema": data.get("schema", {}),
        },
        "hpo": {
            "search_space": hpo.get("search_space", {}),
            "objective": hpo.get("objective", {}),
            "k_fold": hpo.get("k_fold", {}),
            "sampling": {"algorithm": hpo.get("sampling", {}).get("algorithm", "random")},
            "early_termination": hpo.get("early_termination", {}),
        },
        "benchmark": bench_key,
    }


def study_key_v1(data, hpo, model, benchmark):
    payload = v1_payload(data, hpo, benchmark)
    payload["model"] = model.lower().strip()
    return compact(payload)


def study_family_key(data, hpo, benchmark):
    return compact(v1_payload(data, hpo, benchmark))


def normalize_hyperparameters(params):
    normalized = {}
    for key, value in sorted(params.items()):
        if key in EXCLUDED_PARAMS:
            continue
        if isinstance(value, float):
            normalized[key] = 0.0 if value == 0.0 else float(f"{value:.12e}")
        elif isinstance(value, (int, bool)):
            normalized[key] = value
        elif isinstance(value, str):
            normalized[key] = value.lower().strip()
        else:
            normalized[key] = str(value).lower().strip()
    return normalized


def trial_key(study_key_hash, params):
    return compact({
        "schema_version": "2.0",
        "study_key_hash": study_key_hash,
        "hyperparameters": normalize_hyperparameters(params),
    })


def compute_config_hash(config):
    return sha256_hex(json.dumps(config, sort_keys=True))[:16]


def study_keys(data, hpo, train, benchmark, model, code_version=None):
    data_fp = compute_data_fingerprint(data)
    eval_fp = compute_eval_fingerprint(derive_eval_config(train, hpo))
    v2 = study_key_v2(data, hpo, train, model, data_fp, eval_fp, code_version)
    family = study_family_key(data, hpo, benchmark)
    v1 = study_key_v1(data, hpo, model, benchmark)
    return {
        "data_fingerprint": data_fp,
        "eval_fingerprint": eval_fp,
        "study_key": v2,
        "study_key_hash": sha256_hex(v2),
        "study_family_key": family,
        "study_family_hash": sha256_hex(family),
        "v1_study_key": v1,
        "v1_study_key_hash": sha256_hex(v1),
    }


def load(path):
    with open(path, encoding="utf-8") as handle:
        if path.endswith(".json"):
            return json.load(handle)
        return yaml.safe_load(handle)


def experiment_files(config_dir, name):
    folder = os.path.join(config_dir, "experiment")
    if name is None:
        (only,) = sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml")))
        path = os.path.join(folder, only)
    else:
        path = os.path.join(folder, f"{name}.yaml")
    raw = load(path)
    hpo = ((raw.get("stages") or {}).get("hpo") or {}).get("hpo_config") or raw["hpo_config"]
    resolve = lambda relative: os.path.join(config_dir, relative)
    return {
        "data": resolve(raw["data_config"]),
        "train": resolve(raw["train_config"]),
        "hpo": resolve(hpo),
        "default_hpo": resolve(raw["hpo_config"]),
        "benchmark": resolve(raw.get("benchmark_config", "benchmark.yaml")),
    }


def benchmark_workflow_key(config_dir, files, run_id):
    """The key `filter_missing_benchmarks` builds for a champion run: fingerprints from the
    configs (never from the champion's tags), `build_benchmark_key`'s format."""
    data = load(files["data"])
    hpo = load(files["default_hpo"])
    benchmark = load(os.path.join(config_dir, "benchmark.yaml"))
    data_fp = compute_data_fingerprint(data)
    eval_fp = compute_eval_fingerprint(derive_eval_config(hpo.get("train", {}), hpo))
    return {
        "data_fingerprint": data_fp,
        "eval_fingerprint": eval_fp,
        "benchmark_key": f"{run_id}:{data_fp}:{eval_fp}:{compute_config_hash(benchmark)}",
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-dir", required=True)
    parser.add_argument("--experiment")
    parser.add_argument("--backbone")
    parser.add_argument("--benchmark-workflow", action="store_true")
    parser.add_argument("--code-version")
    parser.add_argument("--run-id", default="0123456789abcdef0123456789abcdef")
    parser.add_argument("--params")
    args = parser.parse_args()

    files = experiment_files(args.config_dir, args.experiment)
    if args.benchmark_workflow:
        print(json.dumps(benchmark_workflow_key(args.config_dir, files, args.run_id)))
        return
    if args.backbone is None:
        parser.error("--backbone is required (unless --benchmark-workflow)")
    data, hpo, train = load(files["data"]), load(files["hpo"]), load(files["train"])
    benchmark = load(files["benchmark"]) if os.path.exists(files["benchmark"]) else None
    result = study_keys(data, hpo, train, benchmark, args.backbone, args.code_version)
    result["config_hashes"] = {
        name: compute_config_hash(value)
        for name, value in (("data", data), ("hpo", hpo), ("train", train), ("benchmark", benchmark))
    }
    bench_hash = compute_config_hash(benchmark)
    result["benchmark_key"] = (
        f"{args.run_id}:{result['data_fingerprint']}:{result['eval_fingerprint']}:{bench_hash}"
    )
    if args.params:
        key = trial_key(result["study_key_hash"], load(args.params))
        result["trial_key"] = key
        result["trial_key_hash"] = sha256_hex(key)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
