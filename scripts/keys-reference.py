"""The Python pipeline's key definitions (DESIGN §3), written with json.dumps + hashlib exactly as
the pipeline does, for podium-keys' reference tests.

Usage:
  keys-reference.py --data D --hpo H --train T --eval E --model M [--benchmark B]
                    [--code-version V] [--harness-version N] [--run-id R] [--params P]

Reads the YAML files with yaml.safe_load (P, a JSON or YAML file, with json.load when it ends in
.json) and prints one JSON object with every key, hash and fingerprint.
"""

import argparse
import hashlib
import json

import yaml


def sha256_hex(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def compute_data_fingerprint(data_config):
    data_config = data_config or {}
    content_hash = data_config.get("content_hash") or data_config.get("manifest_hash")
    if content_hash:
        return sha256_hex(str(content_hash))
    fallback_payload = {
        "name": data_config.get("name"),
        "version": data_config.get("version"),
        "split_seed": data_config.get("split_seed"),
        "label_mapping": data_config.get("label_mapping", {}),
        "schema": data_config.get("schema", {}),
    }
    return sha256_hex(json.dumps(fallback_payload, sort_keys=True))


def compute_eval_fingerprint(eval_config):
    eval_config = eval_config or {}
    fingerprint_payload = {
        "evaluator_version": eval_config.get("evaluator_version", "default"),
        "metric_spec": eval_config.get("metric", {}),
        "thresholding": eval_config.get("thresholding", {}),
        "full_eval_config": eval_config,
    }
    return sha256_hex(json.dumps(fingerprint_payload, sort_keys=True))


def study_payload_v2(data_config, hpo_config, train_config, model, data_fingerprint,
                     eval_fingerprint, code_version=None, with_search_space=True,
                     schema_version="2.0"):
    data_key = {
        "name": data_config.get("name", ""),
        "version": data_config.get("version", ""),
        "schema": data_config.get("schema", {}),
        "split_seed": data_config.get("split_seed", "default"),
        "label_mapping": data_config.get("label_mapping", {}),
        "data_fingerprint": data_fingerprint,
    }
    objective = hpo_config.get("objective", {})
    hpo_key = {
        "objective": {
            "metric": objective.get("metric", "macro-f1"),
            "direction": objective.get("direction", "maximize"),
        },
        "k_fold": hpo_config.get("k_fold", {}),
        "sampling": {
            "algorithm": hpo_config.get("sampling", {}).get("algorithm", "random"),
        },
        "early_termination": hpo_config.get("early_termination", {}),
    }
    if with_search_space:
        hpo_key["search_space"] = hpo_config.get("search_space", {})
    train_key = {
        "max_steps": train_config.get("max_steps"),
        "num_epochs": train_config.get("num_epochs"),
        "seed_policy": train_config.get("seed_policy", "default"),
    }
    payload = {
        "schema_version": schema_version,
        "data": data_key,
        "hpo": hpo_key,
        "training": train_key,
        "evaluation": {"eval_fingerprint": eval_fingerprint},
        "model": model.lower().strip(),
    }
    if code_version is not None:
        payload["code_version"] = code_version
    return payload


def study_key_v1(data_config, hpo_config, model, benchmark_config):
    objective = hpo_config.get("objective", {})
    payload = {
        "schema_version": "1.0",
        "data": {
            "name": data_config.get("name", ""),
            "version": data_config.get("version", ""),
            "local_path": data_config.get("local_path", ""),
            "schema": data_config.get("schema", {}),
            "split_seed": data_config.get("split_seed", "default"),
            "label_mapping": data_config.get("label_mapping", {}),
        },
        "hpo": {
            "search_space": hpo_config.get("search_space", {}),
            "objective": {
                "metric": objective.get("metric", "macro-f1"),
                "goal": objective.get("goal", objective.get("direction", "maximize")),
            },
            "k_fold": hpo_config.get("k_fold", {}),
            "sampling": {"algorithm": hpo_config.get("sampling", {}).get("algorithm", "random")},
            "early_termination": hpo_config.get("early_termination", {}),
        },
        "model": model.lower().strip(),
        "benchmark": benchmark_config or {},
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def compute_config_hash(config):
    normalized = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return sha256_hex(normalized)[:16]


def bench_fingerprint(benchmark_config, harness_version):
    config = {k: v for k, v in (benchmark_config or {}).items() if k != "run"}
    config["harness_version"] = harness_version
    return compute_config_hash(config)


def load(path):
    with open(path, encoding="utf-8") as handle:
        if path.endswith(".json"):
            return json.load(handle)
        return yaml.safe_load(handle)


def main():
    parser = argparse.ArgumentParser()
    for name in ("data", "hpo", "train", "eval", "model"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--benchmark")
    parser.add_argument("--code-version")
    parser.add_argument("--harness-version", type=int, default=1)
    parser.add_argument("--run-id", default="0123456789abcdef0123456789abcdef")
    parser.add_argument("--params")
    args = parser.parse_args()

    data = load(args.data)
    hpo = load(args.hpo)
    train = load(args.train)
    evaluation = load(args.eval)
    benchmark = load(args.benchmark) if args.benchmark else None

    data_fp = compute_data_fingerprint(data)
    eval_fp = compute_eval_fingerprint(evaluation)
    study_key = json.dumps(
        study_payload_v2(data, hpo, train, args.model, data_fp, eval_fp, args.code_version),
        sort_keys=True, separators=(",", ":"))
    family_key = json.dumps(
        study_payload_v2(data, hpo, train, args.model, data_fp, eval_fp, args.code_version,
                         with_search_space=False, schema_version="family-2.0"),
        sort_keys=True, separators=(",", ":"))
    v1_key = study_key_v1(data, hpo, args.model, benchmark)
    result = {
        "data_fingerprint": data_fp,
        "eval_fingerprint": eval_fp,
        "study_key": study_key,
        "study_key_hash": sha256_hex(study_key),
        "study_family_key": family_key,
        "study_family_hash": sha256_hex(family_key),
        "study_key_v1": v1_key,
        "study_key_v1_hash": sha256_hex(v1_key),
        "config_hashes": {
            name: compute_config_hash(value)
            for name, value in (("data", data), ("hpo", hpo), ("train", train),
                                ("eval", evaluation), ("benchmark", benchmark))
        },
    }
    if benchmark is not None:
        bench_fp = bench_fingerprint(benchmark, args.harness_version)
        result["bench_fp"] = bench_fp
        result["benchmark_key"] = f"{args.run_id}:{data_fp}:{eval_fp}:{bench_fp}"
    if args.params:
        trial_key = json.dumps(
            {"schema_version": "1.0", "study_key_hash": sha256_hex(study_key),
             "hyperparameters": load(args.params)},
            sort_keys=True, separators=(",", ":"))
        result["trial_key"] = trial_key
        result["trial_key_hash"] = sha256_hex(trial_key)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
