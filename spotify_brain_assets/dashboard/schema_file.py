"""`python -m spotify_brain_assets.dashboard.schema_file` rewrites dashboard.schema.json from the models
in schema.py (a module of its own: the definitions import schema.py, and `-m` would run a second copy)."""

from ..storage.files import write_text
from .schema import SCHEMA_FILE, json_schema_text

if __name__ == "__main__":
    write_text(json_schema_text(), SCHEMA_FILE)
    print(f"wrote {SCHEMA_FILE}")
