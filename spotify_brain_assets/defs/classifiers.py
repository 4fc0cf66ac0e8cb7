"""What the two classifier assets share: their knobs, training with the promotion gate, the gate
check, and publishing an evaluation report."""

from typing import Optional

import dagster as dg
import pandas as pd

from ..ml.backtest import BacktestSettings
from ..ml.classifiers import Outcome, TrainSettings
from ..ml.evaluation import upsert_run_entry
from ..ml.families import Recipe
from ..ml.model_store import ModelRefused, load_model, promote, retire, save_model, sidecar_path, sidecar_version, verify_model
from ..plays.store import history_or_empty
from ..storage.files import CorruptFileError, parquet_metadata, read_json, write_json, writer_lock
from ..storage.paths import DataPaths
from .common import table

ORIGINS_KEY = "spotify_brain.origins"
TIMEZONE_KEY = "spotify_brain.timezone"


class ClassifierConfig(dg.Config):
    """The rolling-origin backtest, the model recipes' settings and the gate's evidence."""

    folds: int = 6  # cut dates of the backtest
    backtest_span: float = 0.5  # the newest share of history the cuts spread over
    bootstrap: int = 1000  # resamples for the confidence intervals
    confidence: float = 0.95  # of the intervals; the gate needs the upper end of the difference below zero
    min_train_rows: int = 100  # a fold with fewer training rows is left out
    min_test_rows: int = 20
    seed: int = 42
    n_estimators: int = 300  # XGBoost: at most this many trees; early stopping on each fold picks fewer
    max_depth: int = 4
    learning_rate: float = 0.2
    early_stopping_rounds: int = 10
    validation_fraction: float = 0.1  # the newest share of a fold's training rows, for early stopping
    logistic_c: float = 0.1  # logistic regression: inverse L2 strength
    recency_half_life_days: Optional[float] = None  # weight older rows down by half per this many days

    def settings(self, recipes: list[tuple[str, str]]) -> TrainSettings:
        """(family, feature set) pairs → the recipes with these settings, and the backtest."""
        made = tuple(
            Recipe(family, features, self.n_estimators, self.max_depth, self.learning_rate, self.early_stopping_rounds, self.validation_fraction, self.logistic_c, self.seed)
            for family, features in recipes
        )
        backtest = BacktestSettings(self.folds, self.backtest_span, self.bootstrap, self.confidence, self.seed, self.min_train_rows, self.min_test_rows)
        return TrainSettings(made, backtest, self.recency_half_life_days)


def candidate_path(paths: DataPaths, kind: str):
    return paths.candidates / f"{kind}.pkl"


def report_path(paths: DataPaths, kind: str):
    return paths.candidates / f"{kind}.report.json"


def dataset_context(path, rows: int) -> dict:
    """What a report says about the data it came from (demo or real, timezone)."""
    meta = parquet_metadata(path)
    origins = [o for o in meta.get(ORIGINS_KEY, "").split(",") if o]
    return {
        "generated_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "demo_data": any(o.startswith("demo") for o in origins),
        "origins": origins,
        "timezone": meta.get(TIMEZONE_KEY),
        "dataset_rows": rows,
    }


def model_in_use(path, kind: str) -> tuple[dict | None, str | None]:
    """The promoted bundle, or None and why (absent, or refused by the checksum check)."""
    if not path.exists():
        return None, "no model in use yet"
    try:
        return load_model(path, kind), None
    except ModelRefused as exc:
        return None, f"the file in use was refused and is not compared: {exc}"


def store_outcome(paths: DataPaths, kind: str, target, outcome: Outcome, log) -> dict:
    """Write the candidate (always, when one was trained) and its report; put in service what the
    gate chose: the candidate (promoted), the model in use (kept), or a baseline (the model in use,
    if any, is retired to `.previous`)."""
    cand = candidate_path(paths, kind)
    report = dict(outcome.report)
    decision = report["decision"]
    if outcome.bundle is None:
        for stale in (cand, sidecar_path(cand)):  # a skipped run leaves no older candidate to confuse
            stale.unlink(missing_ok=True)
    else:
        report["candidate"]["sha256"] = save_model(outcome.bundle, cand, kind)
    serving = decision["serving"]
    if decision["promoted"]:
        report["candidate"]["promoted_sha256"] = promote(cand, target, kind)
    elif serving["kind"] == "baseline" and target.exists():
        decision["retired_model_in_use"] = retire(target, kind)
    report["served"] = {"kind": serving["kind"], "name": serving["name"], "version": sidecar_version(target) if serving["kind"] == "model" and target.exists() else None}
    if not decision["promoted"]:
        log.warning(f"{kind}: {report['summary']}")
    write_json(report, report_path(paths, kind))
    return report


def classifier_metadata(report: dict, target) -> dict:
    decision = report["decision"]
    meta = {
        "status": report["status"],
        "promoted": decision["promoted"],
        "decision": report["summary"],
        "serving": f"{report['served']['kind']}: {report['served']['name']}",
        "demo_data": report.get("demo_data", False),
        "dataset_rows": report.get("dataset_rows", 0),
        "path": dg.MetadataValue.path(str(target)),
    }
    if report["status"] == "trained":
        best = decision["best_baseline"]
        vs_best = [a for a in report["evidence"] if a["role"] == "candidate_vs_baseline" and a["best"]]
        meta.update(
            {
                "candidate": report["candidate"]["name"],
                "candidate_log_loss": decision["candidate"],
                "best_baseline": best,
                "best_baseline_log_loss": decision["best_baseline_value"],
                "folds": report["backtest"]["folds"],
                "test_rows": report["window"]["test"]["rows"],
                "train_rows": report["candidate"].get("train_rows", 0),
                "trees": report["candidate"]["trees"] or 0,
                "evidence": table(pd.DataFrame(vs_best)[["metric", "rival", "difference", "low", "high", "clear"]]),
            }
        )
        for a in vs_best:  # numeric on every run: the UI plots them
            meta[f"{a['metric']}_difference_high"] = a["high"]
    return meta


def gate_result(paths: DataPaths, kind: str, target) -> dg.AssetCheckResult:
    """Passed when the newest candidate was promoted; WARN with the reasons when the model in use or
    a baseline serves instead; ERROR (blocking what depends on the model) when the file in use
    cannot be trusted."""
    path = report_path(paths, kind)
    try:
        report = read_json(path, None)
    except CorruptFileError as exc:
        report, problem = None, str(exc)
    else:
        problem = None
    in_use_state = "absent"
    if target.exists():
        try:
            verify_model(target, kind)
            in_use_state = "verified"
        except ModelRefused as exc:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description=f"the model in use cannot be trusted: {exc}",
                metadata={"model_in_use": "refused", "reason": str(exc)},
            )
    if report is None:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=problem or f"no training report yet ({path.name}): materialize {kind}",
            metadata={"model_in_use": in_use_state},
        )
    decision = report["decision"]
    metadata = {
        "promoted": decision["promoted"],
        "serving": f"{decision['serving']['kind']}: {decision['serving']['name']}",
        "model_in_use": in_use_state,
        "reasons": "; ".join(decision["reasons"]) or "none",
        "report": dg.MetadataValue.path(str(path)),
    }
    if report["status"] == "trained":
        metadata.update(
            {
                "metric": decision["metric"],
                "candidate": decision["candidate"],
                "best_baseline": f"{decision['best_baseline']} ({decision['best_baseline_value']})",
                "model_in_use_score": decision["model_in_use"],
                "model_in_use_note": decision["model_in_use_note"],
            }
        )
    return dg.AssetCheckResult(
        passed=bool(decision["promoted"]),
        severity=dg.AssetCheckSeverity.WARN,
        description=report["summary"],
        metadata=metadata,
    )


def model_summary(report: dict) -> dict:
    """The few numbers of a report that metrics_history.json keeps per run."""
    decision = report["decision"]
    summary = {"status": report["status"], "promoted": decision["promoted"], "summary": report["summary"], "served": report.get("served")}
    if report["status"] == "trained":
        summary.update(
            {
                "trained_at": report["candidate"].get("trained_at"),
                "candidate": report["candidate"]["name"],
                "primary_metric": report["primary_metric"],
                "test": {k: v for k, v in report["candidate"]["test"].items() if not isinstance(v, dict)},
                "best_baseline": decision["best_baseline"],
                "best_baseline_value": decision["best_baseline_value"],
                "beats_all_baselines": report["beats_all_baselines"],
                "model_in_use_value": decision["model_in_use"],
                "window": report["window"],
            }
        )
    return summary


def publish_evaluation(context: dg.AssetExecutionContext, paths: DataPaths, kind: str, out_path, entry_key: str, history_stats: dict) -> dict:
    """Copy the newest report to metrics/, and record this run in metrics_history.json."""
    source = report_path(paths, kind)
    if not source.exists():
        raise dg.Failure(f"no training report at {source}: materialize {kind} first")
    report = read_json(source)
    report["published_at"] = pd.Timestamp.now(tz="UTC").isoformat()
    write_json(report, out_path)
    entries = read_json(paths.metrics_history, [])
    if not isinstance(entries, list):
        raise CorruptFileError(f"{paths.metrics_history} is not a list of run entries")
    drift = read_json(paths.drift_report, None)
    updates = {
        **history_stats,
        "demo_data": report.get("demo_data", False),
        entry_key: model_summary(report),
    }
    entries = upsert_run_entry(entries, context.run.run_id, updates, drift_summary(drift) if drift else None)
    write_json(entries, paths.metrics_history)
    return report


def evaluation_result(
    context: dg.AssetExecutionContext, paths: DataPaths, kind: str, out_path, entry_key: str, metrics: list[str]
) -> tuple[dict, dict]:
    """Publish the newest report of `kind`; (report, the metadata both evaluation assets show)."""
    with writer_lock(paths.lock):
        hist = history_or_empty(paths)
        stats = {"num_tracks": len(hist), "num_sessions": int(hist["session_id"].nunique()) if len(hist) else 0}
        report = publish_evaluation(context, paths, kind, out_path, entry_key, stats)
    meta = {
        "status": report["status"],
        "promoted": report["decision"]["promoted"],
        "summary": report["summary"],
        "demo_data": report.get("demo_data", False),
        "path": dg.MetadataValue.path(str(out_path)),
    }
    if report["status"] == "trained":
        test = report["candidate"]["test"]
        meta.update({f"test_{m}": test[m] for m in metrics})
        meta["candidate"] = report["candidate"]["name"]
        meta["beats_all_baselines"] = report["beats_all_baselines"]
        meta["scores"] = scores_md(report, metrics)
        meta["folds"] = folds_md(report)
        meta["comparison"] = comparison_md(report)
        candidate = report["candidate"]["name"]
        meta["reliability"] = table(pd.DataFrame(report["reliability"][candidate]))
    return report, meta


def drift_summary(drift: dict) -> dict:
    return {"generated_at": drift.get("generated_at"), "drift_detected": drift.get("drift_detected"), "flagged": drift.get("flagged", [])}


def comparison_md(report: dict) -> dg.MetadataValue:
    rows = pd.DataFrame(report["comparison"])
    if len(rows):
        rows["model_beats"] = rows["model_beats"].map({True: "yes", False: "**no**", None: "n/a"})
    return table(rows, max_rows=60)


def scores_md(report: dict, metrics: list[str]) -> dg.MetadataValue:
    """Every scorer over all folds: recipes, the model in use's recipe, baselines."""
    scorers = {f"recipe: {k}": v["test"] for k, v in report["recipes"].items()}
    if report["model_in_use"]["test"]:
        scorers["model in use (its recipe)"] = report["model_in_use"]["test"]
    scorers.update({f"baseline: {k}": v for k, v in report["baselines"].items()})
    df = pd.DataFrame([{"scored": name, **{m: values.get(m) for m in ["rows"] + metrics}} for name, values in scorers.items()])
    return table(df)


def folds_md(report: dict) -> dg.MetadataValue:
    candidate, best = report["candidate"]["name"], report["decision"]["best_baseline"]
    rows = [
        {"fold": f["fold"], "cut": f["cut"][:16], "train_rows": f["train_rows"], "test_rows": f["test_rows"],
         f"{candidate} log_loss": f["scores"][candidate]["log_loss"], f"{best} log_loss": f["scores"][best]["log_loss"]}
        for f in report["folds"]
    ]
    return table(pd.DataFrame(rows))
