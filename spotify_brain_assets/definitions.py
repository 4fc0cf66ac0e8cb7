"""The code location: `dg`, `dagster dev` (workspace.yaml) and `-m spotify_brain_assets` all load `defs`.

The definitions live in `defs/`, one folder per domain (ingestion, history, moods, sessions,
reporting, imports), loaded by `dg.load_from_defs_folder`: a new module there needs no line here.
"""

from pathlib import Path

import dagster as dg

from .runtime.env import load_env_file
from .runtime.executor import executor_from_env



def build_definitions() -> dg.Definitions:
    load_env_file()  # the resources read the environment: `.env` must be in it first
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # in-process; Celery workers when SPOTIFY_BRAIN_CELERY_CONFIG is set
        dg.Definitions(executor=executor_from_env()),
    )


defs = build_definitions()
