"""The `.env` file that `spotify-brain authorize` writes, loaded before anything reads the environment."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

ENV_FILE_ENV = "SPOTIFY_BRAIN_ENV_FILE"


def env_file() -> Path:
    """`.env` in the working directory (where `dagster dev` also looks), or SPOTIFY_BRAIN_ENV_FILE."""
    return Path(os.environ.get(ENV_FILE_ENV) or Path.cwd() / ".env")


def load_env_file() -> Path | None:
    """Load the env file without overriding what the shell set; the path when one was read.

    Every entry point builds the definitions (which choose the listening source from the
    environment), so this runs first there: the CLI, `dagster dev` and `dagster asset materialize`
    see the same settings.
    """
    path = env_file()
    if not path.is_file():
        return None
    load_dotenv(path, override=False)
    return path
