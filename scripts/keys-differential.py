"""Python side of podium-keys' differential tests (crates/podium-keys/tests/differential.rs).

Values travel between Rust and Python in a tagged JSON encoding that keeps what plain JSON
loses: ["none"], ["bool", b], ["int", "decimal"], ["float", "16 hex digits of the bits" | "nan"],
["str", s], ["list", [...]], ["dict", [[k, v], ...]] (insertion order).

Usage:
  keys-differential.py dump CASES OUT   each line of CASES is a tagged value; each line of OUT is
                                       {"compact": ..., "default": ...} from
                                       json.dumps(v, sort_keys=True, separators=...), or
                                       {"error": "TypeName"}.
  keys-differential.py yaml CASES OUT   each line of CASES is a JSON string of YAML text; each line
                                       of OUT is the tagged yaml.safe_load result or
                                       {"error": "TypeName"}.
  keys-differential.py trial CASES OUT  each line of CASES is a tagged hyperparameter dict; each
                                       line of OUT is {"trial_key": ...} from keys-reference.py's
                                       trial_key, or {"error": "TypeName"}.
  keys-differential.py study CASES OUT  each line of CASES is a tagged [data, hpo, train,
                                       benchmark, model]; each line of OUT is keys-reference.py's
                                       study keys, or {"error": "TypeName"}.
"""

import importlib.util
import json
import os
import struct
import sys

import yaml

_spec = importlib.util.spec_from_file_location(
    "keys_reference", os.path.join(os.path.dirname(os.path.abspath(__file__)), "keys-reference.py"))
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def decode(node):
    kind = node[0]
    if kind == "none":
        return None
    if kind == "bool":
        return node[1]
    if kind == "int":
        return int(node[1])
    if kind == "float":
        if node[1] == "nan":
            return float("nan")
        return struct.unpack(">d", bytes.fromhex(node[1]))[0]
    if kind == "str":
        return node[1]
    if kind == "list":
        return [decode(item) for item in node[1]]
    if kind == "dict":
        return dict((decode(k), decode(v)) for k, v in node[1])
    raise ValueError(f"unknown tag {kind}")


class Unencodable(Exception):
    pass


def encode(value):
    if value is None:
        return ["none"]
    if value is True or value is False:
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        if value != value:
            return ["float", "nan"]
        return ["float", struct.pack(">d", value).hex()]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (list, tuple)):
        return ["list", [encode(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", [[encode(k), encode(v)] for k, v in value.items()]]
    raise Unencodable(type(value).__name__)


def dump_cases(lines):
    for line in lines:
        value = decode(json.loads(line))
        try:
            yield {
                "compact": json.dumps(value, sort_keys=True, separators=(",", ":")),
                "default": json.dumps(value, sort_keys=True, separators=(", ", ": ")),
            }
        except (TypeError, ValueError) as err:
            yield {"error": type(err).__name__, "message": str(err)}


def yaml_cases(lines):
    for line in lines:
        text = json.loads(line)
        try:
            yield {"value": encode(yaml.safe_load(text))}
        except Exception as err:  # whatever safe_load raises, the Rust loader must refuse too
            yield {"error": type(err).__name__, "message": str(err)[:200]}


def trial_cases(lines):
    for line in lines:
        params = decode(json.loads(line))
        try:
            yield {"trial_key": reference.trial_key("h" * 64, params)}
        except Exception as err:  # TypeError/ValueError/AttributeError: Rust must refuse too
            yield {"error": type(err).__name__, "message": str(err)[:200]}


def study_cases(lines):
    for line in lines:
        data, hpo, train, benchmark, model = decode(json.loads(line))
        try:
            yield reference.study_keys(data, hpo, train, benchmark, model)
        except Exception as err:
            yield {"error": type(err).__name__, "message": str(err)[:200]}


def main():
    mode, cases, out = sys.argv[1:4]
    with open(cases, encoding="utf-8") as handle:
        lines = [line for line in handle.read().split("\n") if line]
    run = {"dump": dump_cases, "yaml": yaml_cases, "trial": trial_cases, "study": study_cases}[mode]
    with open(out, "w", encoding="utf-8") as handle:
        for result in run(lines):
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
