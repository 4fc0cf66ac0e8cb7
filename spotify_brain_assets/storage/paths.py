"""The data root's layout. File names here are contracts: users, tests and later stages rely on them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "SPOTIFY_BRAIN_DATA_DIR"
DEFAULT_DATA_DIR = "data"
INGESTION_KEY_RE = re.compile(r"^\d{8}_\d{6}$")
INGESTION_FILE_RE = re.compile(r"^ingestion_(\d{8}_\d{6})\.parquet$")


def data_root_from_env() -> str:
    return os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR


def listener_root(root: str | os.PathLike, name: str) -> Path:
    """A household listener's data root inside the deployment's: `<data root>/listeners/<name>/`."""
    return Path(root).expanduser() / "listeners" / name


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike) -> "DataPaths":
        return cls(Path(root).expanduser().resolve())

    # the predecessor's names
    @property
    def ingestions(self) -> Path:
        return self.root / "ingestions"

    @property
    def history(self) -> Path:
        return self.root / "history.parquet"

    @property
    def processed(self) -> Path:
        return self.root / "processed"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def export(self) -> Path:
        return self.root / "export"

    # ours
    @property
    def plays(self) -> Path:
        """Merged, sessionized plays without mood clusters: the layer under history."""
        return self.root / "plays.parquet"

    @property
    def plays_ledger(self) -> Path:
        """Which ingestion files (and which version of each) `plays` has merged."""
        return self.root / "plays_ledger.json"

    @property
    def history_previous(self) -> Path:
        """The history before its latest materialization, for the "no play lost" check."""
        return self.root / "history.previous.parquet"

    @property
    def pending_features(self) -> Path:
        """Plays waiting for audio features; retried by later ingestions."""
        return self.root / "pending_features.parquet"

    @property
    def unavailable_features(self) -> Path:
        """Plays whose audio features never arrived: recorded, never silently dropped."""
        return self.root / "unavailable_features.parquet"

    @property
    def features_cache(self) -> Path:
        """Audio features by track id, so that no track is fetched twice."""
        return self.root / "cache" / "audio_features.parquet"

    @property
    def mood_clusters(self) -> Path:
        return self.models / "mood_clusters.json"

    # the ML layer (the first four are the predecessor's names)
    @property
    def mood_dataset(self) -> Path:
        return self.processed / "mood_nexttrack_train.parquet"

    @property
    def session_dataset(self) -> Path:
        return self.processed / "session_start_train.parquet"

    @property
    def mood_classifier(self) -> Path:
        """The promoted (in use) model; `<name>.sha256.json` beside it vouches for it."""
        return self.models / "mood_classifier.pkl"

    @property
    def session_classifier(self) -> Path:
        return self.models / "session_classifier.pkl"

    @property
    def candidates(self) -> Path:
        """The latest trained candidates and their evaluation reports, promoted or not."""
        return self.models / "candidates"

    @property
    def mood_evaluation(self) -> Path:
        return self.metrics / "mood_evaluation.json"

    @property
    def session_evaluation(self) -> Path:
        return self.metrics / "session_evaluation.json"

    @property
    def metrics_history(self) -> Path:
        return self.metrics / "metrics_history.json"

    @property
    def drift_report(self) -> Path:
        return self.metrics / "drift_report.json"

    @property
    def predictions(self) -> Path:
        """The current outlook (next mood, today's session-start hours) for the dashboard."""
        return self.processed / "predictions.json"

    @property
    def predictions_log(self) -> Path:
        """Every prediction served, append-only, with the baselines beside it (online evaluation)."""
        return self.metrics / "predictions_log.parquet"

    @property
    def prediction_scores(self) -> Path:
        """The logged predictions scored against what happened, per day and over 7/14/30 days."""
        return self.metrics / "prediction_scores.json"

    @property
    def dashboard_json(self) -> Path:
        """The dashboard's data, the contract with the owner's website (the predecessor's name)."""
        return self.export / "dashboard_data.json"

    @property
    def dashboard_page(self) -> Path:
        """The self-contained dashboard page rendering dashboard_data.json."""
        return self.export / "index.html"

    @property
    def imports(self) -> Path:
        """Where a user puts Spotify's data export (the zip or its JSON files) to import it."""
        return self.root / "imports"

    @property
    def export_plays(self) -> Path:
        """Every play imported from Spotify's data export, with the export's extra columns."""
        return self.processed / "export_plays.parquet"

    @property
    def export_unidentified(self) -> Path:
        """Account-data plays the import could not tie to one track id: reported, never guessed."""
        return self.processed / "export_unidentified.parquet"

    @property
    def export_state(self) -> Path:
        """The last import's files and status (complete, or paused with tracks still to fetch)."""
        return self.processed / "export_import.json"

    @property
    def replaced_plays(self) -> Path:
        """Imported plays replaced by the API's record of the same play (kept for the record)."""
        return self.root / "replaced_plays.parquet"

    @property
    def quarantine(self) -> Path:
        """Files that could not be read, moved aside with a JSON sidecar saying why (bytes kept)."""
        return self.root / "quarantine"

    @property
    def ingestion_gaps(self) -> Path:
        """Spans whose plays fell out of Spotify's 50-play window before a run could fetch them."""
        return self.metrics / "ingestion_gaps.json"

    @property
    def lock(self) -> Path:
        return self.root / ".writer.lock"

    @property
    def root_marker(self) -> Path:
        """The data root's id, stamped when steps run on workers, which check they see this root."""
        return self.root / ".spotify_brain_root.json"

    def ingestion_file(self, key: str) -> Path:
        if not INGESTION_KEY_RE.match(key):
            raise ValueError(f"ingestion partition key {key!r} is not of the form YYYYMMDD_HHMMSS")
        return self.ingestions / f"ingestion_{key}.parquet"

    def ingestion_files(self) -> dict[str, Path]:
        """Ingestion files on disk by partition key, in key (= time) order."""
        if not self.ingestions.is_dir():
            return {}
        found = {}
        for entry in os.scandir(self.ingestions):
            match = INGESTION_FILE_RE.match(entry.name)
            if match and entry.is_file():
                found[match.group(1)] = Path(entry.path)
        return dict(sorted(found.items()))
