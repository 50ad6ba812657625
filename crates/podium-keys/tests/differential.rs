//! Differential tests against the real Python: `json.dumps(..., sort_keys=True)` for random
//! nested values and `yaml.safe_load` for random YAML texts full of YAML 1.1 traps. Each runs
//! hundreds of cases through ONE Python process (scripts/keys-differential.py) to stay fast.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Rng, py_value, sample, serialisable_value};
use podium_keys::{PyValue, Separators, load_yaml_str, py_json};
use serde_json::{Value, json};

/// The tagged encoding of scripts/keys-differential.py.
fn encode(value: &PyValue) -> Value {
    match value {
        PyValue::None => json!(["none"]),
        PyValue::Bool(b) => json!(["bool", b]),
        PyValue::Int(i) => json!(["int", i.to_string()]),
        PyValue::Float(f) if f.is_nan() => json!(["float", "nan"]),
        PyValue::Float(f) => json!(["float", format!("{:016x}", f.to_bits())]),
        PyValue::Str(s) => json!(["str", s]),
        PyValue::List(items) => json!(["list", items.iter().map(encode).collect::<Vec<_>>()]),
        PyValue::Dict(entries) => json!([
            "dict",
            entries
                .iter()
                .map(|(k, v)| json!([encode(k), encode(v)]))
                .collect::<Vec<_>>()
        ]),
    }
}

/// How many random cases to run: `default`, or PODIUM_KEYS_DIFF_CASES for a deeper search.
fn case_count(default: usize) -> usize {
    std::env::var("PODIUM_KEYS_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// The random seed: fixed, or PODIUM_KEYS_DIFF_SEED to explore others.
fn seed() -> u8 {
    std::env::var("PODIUM_KEYS_DIFF_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Runs scripts/keys-differential.py MODE over the cases (one JSON line each).
fn run_python(mode: &str, cases: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("cases.jsonl");
    let output = dir.path().join("out.jsonl");
    let text: String = cases.iter().map(|case| format!("{case}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/keys-differential.py");
    let status = Command::new(podium_testkit::python())
        .arg(&script)
        .arg(mode)
        .arg(&input)
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success(), "{} failed", script.display());
    std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn py_json_equals_python_json_dumps() {
    let mut values: Vec<PyValue> = sample(py_value(), case_count(600), seed());
    // Named corner cases ride along with the random ones.
    values.extend([
        PyValue::Float(-0.0),
        PyValue::Float(5e-324),
        PyValue::Float(1e16),
        PyValue::Float(9_999_999_999_999_998.0),
        PyValue::Float(1e-4),
        PyValue::Float(0.000_099_999_999_999_999_99),
        PyValue::Float(f64::NAN),
        PyValue::Float(f64::NEG_INFINITY),
        PyValue::str("\u{7f}\u{0}\u{1f}\u{80}\u{ffff}\u{10ffff}😀\"\\/"),
        PyValue::dict_from_pairs([
            (PyValue::Float(f64::NAN), PyValue::int(1)),
            (PyValue::Float(f64::NAN), PyValue::int(2)),
            (PyValue::int(3), PyValue::int(3)),
            (PyValue::Float(-1.5), PyValue::int(4)),
        ]),
        PyValue::dict_from_pairs([(PyValue::None, PyValue::int(1))]),
        PyValue::dict_from_pairs([
            (PyValue::None, PyValue::int(1)),
            (PyValue::str("a"), PyValue::int(2)),
        ]),
        PyValue::dict_from_pairs((0..70).map(|i| (PyValue::int(70 - i), PyValue::int(i)))),
        PyValue::dict_from_pairs(
            (0..70).map(|i| (PyValue::str(format!("k{}", (i * 37) % 70)), PyValue::int(i))),
        ),
    ]);
    let cases: Vec<Value> = values.iter().map(encode).collect();
    let answers = run_python("dump", &cases);
    assert_eq!(answers.len(), values.len());
    let mut errors = 0;
    for (value, answer) in values.iter().zip(&answers) {
        let compact = py_json(value, Separators::Compact);
        let default = py_json(value, Separators::Default);
        match answer.get("error") {
            Some(kind) => {
                errors += 1;
                assert!(
                    compact.is_err() && default.is_err(),
                    "Python raised {kind} ({}) but Rust wrote {compact:?} for {value:?}",
                    answer["message"]
                );
            }
            None => {
                assert_eq!(
                    compact.as_deref().ok(),
                    answer["compact"].as_str(),
                    "compact dump of {value:?}"
                );
                assert_eq!(
                    default.as_deref().ok(),
                    answer["default"].as_str(),
                    "default dump of {value:?}"
                );
            }
        }
    }
    // The generator must exercise both outcomes.
    assert!(errors > 10 && errors < values.len() / 2, "{errors} errors");
}

/// Plain scalars that YAML 1.1 (PyYAML) and YAML 1.2 read differently, and other traps.
const TRICKY_SCALARS: &[&str] = &[
    "1e-5",
    "1.0e-5",
    "1.0e5",
    "1.0E+5",
    "1.e+5",
    "-1.5e-07",
    "6.02e+23",
    "3.14159",
    "1_000.5",
    "yes",
    "Yes",
    "YES",
    "No",
    "no",
    "ON",
    "On",
    "off",
    "OFF",
    "y",
    "n",
    "Y",
    "true",
    "False",
    "TRUE",
    "tRue",
    "017",
    "0o17",
    "0x1F",
    "-0x1f",
    "0b101",
    "+0b1_0",
    "08",
    "09.5",
    "007",
    "0",
    "-0",
    "+12",
    "1_000",
    "1__0",
    "0_",
    "1:30",
    "-1:30",
    "1:30.5",
    "190:20:30",
    "1_0:30",
    "1:70",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    ".inf",
    "-.inf",
    "+.inf",
    ".Inf",
    ".NaN",
    ".nan",
    ".NAN",
    "-.nan",
    "-.5",
    ".5",
    "1.",
    "-0.0",
    "0.0",
    "123456789012345678901234567890",
    "-98765432109876543210.5",
    "1.0e+400",
    "1.0e-400",
    "2.5e-324",
    "abc",
    "é",
    "日本語",
    "😀",
    "a b",
    "1 2",
    "-",
    "2024-01-15",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2024-1-5",
    "0x_",
    "0b_",
    "<<",
    "=",
    "0.1",
    "100",
    "-273.15",
    "1e5",
    "1E5",
    "+1",
    "0xG",
    "1,000",
    "$x",
    "a:b",
];

/// Quoted and block scalars: always strings, escapes resolved.
const QUOTED_SCALARS: &[&str] = &[
    "\"yes\"",
    "'017'",
    "\"1e-5\"",
    "\"\\u00e9t\\u00e9\"",
    "\"tab\\there\"",
    "\"\\x41\"",
    "'it''s'",
    "\"\\U0001F600\"",
    "\"line\\nbreak\"",
    "''",
    "\"\"",
    "'~'",
    "\"null\"",
    "'1.0'",
    "\"a\\\\b\"",
];

/// Mapping keys, many of which collide in Python (`1`, `1.0`, `yes`/`true`/`on`).
const TRICKY_KEYS: &[&str] = &[
    "1",
    "2",
    "10",
    "1.0",
    "1.5",
    "-3",
    "017",
    "0x10",
    "yes",
    "true",
    "on",
    "no",
    "~",
    "name",
    "lr",
    "日本",
    "é",
    "\"1\"",
    "'yes'",
    "label_mapping",
    "B-PER",
    "1e-5",
    ".inf",
];

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

fn scalar(rng: &mut Rng) -> String {
    if rng.below(4) == 0 {
        pick(rng, QUOTED_SCALARS).to_string()
    } else {
        pick(rng, TRICKY_SCALARS).to_string()
    }
}

fn flow_scalar(rng: &mut Rng) -> String {
    // Flow context ends plain scalars at `,` and `:`+space; keep to those both parsers agree on.
    loop {
        let candidate = scalar(rng);
        if !candidate.contains(',') && !candidate.contains(": ") && candidate != "-" {
            return candidate;
        }
    }
}

/// A random YAML document: a block mapping with nested mappings, block and flow sequences,
/// anchors, aliases and merge keys.
fn yaml_document(rng: &mut Rng) -> String {
    let mut out = String::new();
    let mut anchors: Vec<String> = Vec::new();
    if rng.below(3) == 0 {
        out.push_str("base: &base\n  x: 1\n  y: 1.0e-5\n  '1': one\n");
        anchors.push("base".into());
    }
    if rng.below(4) == 0 {
        out.push_str("other: &other {y: 2, z: yes, 1: int-one}\n");
        anchors.push("other".into());
    }
    let mut next_anchor = 0;
    block_mapping(rng, &mut out, 0, 3, &mut anchors, &mut next_anchor);
    out
}

fn block_mapping(
    rng: &mut Rng,
    out: &mut String,
    indent: usize,
    depth: usize,
    anchors: &mut Vec<String>,
    next_anchor: &mut usize,
) {
    let pad = " ".repeat(indent);
    let entries = 1 + rng.below(5);
    if !anchors.is_empty() && rng.below(3) == 0 {
        let merge = if anchors.len() > 1 && rng.below(2) == 0 {
            format!(
                "[{}]",
                anchors
                    .iter()
                    .map(|a| format!("*{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("*{}", anchors[rng.below(anchors.len())])
        };
        out.push_str(&format!("{pad}<<: {merge}\n"));
    }
    for _ in 0..entries {
        let key = pick(rng, TRICKY_KEYS);
        match rng.below(if depth == 0 { 3 } else { 6 }) {
            0 | 1 => out.push_str(&format!("{pad}{key}: {}\n", scalar(rng))),
            2 => {
                let items: Vec<String> = (0..rng.below(5)).map(|_| flow_scalar(rng)).collect();
                out.push_str(&format!("{pad}{key}: [{}]\n", items.join(", ")));
            }
            3 => {
                out.push_str(&format!("{pad}{key}:\n"));
                for _ in 0..1 + rng.below(3) {
                    out.push_str(&format!("{pad}  - {}\n", scalar(rng)));
                }
            }
            4 if anchors.len() < 4 => {
                let name = format!("a{next_anchor}");
                *next_anchor += 1;
                out.push_str(&format!("{pad}{key}: &{name}\n"));
                // The anchored body must not alias itself (that would be a recursive value).
                let mut visible = anchors.clone();
                block_mapping(rng, out, indent + 2, depth - 1, &mut visible, next_anchor);
                anchors.push(name);
            }
            _ => {
                out.push_str(&format!("{pad}{key}:\n"));
                block_mapping(rng, out, indent + 2, depth - 1, anchors, next_anchor);
            }
        }
    }
}

/// The tagged encoding of what Rust loaded, or None for an error.
fn rust_load(text: &str) -> Option<Value> {
    load_yaml_str(text).ok().map(|value| encode(&value))
}

#[test]
fn yaml_loader_equals_pyyaml_safe_load() {
    let mut rng = Rng::new(0x5eed_0002 + u64::from(seed()));
    let mut texts: Vec<String> = Vec::new();
    for scalar in TRICKY_SCALARS.iter().chain(QUOTED_SCALARS) {
        texts.push(format!("v: {scalar}\n"));
        texts.push(format!("{scalar}: v\n"));
        texts.push(format!("- {scalar}\n"));
        // A lone `-` in a flow sequence is a string to PyYAML but an error to the YAML 1.2
        // parser (a loud difference, listed in the crate docs).
        if *scalar != "-" {
            texts.push(format!("[{scalar}]\n"));
        }
    }
    texts.extend((0..case_count(400)).map(|_| yaml_document(&mut rng)));
    texts.extend(
        [
            "",
            "# only a comment\n",
            "---\na: 1\n...\n",
            "a: 1\n---\nb: 2\n",
            "a: &x [1, *x]\n",
            "a: *undefined\n",
            "{1: a, 1.0: b, true: c}\n",
            "!!omap [a: 1, b: 2]\n",
            "- !!binary aGVsbG8=\n",
            "- !!set {a, b}\n",
            "- !!int '0x10'\n",
            "- !!float '1'\n",
            "- !!bool 'maybe'\n",
            "- !!null 'x'\n",
            "- !!str 1.5\n",
            "- ! 12\n",
            "- !custom 12\n",
            "? [1, 2]\n: v\n",
            "a:\n  <<: 1\n",
            "a: |\n  line one\n  line two\n",
            "a: >\n  folded\n  text\n",
            "\u{feff}a: 1\n",
            "a: \"\\u00e9\\t\\\"\"\n",
            "labels: {0: O, 1: B-PER, 2: I-PER, 10: B-LOC}\n",
            "a: &x 1\nb: &x 2\n",
            "a: 2024-01-15\na: 1\n",
            "a: [2024-01-15]\na: 1\n",
            "a: 2024-02-30\na: 1\n",
            "a: 2001-12-14 21:59:43.10 -5\n",
            "2024-01-15: a\n",
            "a: !!binary aGVsbG8=\na: 1\n",
            "a: !!set {x, y}\na: 1\n",
        ]
        .map(String::from),
    );
    let cases: Vec<Value> = texts.iter().map(|text| json!(text)).collect();
    let answers = run_python("yaml", &cases);
    assert_eq!(answers.len(), texts.len());
    let mut mismatches = Vec::new();
    for (text, answer) in texts.iter().zip(&answers) {
        let ours = rust_load(text);
        let theirs = answer.get("value").cloned();
        if ours != theirs {
            mismatches.push(format!(
                "--- YAML:\n{text}--- Python: {}\n--- Rust: {}\n",
                answer,
                load_yaml_str(text)
                    .map(|v| encode(&v).to_string())
                    .unwrap_or_else(|e| format!("error: {e}"))
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} texts differ:\n{}",
        mismatches.len(),
        texts.len(),
        mismatches.iter().take(15).cloned().collect::<String>()
    );
}

/// Hyperparameter values that stress the trial key's normalisation: floats whose 13th
/// significant digit rounds (half-even on the exact binary value), -0.0, 1e16, subnormals, ints
/// and bools, None, lists, dicts, strings with case and surrounding whitespace.
fn hyperparameter_value(rng: &mut Rng) -> PyValue {
    let float = |rng: &mut Rng| -> f64 {
        match rng.below(8) {
            // 14 significant digits ending in 5: exact ties when the value is representable.
            0 => {
                (rng.below(9_000_000) as f64 * 10_000_000.0 + 1_000_000.5)
                    * 10f64.powi(rng.below(20) as i32 - 10)
            }
            1 => 1234567890123.5 + rng.below(16) as f64,
            2 => f64::from_bits(rng.next_u64() >> rng.below(12)),
            3 => [
                -0.0,
                0.0,
                1e16,
                5e-324,
                2.2250738585072014e-308,
                9_999_999_999_999.5,
                0.1,
                2.33e-05,
            ][rng.below(8)],
            4 => f64::from_bits(rng.below(1 << 20) as u64), // subnormals
            _ => (rng.next_u64() as f64 / u64::MAX as f64) * 10f64.powi(rng.below(40) as i32 - 20),
        }
    };
    match rng.below(10) {
        0..=3 => PyValue::Float(float(rng)),
        4 => PyValue::int(rng.below(2000) as i64 - 1000),
        5 => PyValue::Bool(rng.below(2) == 1),
        6 => PyValue::None,
        7 => PyValue::str(pick(
            rng,
            &[" AdamW ", "linear", "\tCosine\n", "ß", "İ", "\u{1f}x"],
        )),
        8 => PyValue::List(vec![
            PyValue::int(1),
            PyValue::str("A"),
            PyValue::Float(float(rng)),
            PyValue::None,
        ]),
        _ => PyValue::dict_from_pairs([
            (PyValue::str("k"), PyValue::Bool(true)),
            (PyValue::int(2), PyValue::Float(0.5)),
        ]),
    }
}

fn hyperparameters(rng: &mut Rng) -> PyValue {
    let names = [
        "learning_rate",
        "batch_size",
        "dropout",
        "weight_decay",
        "optimizer",
        "backbone",
        "trial_number",
        "run_id",
        "warmup",
        "schedule",
    ];
    let count = 1 + rng.below(names.len());
    PyValue::dict_from_pairs(
        (0..count).map(|_| (PyValue::str(pick(rng, &names)), hyperparameter_value(rng))),
    )
}

#[test]
fn trial_keys_equal_the_python_statement_of_the_formula() {
    let mut rng = Rng::new(u64::from(seed()) * 7919);
    let cases: Vec<PyValue> = (0..case_count(1500))
        .map(|_| hyperparameters(&mut rng))
        .collect();
    let answers = run_python("trial", &cases.iter().map(encode).collect::<Vec<_>>());
    assert_eq!(answers.len(), cases.len());
    let mut errors = 0;
    for (params, answer) in cases.iter().zip(&answers) {
        let ours = podium_keys::trial_key(&"h".repeat(64), params);
        match answer.get("error") {
            Some(kind) => {
                errors += 1;
                assert!(
                    ours.is_err(),
                    "Python raised {kind} ({}) but Rust wrote {ours:?} for {params:?}",
                    answer["message"]
                );
            }
            None => assert_eq!(
                ours.ok().as_deref(),
                answer["trial_key"].as_str(),
                "{params:?}"
            ),
        }
    }
    // Errors only where Python's str() of a container holds non-ASCII text (refused, not guessed).
    assert!(errors < cases.len() / 4, "{errors} errors");
}

/// A config dict: random values under the keys the formulas read (and some they do not).
fn config(rng: &mut Rng, keys: &[&str]) -> PyValue {
    let values: Vec<PyValue> = sample(serialisable_value(), keys.len(), (rng.below(250) + 1) as u8);
    PyValue::dict_from_pairs(keys.iter().zip(values).filter(|_| rng.below(4) != 0).map(
        |(key, value)| {
            // Sections the formulas call `.get` on are mappings (or falsy) in real configs;
            // other types are covered by the error cases that remain.
            let value = match (*key, value) {
                ("eval" | "evaluation", value @ (PyValue::Dict(_) | PyValue::None)) => value,
                ("eval" | "evaluation", _) => PyValue::dict_from_pairs([(
                    PyValue::str("evaluator_version"),
                    PyValue::str("1"),
                )]),
                (_, value) => value,
            };
            (PyValue::str(*key), value)
        },
    ))
}

#[test]
fn study_keys_equal_the_python_statement_of_the_formulas() {
    let mut rng = Rng::new(u64::from(seed()) * 104_729);
    let mut cases = Vec::new();
    for _ in 0..case_count(600) {
        let data = config(
            &mut rng,
            &[
                "name",
                "version",
                "local_path",
                "schema",
                "split_seed",
                "label_mapping",
                "content_hash",
                "manifest_hash",
                "description",
            ],
        );
        let mut hpo = config(
            &mut rng,
            &[
                "search_space",
                "k_fold",
                "early_termination",
                "evaluation",
                "selection",
            ],
        );
        if let PyValue::Dict(entries) = &mut hpo {
            if rng.below(3) != 0 {
                entries.push((
                    PyValue::str("objective"),
                    PyValue::dict_from_pairs([
                        (PyValue::str("metric"), PyValue::str("macro-f1")),
                        (PyValue::str("direction"), hyperparameter_value(&mut rng)),
                    ]),
                ));
            }
            if rng.below(3) != 0 {
                entries.push((
                    PyValue::str("sampling"),
                    PyValue::dict_from_pairs([(
                        PyValue::str("algorithm"),
                        hyperparameter_value(&mut rng),
                    )]),
                ));
            }
        }
        let train = config(
            &mut rng,
            &["eval", "max_steps", "num_epochs", "seed_policy", "training"],
        );
        let benchmark = match rng.below(3) {
            0 => PyValue::None,
            1 => PyValue::dict_from_pairs([(
                PyValue::str("benchmarking"),
                config(&mut rng, &["metric", "max_length", "batch_sizes"]),
            )]),
            _ => config(&mut rng, &["run", "output"]),
        };
        let model = PyValue::str(pick(
            &mut rng,
            &["distilbert", " DeBERTa ", "distilroberta-base"],
        ));
        cases.push(PyValue::List(vec![data, hpo, train, benchmark, model]));
    }
    let answers = run_python("study", &cases.iter().map(encode).collect::<Vec<_>>());
    let mut agreed = 0;
    for (case, answer) in cases.iter().zip(&answers) {
        let PyValue::List(parts) = case else {
            unreachable!()
        };
        let benchmark = (!matches!(parts[3], PyValue::None)).then_some(&parts[3]);
        let configs = podium_keys::StudyConfigs {
            data: &parts[0],
            hpo: &parts[1],
            train: &parts[2],
            eval: None,
            model: parts[4].as_str().unwrap(),
            benchmark,
            code_version: None,
        };
        let ours = podium_keys::StudyKeys::compute(&configs);
        match answer.get("error") {
            Some(kind) => assert!(
                ours.is_err(),
                "Python raised {kind} ({}) but Rust computed {ours:?}",
                answer["message"]
            ),
            None => match ours {
                Ok(ours) => {
                    assert_eq!(serde_json::to_value(&ours).unwrap(), *answer, "{case:?}");
                    agreed += 1;
                }
                // The one documented refusal: Python's str() of a container holding non-ASCII
                // text (local_path or content_hash) depends on its Unicode database.
                Err(err) if err.to_string().contains("non-ASCII string") => {}
                Err(err) => panic!("{err} where Python computed {answer}"),
            },
        }
    }
    assert!(
        agreed > cases.len() / 8,
        "only {agreed} of {} computed",
        cases.len()
    );
}
