"""What the assets share: the ingestion partitions, the writer pool, metadata helpers."""


import dagster as dg
import pandas as pd

INGESTION_PARTITIONS = dg.DynamicPartitionsDefinition(name="ingestions")
#: every asset that writes under the data root runs in this pool (limit 1 in dagster.yaml)
WRITER_POOL = "spotify_brain_writer"
#: queued runs carrying this tag are limited to one at a time (dagster.yaml)
WRITER_RUN_TAGS = {"spotify_brain/writes": "data_root"}


def md_table(df: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    """A small markdown table for the UI."""
    if len(df) == 0:
        return dg.MetadataValue.md("_(none)_")
    head = df.head(max_rows)
    lines = ["| " + " | ".join(map(str, head.columns)) + " |", "|" + "---|" * len(head.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in head.itertuples(index=False)]
    if len(df) > max_rows:
        lines.append(f"\n_{len(df) - max_rows} more rows_")
    return dg.MetadataValue.md("\n".join(lines))
