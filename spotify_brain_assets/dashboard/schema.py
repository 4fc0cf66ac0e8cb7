"""dashboard_data.json's schema: pydantic models, checked on every write.

The models are the one source of the schema: `dashboard.schema.json` beside this file is generated
from them for the website and other readers (`python -m spotify_brain_assets.dashboard.schema_file`
rewrites it; a test fails while it is out of date). `write_dashboard_json` validates the exact text
it is about to write, so a document that breaks the schema names its fields and is never written.

Validation is strict, as a JSON Schema validator would be: no string is read as a number, no number
as a boolean. Objects accept keys the schema does not name unless they are closed (`extra="forbid"`);
a field typed `X | MISSING` may be absent but is never null.
"""

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import MISSING, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema

from ..storage.files import json_text, write_text

SCHEMA_FILE = Path(__file__).with_name("dashboard.schema.json")
SCHEMA_VERSION = 1
ERRORS_SHOWN = 10

Probability = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
Minutes = Annotated[float, Field(ge=0)]
Hour = Annotated[int, Field(ge=0, le=23)]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")]
Date = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
#: a probability per local hour, keyed "0" to "23"
Hours = Annotated[
    dict[Annotated[str, Field(pattern=r"^([0-9]|1[0-9]|2[0-3])$")], Probability],
    Field(json_schema_extra={"additionalProperties": False}),
]
ValFigure = Annotated[
    Probability | None,
    Field(description="a held-out figure: the candidate's pooled score on the rolling-origin backtest's test windows "
          "(older evaluations: on the held-out time window); null where the evaluation has none"),
]


class Part(BaseModel):
    # built on the first check, not when the definitions import this module
    model_config = ConfigDict(strict=True, defer_build=True)


class Closed(Part):
    model_config = ConfigDict(extra="forbid")


# --- moods and tracks ------------------------------------------------------------------------------


class Centroid(Closed):
    valence: float
    energy: float
    danceability: float
    acousticness: float
    instrumentalness: float
    tempo_norm: float


class MoodProbability(Part):
    mood_cluster_id: int
    mood_label: str
    probability: Probability


class Track(Part):
    track_id: str
    track_name: str
    artist_name: str
    url: str | MISSING = MISSING
    image_url: str | None = Field(
        description="for the predecessor's website: the album image history holds for the track, else null",
    )


class NextPrediction(Part):
    available: bool
    mood_cluster_id: int | None
    mood_label: str | None
    confidence: Probability | None
    cluster_centroid: Centroid | None
    probabilities: list[MoodProbability]
    recommended_tracks: list[Track]
    note: str | None = Field(None, description="who guessed, or why there is no guess, in plain words")
    reason: str | None = Field(None, description="the predictions' own technical reason, shown behind a toggle")
    # the predecessor website's keys (dashboard/website.py): always present, null where unknown
    mood_distribution: list[MoodProbability] = Field(
        description="for the predecessor's website: the ranked directions (the same as probabilities)",
    )
    prediction_source: Annotated[str, Field(pattern=r"^model$|_baseline$")] | None = Field(
        description="what serves, as the gate decided: model, or <name>_baseline (majority_baseline, "
                    "persistence_baseline, markov_1_baseline, …)",
    )
    confidence_kind: Literal["uncalibrated_model_probability", "estimated_baseline_probability"] | None
    model_version: str | None = Field(
        description="the serving model's version (the first 12 hex digits of its sha256); null when a baseline serves",
    )
    validation_reliability: Probability | None = Field(description="held-out (backtest) accuracy of what serves")
    validation_log_loss: Annotated[float, Field(ge=0)] | None = Field(
        description="held-out (backtest) log loss of what serves",
    )
    predictability: Literal["high", "medium", "low"] | None = Field(
        description="normalized entropy below 0.5: high, below 0.8: medium, else low",
    )
    normalized_entropy: Probability | None
    abstained: bool | None = Field(
        description="true when the distribution is too uncertain to show a direction: normalized entropy above 0.9 or top "
                    "probability below 0.3; null without a prediction",
    )
    switch_probability: Probability | None = Field(description="chance the next track leaves the newest play's mood")
    context_level: Literal["seq3", "seq2", "last", "global"] | None = Field(
        description="how many recent moods the answer is conditioned on (3+, 2, 1, none)",
    )
    recent_window_size: Count | None


class TopHour(Part):
    hour: Hour
    probability: Probability


class MoodCluster(Part):
    cluster_id: int
    label: str
    centroid: Centroid
    plays: Count
    share: Probability


class TrajectoryBin(Part):
    time: Timestamp
    valence: float
    energy: float
    plays: Annotated[int, Field(ge=1)]


class RecentPlay(Part):
    track_id: str
    track_name: str
    artist_name: str
    played_at: Timestamp
    image_url: str
    mood_cluster_id: int
    mood_label: str | None


# --- models, baselines, evaluations -----------------------------------------------------------------


class WebsiteMoodModel(Part):
    """the predecessor website's mood_model figures (dashboard/website.py); train_* are in-sample, null for
    backtest evaluations (they score no training rows)"""

    train_accuracy: Probability | None
    val_accuracy: ValFigure
    train_f1_macro: Probability | None
    val_f1_macro: ValFigure
    train_roc_auc: Probability | None
    val_roc_auc: ValFigure
    majority_val_accuracy: ValFigure
    persistence_val_accuracy: ValFigure
    model_beats_baseline: bool | None = Field(
        description="val_accuracy above both majority and persistence (the predecessor's meaning; the gate's verdict is "
                    "under baselines.mood)",
    )


class HourBucket(Part):
    pr_auc: Probability | None
    roc_auc: Probability | None
    n_samples: Count | None
    n_positive: Count | None


class PerHourMetrics(Part):
    morning: HourBucket
    afternoon: HourBucket
    evening: HourBucket
    night: HourBucket


class WebsiteSessionModel(Part):
    """the predecessor website's session_model figures (dashboard/website.py); val_* and the baselines' are
    held-out (backtest) figures; per_hour_metrics are null where the evaluation has no time-of-day breakdown"""

    train_roc_auc: Probability | None
    val_roc_auc: ValFigure
    val_pr_auc: ValFigure
    val_f1: ValFigure
    calibration_error: ValFigure
    baseline_neg_pr_auc: ValFigure = Field(description="always-negative's PR-AUC: the held-out positive rate")
    baseline_hist_pr_auc: ValFigure = Field(description="the hour-of-day prior's PR-AUC")
    model_beats_neg: bool | None
    model_beats_hist: bool | None
    per_hour_metrics: PerHourMetrics


class LatestMetrics(Part):
    """the newest run entry of metrics_history.json (our keys), always an object: the predecessor's website
    reads num_tracks, num_sessions, run_at and the figures below (null before any evaluation)"""

    run_at: str | None
    num_tracks: Count
    num_sessions: Count
    mood_model: WebsiteMoodModel
    session_model: WebsiteSessionModel


class Metrics(Part):
    latest: LatestMetrics
    history: Annotated[list[dict[str, Any]], Field(max_length=10)]


class Comparison(Part):
    metric: str
    model: float | None
    baselines: dict[str, float | None]
    beats: dict[str, bool | None]


class Baselines(Part):
    mood: Comparison | None
    session: Comparison | None


class MetricName(Part):
    key: str
    label: str


class DetailRow(Part):
    name: str
    key: str
    values: dict[str, float | None]


class Details(Part):
    """the technical figures behind the page's details toggle"""

    primary_metric: str | None
    metrics: list[MetricName]
    rows: list[DetailRow]
    test_rows: int | None = None
    test_start: str | None = None
    test_end: str | None = None


class Model(Part):
    available: bool
    version: str | None
    trained_at: Timestamp | None
    promoted: bool | None = None
    note: str | None = Field(None, description="the same sentence as summary")
    title: str
    summary: str = Field(description="what the model guesses and who makes the guesses now, in plain words")
    serving: Literal["model", "rule", "nothing"]
    details: Details | None


class Models(Part):
    mood: Model
    session: Model


# --- freshness, gaps, drift, live quality ---------------------------------------------------------


class NextRuns(Part):
    """when the next runs start; known only while Dagster's daemon runs their sensor and schedule"""

    update: Timestamp | None
    full_retrain: Timestamp | None


class Freshness(Part):
    last_play: Timestamp | None
    last_ingestion: Timestamp | None
    pending_features: Count
    unavailable_features: Count
    stale: bool
    stale_after_hours: float | MISSING = MISSING
    next_runs: NextRuns | MISSING = MISSING


class Gap(Closed):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    estimated_plays: Count
    plays_in_history: Count = Field(
        description="plays history holds strictly between from and to now: 0 until an import fills the gap",
    )
    detected_at: Timestamp


class DriftFlag(Part):
    metric: str
    change: float | None
    detail: str | MISSING = MISSING
    label: str | MISSING = MISSING
    hour: Hour | MISSING = MISSING
    percent: bool | MISSING = MISSING
    reference: float | None = None
    current: float | None = None


class DriftWindows(Part):
    current_days: int
    reference_days: int


class Drift(Part):
    available: bool
    generated_at: Timestamp | None = None
    flags: list[DriftFlag]
    windows: DriftWindows | None = None
    report: dict[str, Any] | None = None


class Live(Part):
    metric: Literal["log_loss"]
    model: float | None
    best_baseline: str | None
    baseline: float | None
    n_scored: Count
    beats_baseline: bool | None
    summary: str | MISSING = Field(MISSING, description="the same in plain words, shown under the models")


class LiveQuality(Part):
    """the served predictions scored against what happened (metrics/prediction_scores.json), per task; null
    before any is scored"""

    window: str
    next_mood: Live | None
    session_start: Live | None


# --- listening stats and the yearly recap -----------------------------------------------------------


class TopArtist(Closed):
    artist_name: str
    plays: Count
    minutes: Minutes
    image_url: str | None = Field(description="the newest artwork of the artist's plays")


class TopTrack(Closed):
    track_id: str
    track_name: str
    artist_name: str
    plays: Count
    minutes: Minutes
    image_url: str | None


class TopMood(Part):
    mood_cluster_id: int
    mood_label: str
    plays: Count
    minutes: Minutes
    share: Probability | MISSING = MISSING


class Summary(Part):
    """what was listened to in a range or a year; minutes are measured (export), the track's length, or
    estimated from the gap to the previous play (estimated_share)"""

    minutes: Minutes
    estimated_share: Probability
    plays: Count
    tracks: Count
    artists: Count
    top_artists: Annotated[list[TopArtist], Field(max_length=10)]
    top_tracks: Annotated[list[TopTrack], Field(max_length=10)]
    top_moods: list[TopMood]
    clock: Annotated[list[Count], Field(min_length=24, max_length=24, description="plays per local hour, 0 to 23")]


class Range(Summary):
    label: str
    start: Timestamp | None
    end: Timestamp


class Ranges(Closed):
    last_7_days: Range = Field(alias="7d")
    last_4_weeks: Range = Field(alias="4w")
    last_12_months: Range = Field(alias="12m")
    all: Range


class Calendar(Part):
    """plays and minutes per local day, from start to end (the last 365 days)"""

    start: Date
    end: Date
    plays: list[Count]
    minutes: list[Count]


class Stats(Part):
    ranges: Ranges
    calendar: Calendar


class MoodOfYear(TopMood):
    share: Probability


class MonthMood(Part):
    mood_cluster_id: int
    plays: Count


class MonthMoods(Part):
    month: Annotated[int, Field(ge=1, le=12)]
    plays: Count
    moods: list[MonthMood]


class BusiestDay(Part):
    date: Date
    plays: Count
    minutes: Minutes


class LongestSession(Part):
    start: Timestamp
    end: Timestamp
    plays: Count
    minutes: Minutes


class NewArtist(Part):
    artist_name: str
    plays: Count


class NewArtists(Part):
    count: Count
    top: Annotated[list[NewArtist], Field(max_length=5)]


class HabitHour(Part):
    hour: Hour
    plays: Count
    share: Probability


class RecapYear(Summary):
    year: int
    in_progress: bool
    first_year: bool = Field(description="the first year with plays: every artist in it is new")
    first_day: Date
    last_day: Date
    top_artists: Annotated[list[TopArtist], Field(max_length=5)]
    top_tracks: Annotated[list[TopTrack], Field(max_length=5)]
    mood_of_year: MoodOfYear | None
    moods_by_month: Annotated[list[MonthMoods], Field(max_length=12)]
    busiest_day: BusiestDay
    longest_session: LongestSession
    new_artists: NewArtists
    habit_hours: Annotated[list[HabitHour], Field(max_length=3)]


class Recap(Part):
    years: list[RecapYear] = Field(description="one entry per calendar year with plays, newest first")


# --- the document ----------------------------------------------------------------------------------


class DashboardData(Closed):
    model_config = ConfigDict(
        title="Spotify Brain dashboard data (export/dashboard_data.json)",
        json_schema_extra={"$schema": GenerateJsonSchema.schema_dialect, "$id": "https://spotify-brain.invalid/dashboard.schema.json"},
    )

    schema_version: Literal[SCHEMA_VERSION]
    generated_at: Timestamp
    as_of: Timestamp = Field(
        description="the listener's clock the predictions refer to (a frozen demo clock may differ from generated_at)",
    )
    timezone: Annotated[str, Field(min_length=1)]
    is_demo: bool
    next_prediction: NextPrediction
    session_probs: Hours
    top_hours: Annotated[list[TopHour], Field(max_length=3)]
    session_actual: Hours
    session_start_share: Hours = Field(description="share of all past sessions that started in each local hour (sums to 1)")
    mood_clusters: list[MoodCluster]
    mood_trajectory: list[TrajectoryBin]
    recently_played: Annotated[list[RecentPlay], Field(max_length=25)]
    metrics: Metrics
    baselines: Baselines
    models: Models
    freshness: Freshness
    gaps: list[Gap] = Field(
        description="spans whose plays fell out of Spotify's 50-play window unseen (metrics/ingestion_gaps.json); a "
                    "data-export import can fill them",
    )
    drift: Drift
    live_quality: LiveQuality
    stats: Stats
    recap: Recap


# --- validation and the schema file ----------------------------------------------------------------


class DashboardSchemaError(ValueError):
    """A built dashboard breaks its schema; it is not written."""


def _where(loc: tuple) -> str:
    """("stats", "ranges", "7d", "clock", 3) → "stats.ranges.7d.clock[3]"."""
    path = "".join(f"[{p}]" if isinstance(p, int) else " (the key)" if p == "[key]" else f".{p}" for p in loc)
    return path.lstrip(".") or "the document"


def _problem(error: dict) -> str:
    if error["type"] == "missing":
        return f"  {_where(error['loc'])}: missing"
    return f"  {_where(error['loc'])}: {error['msg']} (got {json.dumps(error['input'], default=str)[:80]})"


def dashboard_json(doc: dict) -> str:
    """The text of dashboard_data.json for `doc`, once it passes the schema; else DashboardSchemaError
    naming each field that breaks it."""
    text = json_text(doc)
    try:
        DashboardData.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        shown = "\n".join(_problem(e) for e in errors[:ERRORS_SHOWN])
        more = f"\n  … and {len(errors) - ERRORS_SHOWN} more" if len(errors) > ERRORS_SHOWN else ""
        raise DashboardSchemaError(
            f"the dashboard breaks its schema (spotify_brain_assets/dashboard/schema.py) in {len(errors)} place(s), "
            f"so it is not written:\n{shown}{more}"
        ) from None
    return text


def write_dashboard_json(doc: dict, path: Path) -> None:
    """Validate `doc` and write it atomically; a document that breaks the schema leaves `path` as it was."""
    write_text(dashboard_json(doc), path)


class _NoFieldTitles(GenerateJsonSchema):
    def field_title_should_be_set(self, schema) -> bool:
        return False  # every field's title would repeat its name


def json_schema() -> dict:
    schema = DashboardData.model_json_schema(schema_generator=_NoFieldTitles)
    return {key: schema.pop(key) for key in ("$schema", "$id", "title", "description") if key in schema} | schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"

