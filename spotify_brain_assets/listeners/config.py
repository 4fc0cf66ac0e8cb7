"""`listeners.yaml`: the household a deployment serves. Without the file there is one listener.

The file names each listener's settings and the *names* of the environment variables that hold its
credentials, never their values, so it can be committed. Every mistake is reported with its line.

    listeners:
      - name: alice                     # a slug: keys become alice/history, data in listeners/alice/
        timezone: Europe/Berlin         # default: SPOTIFY_BRAIN_TIMEZONE, else UTC
        source: spotify                 # or demo (the simulated listener)
        credentials:                    # optional; these are the defaults for alice
          client_id: ALICE_SPOTIFY_CLIENT_ID
          client_secret: ALICE_SPOTIFY_CLIENT_SECRET
          refresh_token: ALICE_SPOTIFY_REFRESH_TOKEN
        share: true                     # on the household page (default false)
        website: {repo_path: ~/site, dir: alice, push: false, page: true}
      - name: bob
        source: demo
        seed: 11                        # the demo listener's seed (default: drawn from the name)
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

LISTENERS_ENV = "SPOTIFY_BRAIN_LISTENERS"
DEFAULT_FILE = "listeners.yaml"  # at the repository root, beside dagster.yaml
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a Dagster key part, a folder, a tag value and a job prefix
SOURCES = ("spotify", "demo")
CREDENTIALS = ("client_id", "client_secret", "refresh_token", "authorized_at")
WEBSITE_KEYS = ("repo_path", "dir", "push", "page")
LISTENER_KEYS = ("name", "display_name", "timezone", "source", "credentials", "seed", "share", "website")
#: names reserved by the household's own keys and folders
RESERVED = {"household", "listeners"}


class ListenersFileError(ValueError):
    """listeners.yaml is unreadable or wrong; the message names the file and the line."""


@dataclass(frozen=True)
class Website:
    repo_path: str
    dir: str = "spotify-brain"
    push: bool = False
    page: bool = False


@dataclass(frozen=True)
class ListenerSettings:
    name: str
    source: str = "demo"
    timezone: str | None = None  # None: the deployment's timezone
    display_name: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # CREDENTIALS key -> environment variable name
    seed: int | None = None
    share: bool = False
    website: Website | None = None

    @property
    def demo_seed(self) -> int:
        """The demo listener's seed: given, or stable for the name, so two demo listeners differ."""
        return self.seed if self.seed is not None else zlib.crc32(self.name.encode()) % 10_000

    def variable(self, credential: str) -> str:
        return self.credentials.get(credential) or f"{self.name.upper()}_SPOTIFY_{credential.upper()}"

    def missing_variables(self, environ: os._Environ | dict = os.environ) -> list[str]:
        if self.source != "spotify":
            return []
        return [self.variable(c) for c in CREDENTIALS[:3] if not environ.get(self.variable(c))]


def listeners_path(repo_root: Path | None = None) -> Path:
    given = os.environ.get(LISTENERS_ENV)
    if given:
        return Path(given).expanduser()
    return (repo_root or Path.cwd()) / DEFAULT_FILE


def _fail(path: Path, node: yaml.Node | None, message: str) -> ListenersFileError:
    where = f"{path}, line {node.start_mark.line + 1}" if node is not None else str(path)
    return ListenersFileError(f"{where}: {message}")


def _scalar(path: Path, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.value == "":
        raise _fail(path, node, f"{what} must be a plain value")
    return node.value


def _boolean(path: Path, node: yaml.Node, what: str) -> bool:
    value = _scalar(path, node, what).lower()
    if value not in ("true", "false", "yes", "no"):
        raise _fail(path, node, f"{what} must be true or false, not {node.value!r}")
    return value in ("true", "yes")


def _mapping(path: Path, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping of keys to values")
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in allowed:
            raise _fail(path, key_node, f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})")
        if key in out:
            raise _fail(path, key_node, f"{key!r} given twice in {what}")
        out[key] = value_node
    return out


def _listener(path: Path, node: yaml.Node) -> ListenerSettings:
    fields = _mapping(path, node, "a listener", LISTENER_KEYS)
    if "name" not in fields:
        raise _fail(path, node, "a listener needs a name")
    name = _scalar(path, fields["name"], "name")
    if not NAME_RE.match(name) or name in RESERVED:
        raise _fail(path, fields["name"], f"name {name!r} must be a slug: a lowercase letter, then up to 31 of a-z, 0-9, _ (not household or listeners)")
    what = f"listener {name!r}"
    source = _scalar(path, fields["source"], "source") if "source" in fields else "demo"
    if source not in SOURCES:
        raise _fail(path, fields["source"], f"{what}: source must be spotify or demo, not {source!r}")
    timezone = _scalar(path, fields["timezone"], "timezone") if "timezone" in fields else None
    if timezone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise _fail(path, fields["timezone"], f"{what}: {timezone!r} is not an IANA timezone name (e.g. Europe/Stockholm)") from None
    credentials = {}
    if "credentials" in fields:
        for key, value in _mapping(path, fields["credentials"], f"{what}'s credentials", CREDENTIALS).items():
            variable = _scalar(path, value, f"credentials.{key}")
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
                raise _fail(path, value, f"{what}: credentials.{key} must name an environment variable, not hold a value")
            credentials[key] = variable
    seed = None
    if "seed" in fields:
        raw = _scalar(path, fields["seed"], "seed")
        if not raw.isdigit():
            raise _fail(path, fields["seed"], f"{what}: seed must be a whole number")
        seed = int(raw)
    website = None
    if "website" in fields:
        site = _mapping(path, fields["website"], f"{what}'s website", WEBSITE_KEYS)
        if "repo_path" not in site:
            raise _fail(path, fields["website"], f"{what}: website needs repo_path (a git checkout of the website)")
        website = Website(
            repo_path=_scalar(path, site["repo_path"], "website.repo_path"),
            dir=_scalar(path, site["dir"], "website.dir") if "dir" in site else name,
            push=_boolean(path, site["push"], "website.push") if "push" in site else False,
            page=_boolean(path, site["page"], "website.page") if "page" in site else False,
        )
    return ListenerSettings(
        name=name,
        source=source,
        timezone=timezone,
        display_name=_scalar(path, fields["display_name"], "display_name") if "display_name" in fields else None,
        credentials=credentials,
        seed=seed,
        share=_boolean(path, fields["share"], "share") if "share" in fields else False,
        website=website,
    )


def parse_listeners(text: str, path: Path) -> list[ListenerSettings]:
    """The listeners of a listeners.yaml text, or an error naming the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ListenersFileError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if root is None:
        raise ListenersFileError(f"{path}: the file is empty; list listeners under `listeners:` or delete it")
    top = _mapping(path, root, "the file", ("listeners",))
    if "listeners" not in top or not isinstance(top["listeners"], yaml.SequenceNode) or not top["listeners"].value:
        raise _fail(path, top.get("listeners", root), "`listeners:` must be a non-empty list")
    out: list[ListenerSettings] = []
    seen: dict[str, int] = {}
    for node in top["listeners"].value:
        listener = _listener(path, node)
        if listener.name in seen:
            raise _fail(path, node, f"listener {listener.name!r} is listed twice (first on line {seen[listener.name]})")
        seen[listener.name] = node.start_mark.line + 1
        out.append(listener)
    return out


def load_listeners(repo_root: Path | None = None, environ: os._Environ | dict = os.environ) -> list[ListenerSettings] | None:
    """The household of listeners.yaml, or None when there is no file (one listener, as ever).

    A Spotify listener whose credential variables are unset is an error here, when the definitions
    load, rather than in its first run.
    """
    path = listeners_path(repo_root)
    if not path.exists():
        if os.environ.get(LISTENERS_ENV):
            raise ListenersFileError(f"{path}: no such file ({LISTENERS_ENV} names it)")
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ListenersFileError(f"{path}: unreadable ({exc})") from None
    listeners = parse_listeners(text, path)
    for listener in listeners:
        missing = listener.missing_variables(environ)
        if missing:
            raise ListenersFileError(
                f"{path}: listener {listener.name!r} reads Spotify credentials from {', '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not set (run `spotify-brain authorize --listener {listener.name}`)"
            )
    return listeners
