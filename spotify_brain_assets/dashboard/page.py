"""The static dashboard pages: self-contained HTML files (CSS, JavaScript and data inlined)."""

import json
from importlib import resources

#: what the shareable recap page embeds: the recap and what it needs to be read, nothing else
RECAP_KEYS = ["schema_version", "generated_at", "as_of", "timezone", "is_demo", "recap"]


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("page", name).read_text(encoding="utf-8")


def _inline(template: str, data: dict, scripts: tuple[str, ...] = ("dashboard.js",)) -> str:
    embedded = json.dumps(data, allow_nan=False, separators=(",", ":"))
    embedded = embedded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    html = _asset(template)
    script = "\n".join(_asset(name) for name in scripts)
    for marker, content in (("/*CSS*/", _asset("dashboard.css")), ("/*JS*/", script), ("/*DATA*/", embedded)):
        html = html.replace(marker, content, 1)
    return html


def render_page(data: dict) -> str:
    """index.html with the page's CSS and JS inlined and `data` embedded as a fallback.

    The page first fetches dashboard_data.json beside it (fresher when only the JSON is deployed)
    and falls back to the embedded copy, so it also works opened from disk, offline.
    """
    return _inline("index.html", data)


def render_recap_page(data: dict) -> str:
    """recap.html: the yearly recap alone, to share. It embeds only the recap (no recently played,
    no predictions) and no images, and never fetches anything."""
    return _inline("recap.html", {key: data[key] for key in RECAP_KEYS if key in data})


def render_household_page(data: dict) -> str:
    """household.html: the dashboard's look and building blocks (dashboard.js) drawn by
    household.js; like index.html it prefers household_data.json beside it, else what it embeds."""
    return _inline("household.html", data, ("dashboard.js", "household.js"))
