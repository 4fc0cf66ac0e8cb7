"""Local fakes of the external services, served over real HTTP (see `fakes.server` for the API).

Names are imported lazily so that `python -m spotify_brain_assets.fakes.server` runs cleanly.
"""

from importlib import import_module
from typing import Any

__all__ = ["FakeServer", "Fault", "RecordedRequest", "make_track", "random_track_id", "reccobeats_id"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module(".server", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
