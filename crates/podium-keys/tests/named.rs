//! Named cases from the issue's acceptance list: each pins one trap where a YAML 1.2 loader or a
//! naive JSON writer would silently change a hash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use podium_keys::{
    PyValue, Separators, StudyConfigs, StudyIdentity, StudyKeySchema, data_fingerprint,
    load_json_str, load_yaml_str, py_json, sha256_hex, trial_key,
};

fn compact(yaml: &str) -> String {
    py_json(&load_yaml_str(yaml).unwrap(), Separators::Compact).unwrap()
}

#[test]
fn plain_1e_minus_5_is_a_string_but_1_0e_minus_5_is_a_float() {
    assert_eq!(compact("lr: 1e-5"), r#"{"lr":"1e-5"}"#);
    assert_eq!(compact("lr: 1.0e-5"), r#"{"lr":1e-05}"#);
    assert_eq!(compact("lr: 1.0e5"), r#"{"lr":"1.0e5"}"#);
    assert_eq!(compact("lr: 1.0e+5"), r#"{"lr":100000.0}"#);
    assert_ne!(
        sha256_hex(&compact("lr: 1e-5")),
        sha256_hex(&compact("lr: 1.0e-5"))
    );
    // JSON params (Optuna/MLflow) are read with json.loads rules: 1e-5 is a float there.
    assert_eq!(
        py_json(
            &load_json_str(r#"{"lr": 1e-5}"#).unwrap(),
            Separators::Compact
        )
        .unwrap(),
        r#"{"lr":1e-05}"#
    );
}

#[test]
fn yes_no_on_off_are_booleans_in_every_case_but_quoted() {
    assert_eq!(
        compact("[yes, Yes, YES, no, No, NO, on, On, ON, off, Off, OFF, y, n, 'yes', \"no\"]"),
        r#"[true,true,true,false,false,false,true,true,true,false,false,false,"y","n","yes","no"]"#
    );
}

#[test]
fn leading_zero_is_octal_but_0o_is_a_string() {
    assert_eq!(
        compact("[017, 0o17, 0x1F, 0b101, 08, '017']"),
        r#"[15,"0o17",31,5,"08","017"]"#
    );
}

#[test]
fn underscores_and_sexagesimal() {
    assert_eq!(
        compact("[1_000, 1_000.5, 1:30, 1:30.5, -1:00:01]"),
        r#"[1000,1000.5,90,90.5,-3601]"#
    );
}

#[test]
fn nulls_and_special_floats() {
    assert_eq!(
        compact("[~, null, Null, NULL, .inf, -.inf, .NaN, -0.0, nULL]"),
        r#"[null,null,null,null,Infinity,-Infinity,NaN,-0.0,"nULL"]"#
    );
    assert_eq!(compact("empty:\nnext: 1"), r#"{"empty":null,"next":1}"#);
}

#[test]
fn unicode_names_are_escaped_like_ensure_ascii() {
    let yaml = "name: Résumé-NER 😀\nversion: \"v\\u00e9\"\nlabel_mapping: {日本: JP}\n";
    let value = load_yaml_str(yaml).unwrap();
    assert_eq!(
        py_json(&value, Separators::Default).unwrap(),
        r#"{"label_mapping": {"\u65e5\u672c": "JP"}, "name": "R\u00e9sum\u00e9-NER \ud83d\ude00", "version": "v\u00e9"}"#
    );
    assert_eq!(
        data_fingerprint(&value).unwrap(),
        sha256_hex(
            r#"{"label_mapping":{"\u65e5\u672c":"JP"},"name":"R\u00e9sum\u00e9-NER \ud83d\ude00","schema":{},"split_seed":null,"version":"v\u00e9"}"#
        )
    );
}

#[test]
fn int_keyed_label_maps_sort_numerically() {
    let yaml = "label_mapping: {10: B-LOC, 2: I-PER, 0: O, 1: B-PER, 1.5: X, true: T}\n";
    // true == 1 in Python: the later `true: T` overwrites the value of key 1.
    assert_eq!(
        compact(yaml),
        r#"{"label_mapping":{"0":"O","1":"T","1.5":"X","2":"I-PER","10":"B-LOC"}}"#
    );
    // Mixed string and int keys are Python's TypeError.
    let mixed = load_yaml_str("{1: a, b: c}").unwrap();
    assert!(py_json(&mixed, Separators::Compact).is_err());
}

#[test]
fn merge_keys_fill_in_and_own_keys_win() {
    let yaml = "defaults: &d {lr: 1.0e-5, epochs: 3}\nrun:\n  <<: *d\n  epochs: 5\n";
    assert_eq!(
        compact(yaml),
        r#"{"defaults":{"epochs":3,"lr":1e-05},"run":{"epochs":5,"lr":1e-05}}"#
    );
}

#[test]
fn timestamps_are_refused() {
    let err = load_yaml_str("released: 2024-01-15\n").unwrap_err();
    assert!(err.to_string().contains("timestamp"), "{err}");
    assert_eq!(
        compact("released: '2024-01-15'\n"),
        r#"{"released":"2024-01-15"}"#
    );
}

#[test]
fn big_ints_round_trip_from_yaml_and_json() {
    let text = "123456789012345678901234567890123";
    assert_eq!(
        compact(&format!("[{text}, -{text}]")),
        format!("[{text},-{text}]")
    );
    assert_eq!(
        py_json(
            &load_json_str(&format!("[{text}]")).unwrap(),
            Separators::Compact
        )
        .unwrap(),
        format!("[{text}]")
    );
}

#[test]
fn trial_keys_of_json_params() {
    let params =
        load_json_str(r#"{"learning_rate": 3.2e-05, "batch_size": 16, "dropout": 0.1}"#).unwrap();
    assert_eq!(
        trial_key(&"ab".repeat(32), &params).unwrap(),
        format!(
            r#"{{"hyperparameters":{{"batch_size":16,"dropout":0.1,"learning_rate":3.2e-05}},"schema_version":"2.0","study_key_hash":"{}"}}"#,
            "ab".repeat(32)
        )
    );
}

#[test]
fn study_key_ignores_model_case_and_space_and_family_ignores_the_model() {
    let data = load_yaml_str("name: d").unwrap();
    let hpo_a = load_yaml_str("search_space: {lr: {low: 1.0e-5}}").unwrap();
    let hpo_b = load_yaml_str("search_space: {lr: {low: 2.0e-5}}").unwrap();
    let train = PyValue::empty_dict();
    let configs = |hpo, model| StudyConfigs {
        data: &data,
        hpo,
        train: &train,
        eval: None,
        model,
        benchmark: None,
        code_version: None,
    };
    let a = StudyIdentity::compute(&configs(&hpo_a, " DistilBERT "), StudyKeySchema::V2).unwrap();
    let a2 = StudyIdentity::compute(&configs(&hpo_a, "distilbert"), StudyKeySchema::V2).unwrap();
    let other = StudyIdentity::compute(&configs(&hpo_a, "deberta"), StudyKeySchema::V2).unwrap();
    let b = StudyIdentity::compute(&configs(&hpo_b, "distilbert"), StudyKeySchema::V2).unwrap();
    assert_eq!(a, a2);
    assert_ne!(a.study_key_hash, b.study_key_hash);
    // The family groups backbones of one search: it hashes the search space, not the model.
    assert_eq!(a.study_family_hash, other.study_family_hash);
    assert_ne!(a.study_family_hash, b.study_family_hash);
}

/// Inputs `json.dumps` or the pipeline's `.get` calls reject are errors naming the key.
#[test]
fn inputs_the_pipeline_rejects_are_errors() {
    let data = load_yaml_str("name: d").unwrap();
    let train = PyValue::empty_dict();
    let mixed = load_yaml_str("search_space: {1: a, b: c}").unwrap();
    let sampling = load_yaml_str("sampling: [random]").unwrap();
    for hpo in [&mixed, &sampling] {
        let configs = StudyConfigs {
            data: &data,
            hpo,
            train: &train,
            eval: None,
            model: "m",
            benchmark: None,
            code_version: None,
        };
        assert!(podium_keys::StudyKeys::compute(&configs).is_err());
    }
    let err = trial_key("h", &load_yaml_str("[1, 2]").unwrap()).unwrap_err();
    assert!(err.to_string().contains("hyperparameters"), "{err}");
}
