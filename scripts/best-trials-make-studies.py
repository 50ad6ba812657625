"""Creates Optuna studies (the real library) in study folders for podium's best-trial tests.

Usage: python best-trials-make-studies.py MODEL_DIR

MODEL_DIR is `{root}/outputs/hpo/{env}/{model}`. Creates one study folder per scenario, each with
`study.db` (storage sqlite:///…/study.db), and prints on stdout a JSON object
`{folder: {"number", "value", "params", "direction", "study_name"}}` of what Optuna's
`study.best_trial` reports, plus `"__overall__"` for the best across the folders (direction of the
maximize studies). Values may be Infinity (Python's json writes it bare).
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


def main():
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
