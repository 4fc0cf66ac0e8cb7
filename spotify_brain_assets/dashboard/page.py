"""The static dashboard page: one self-contained HTML file (CSS, JavaScript and data inlined)."""

import json
from importlib import resources


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def render_page(data: dict) -> str:
    """index.html with the page's CSS and JS inlined and `data` embedded as a fallback.

    The page first fetches dashboard_data.json beside it (fresher when only the JSON is deployed)
    and falls back to the embedded copy, so it also works opened from disk, offline.
    """
    embedded = json.dumps(data, allow_nan=False, separators=(",", ":"))
    embedded = embedded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    html = _asset("index.html")
    for marker, content in (("/*CSS*/", _asset("dashboard.css")), ("/*JS*/", _asset("dashboard.js")), ("/*DATA*/", embedded)):
        html = html.replace(marker, content, 1)
    return html
