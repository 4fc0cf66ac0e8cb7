"""What the assets share: the ingestion partitions, the writer pool, the retry policy, metadata helpers."""

import functools
import inspect
from pathlib import Path
from typing import Any, Callable

import dagster as dg
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from ..dashboard.deploy import PushFailed
from ..sources.http import QuotaExceeded, RateLimited, ServiceFailing

INGESTION_PARTITIONS = dg.DynamicPartitionsDefinition(name="ingestions")
#: every asset that writes under the data root runs in this pool (limit 1 in dagster.yaml)
WRITER_POOL = "spotify_brain_writer"
#: queued runs carrying this tag are limited to one at a time (dagster.yaml)
WRITER_RUN_TAGS = {"spotify_brain/writes": "data_root"}

#: a step that talks to the network runs again when a service stays down longer than the HTTP clients'
#: own retries wait (120 s per client and run): 3 more attempts, about 20 s, 1 min and 2⅓ min later (±20 s)
NETWORK_RETRY = dg.RetryPolicy(max_retries=3, delay=20, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
#: what a later attempt can cure: 5xx answers, network errors, timeouts, rate limits (not a spent quota),
#: a website push that failed
TRANSIENT_ERRORS = (ServiceFailing, RateLimited, PushFailed)


def retried_on_network_errors(fn: Callable) -> Callable:
    """Retry the asset's step per `NETWORK_RETRY`, for `TRANSIENT_ERRORS` only.

    Not the asset's `retry_policy`: that retries every error (an expired token or a bad file is the
    same on every attempt) and turns Ctrl-C or a terminated run into a retry. `dg.RetryRequested`
    is Dagster's way to retry chosen errors.
    """

    def retry(exc: Exception) -> Exception:
        if isinstance(exc, QuotaExceeded):
            return exc
        attempt = dg.AssetExecutionContext.get().retry_number + 1
        return dg.RetryRequested(max_retries=NETWORK_RETRY.max_retries, seconds_to_wait=NETWORK_RETRY.calculate_delay(attempt))

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except TRANSIENT_ERRORS as exc:
                raise retry(exc) from exc

        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TRANSIENT_ERRORS as exc:
            raise retry(exc) from exc

    return function


def column_schema(df: pd.DataFrame) -> dg.TableSchema:
    """The frame's columns and dtypes, as the catalog shows them."""
    return dg.TableSchema(columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in df.dtypes.items()])


def table_metadata(df: pd.DataFrame) -> dict[str, Any]:
    """Dagster's standard row count and column schema of a table written by an asset."""
    return {"dagster/row_count": len(df), "dagster/column_schema": column_schema(df)}


def table(df: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    """The first `max_rows` rows as a table the UI renders (and sorts), with the frame's schema."""
    head = df.head(max_rows)
    text = [c for c in head.columns if not (is_numeric_dtype(head[c]) or is_bool_dtype(head[c]))]
    plain = head.astype({c: "string" for c in text}).astype(object).where(head.notna(), None)
    return dg.MetadataValue.table([dg.TableRecord(row) for row in plain.to_dict("records")], column_schema(head))


def path_metadata(path: Path, key: str = "path") -> dict[str, dg.MetadataValue]:
    """`{key: path}` when the file exists: a path in the UI is a promise that something is there."""
    return {key: dg.MetadataValue.path(str(path))} if path.exists() else {}
