"""What the two classifier assets share: their knobs, training with the promotion gate, the gate
check, and publishing an evaluation report."""

from typing import Optional

import dagster as dg
import pandas as pd

from ..ml.classifiers import GateSettings, Outcome
from ..ml.evaluation import upsert_run_entry
from ..ml.model_store import ModelRefused, load_model, promote, save_model, sidecar_path, verify_model
from ..ml.training import XGBSettings
from ..plays.store import history_or_empty
from ..storage.files import CorruptFileError, parquet_metadata, read_json, write_json, writer_lock
from ..storage.paths import DataPaths
from .common import md_table

ORIGINS_KEY = "spotify_brain.origins"
TIMEZONE_KEY = "spotify_brain.timezone"


class ClassifierConfig(dg.Config):
    """XGBoost (the predecessor's settings), the time split and the promotion gate."""

    n_estimators: int = 100
    max_depth: int = 6
    learning_rate: float = 0.1
    seed: int = 42
    early_stopping_rounds: int = 10  # on a validation slice carved from the training period's end
    n_jobs: int = 1  # XGBoost threads; one is fastest for these small sets on a shared 2-core box
    test_fraction: float = 0.2  # the newest share of rows, held out for evaluation and the gate
    validation_fraction: float = 0.1  # the newest share of the training period, for early stopping
    min_train_rows: int = 50
    min_test_rows: int = 10
    tolerance: float = 0.0  # how much worse than the model in use a candidate may be and still win

    def xgb(self) -> XGBSettings:
        return XGBSettings(self.n_estimators, self.max_depth, self.learning_rate, self.seed, self.early_stopping_rounds, self.n_jobs)

    def gate(self, metric: str, window_days: Optional[int]) -> GateSettings:
        return GateSettings(metric, self.tolerance, self.test_fraction, self.validation_fraction, window_days, self.min_train_rows, self.min_test_rows)


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
    """Write the candidate (always, when one was trained) and its report; promote when it won."""
    cand = candidate_path(paths, kind)
    report = dict(outcome.report)
    if outcome.bundle is None:
        for stale in (cand, sidecar_path(cand)):  # a skipped run leaves no older candidate to confuse
            stale.unlink(missing_ok=True)
    else:
        report["candidate"]["sha256"] = save_model(outcome.bundle, cand, kind)
        if report["decision"]["promoted"]:
            report["candidate"]["promoted_sha256"] = promote(cand, target, kind)
    if not report["decision"]["promoted"]:
        log.warning(f"{kind}: {report['decision']['summary']}")
    write_json(report, report_path(paths, kind))
    return report


def classifier_metadata(report: dict, target) -> dict:
    decision = report["decision"]
    meta = {
        "status": report["status"],
        "promoted": decision["promoted"],
        "decision": decision["summary"],
        "demo_data": report.get("demo_data", False),
        "dataset_rows": report.get("dataset_rows", 0),
        "path": dg.MetadataValue.path(str(target)),
    }
    if report["status"] == "trained":
        metric = report["primary_metric"]
        meta.update(
            {
                f"candidate_{metric}": report["candidate"]["test"][metric],
                f"best_baseline_{metric}": decision["best_baseline_value"],
                "best_baseline": decision["best_baseline"] or "none",
                "model_in_use_compared": decision["model_in_use"] is not None,
                "best_iteration": report["candidate"]["best_iteration"],
                "train_rows": report["window"]["train"]["rows"],
                "test_rows": report["window"]["test"]["rows"],
                "test_window": f"{report['window']['test']['start']} .. {report['window']['test']['end']}",
            }
        )
    return meta


def gate_result(paths: DataPaths, kind: str, target) -> dg.AssetCheckResult:
    """Passed when the newest candidate was promoted; WARN with the reasons when the model in use
    stayed; ERROR (blocking what depends on the model) when the file in use cannot be trusted."""
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
        "model_in_use": in_use_state,
        "reasons": "; ".join(decision["reasons"]) or "none",
        "report": dg.MetadataValue.path(str(path)),
    }
    if report["status"] == "trained":
        metric = report["primary_metric"]
        metadata.update(
            {
                "metric": metric,
                "candidate": decision["candidate"],
                "best_baseline": f"{decision['best_baseline']} ({decision['best_baseline_value']})",
                "model_in_use_score": decision["model_in_use"],
                "model_in_use_note": decision["model_in_use_note"] or "compared on the same window",
            }
        )
    return dg.AssetCheckResult(
        passed=bool(decision["promoted"]),
        severity=dg.AssetCheckSeverity.WARN,
        description=decision["summary"],
        metadata=metadata,
    )


def model_summary(report: dict) -> dict:
    """The few numbers of a report that metrics_history.json keeps per run."""
    decision = report["decision"]
    summary = {"status": report["status"], "promoted": decision["promoted"], "summary": decision["summary"]}
    if report["status"] == "trained":
        test = {k: v for k, v in report["candidate"]["test"].items() if not isinstance(v, dict)}
        summary.update(
            {
                "trained_at": report["candidate"]["trained_at"],
                "primary_metric": report["primary_metric"],
                "test": test,
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
        "decision": report["decision"]["summary"],
        "demo_data": report.get("demo_data", False),
        "path": dg.MetadataValue.path(str(out_path)),
    }
    if report["status"] == "trained":
        test = report["candidate"]["test"]
        meta.update({f"test_{m}": test[m] for m in metrics})
        meta["beats_all_baselines"] = report["beats_all_baselines"]
        meta["verdicts"] = dg.MetadataValue.md("\n".join(f"- the model {v}" for v in report["verdicts"]))
        meta["metrics"] = metrics_md(report, metrics)
        meta["comparison"] = comparison_md(report)
    return report, meta


def drift_summary(drift: dict) -> dict:
    return {"generated_at": drift.get("generated_at"), "drift_detected": drift.get("drift_detected"), "flagged": drift.get("flagged", [])}


def comparison_md(report: dict) -> dg.MetadataValue:
    rows = pd.DataFrame(report["comparison"])
    if len(rows):
        rows["model_beats"] = rows["model_beats"].map({True: "yes", False: "**no**", None: "n/a"})
    return md_table(rows, max_rows=60)


def metrics_md(report: dict, metrics: list[str]) -> dg.MetadataValue:
    table = {"candidate (train)": report["candidate"]["train"], "candidate (held-out)": report["candidate"]["test"]}
    if report["model_in_use"]["test"]:
        table["model in use (held-out)"] = report["model_in_use"]["test"]
    table.update({f"baseline: {k}": v for k, v in report["baselines"].items()})
    df = pd.DataFrame([{"scored": name, **{m: values.get(m) for m in ["rows"] + metrics}} for name, values in table.items()])
    return md_table(df)
