"""Creates Optuna studies (the real library) in study folders for podium's best-trial tests.

Usage: python best-trials-make-studies.py MODEL_DIR
       python best-trials-make-studies.py --pipeline MODEL_DIR

MODEL_DIR is `{root}/outputs/hpo/{env}/{model}`. Creates one study folder per scenario, each with
`study.db` (storage sqlite:///…/study.db), and prints on stdout a JSON object
`{folder: {"number", "value", "params", "direction", "study_name"}}` of what Optuna's
`study.best_trial` reports. Values may be Infinity (Python's json writes it bare).

With --pipeline the folders are laid out as the pipeline lays them out: `study-{s8}` folders
named by a study key hash (`aaaaaaaa…`, `bbbbbbbb…`, `cccccccc…`), the first two holding one
study each (`hpo_distilbert_test_v3`, `_v4`: two studies of one backbone, which the pipeline tags
`code.variant = 1` alike), the third two studies in one `study.db` (same study key hash, two
study names). It prints `{"folder/study_name": {"folder", "study_key_hash", "study_name",
"best": {"number", "value", "params"}, "trials": [{"number", "value", "params"}, …]}}` with
every COMPLETE trial, so a test can log the MLflow runs of the same trials.
"""

import json
import math
import sys
from pathlib import Path

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def suggest_all(trial):
    """Every parameter kind: categorical (mixed types), int, log-int, log-float, stepped float."""
    return {
        "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32]),
        "scheduler": trial.suggest_categorical("scheduler", ["linear", None, True, 2.5]),
        "epochs": trial.suggest_int("epochs", 1, 10),
        "warmup": trial.suggest_int("warmup", 2, 512, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 5e-5, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5, step=0.05),
    }


def run_study(folder, direction, outcomes, constraints=None):
    """`outcomes[n]` is the value of trial n, or "fail" / "prune"."""
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}",
        study_name=folder.name,
        direction=direction,
        sampler=optuna.samplers.RandomSampler(seed=len(outcomes)),
    )

    def objective(trial):
        suggest_all(trial)
        outcome = outcomes[trial.number]
        if constraints is not None:
            trial.set_constraint("memory", constraints[trial.number])
        if outcome == "fail":
            raise RuntimeError("this trial fails on purpose")
        if outcome == "prune":
            trial.report(0.1, step=0)
            raise optuna.TrialPruned()
        return outcome

    study.optimize(objective, n_trials=len(outcomes), catch=(RuntimeError,))
    best = study.best_trial
    return {
        "number": best.number,
        "value": best.value,
        "params": best.params,
        "direction": direction,
        "study_name": study.study_name,
    }


def pipeline_study(folder, study_name, values, seed):
    """A maximize study named `study_name` in `folder/study.db`, one trial per value."""
    folder.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'study.db'}",
        study_name=study_name,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        load_if_exists=True,
    )

    def objective(trial):
        suggest_all(trial)
        return values[trial.number]

    study.optimize(objective, n_trials=len(values))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    as_json = lambda t: {"number": t.number, "value": t.value, "params": t.params}
    return {
        "folder": folder.name,
        "study_name": study_name,
        "study_key_hash": folder.name.removeprefix("study-")[0] * 64,
        "best": as_json(study.best_trial),
        "trials": [as_json(t) for t in complete],
    }


def pipeline(model_dir):
    results = {}
    for folder, name, values, seed in [
        ("study-aaaaaaaa", "hpo_distilbert_test_v3", [0.61, 0.74, 0.69], 1),
        ("study-bbbbbbbb", "hpo_distilbert_test_v4", [0.58, 0.66, 0.81, 0.7], 2),
        ("study-cccccccc", "hpo_distilbert_smoke", [0.5, 0.77], 3),
        ("study-cccccccc", "hpo_distilbert_smoke_b", [0.79, 0.52], 4),
    ]:
        results[f"{folder}/{name}"] = pipeline_study(model_dir / folder, name, values, seed)
    return results


def main():
    if sys.argv[1] == "--pipeline":
        print(json.dumps(pipeline(Path(sys.argv[2]))))
        return
    model_dir = Path(sys.argv[1])
    results = {}
    # Maximize with a failed, a pruned and a -inf trial, and a tie at the top (smaller number wins).
    results["hpo_distilbert"] = run_study(
        model_dir / "hpo_distilbert",
        "maximize",
        [0.61, "fail", 0.83, "prune", -math.inf, 0.83, 0.7],
    )
    # Minimize with +inf, a pruned trial and a failed one.
    results["hpo_distilbert_v2"] = run_study(
        model_dir / "hpo_distilbert_v2",
        "minimize",
        [math.inf, 0.42, "prune", 0.35, "fail", 0.5],
    )
    # Maximize where +inf is the best value.
    results["hpo_distilbert_v3"] = run_study(
        model_dir / "hpo_distilbert_v3",
        "maximize",
        [0.2, math.inf, 0.9, "fail"],
    )
    # Constrained: the best value is infeasible, so Optuna reports the best feasible trial.
    results["hpo_distilbert_v4"] = run_study(
        model_dir / "hpo_distilbert_v4",
        "maximize",
        [0.5, 0.99, 0.6, 0.55],
        constraints=[0.0, 1.0, -0.5, 0.0],
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
