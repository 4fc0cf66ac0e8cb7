"""`spotify-brain authorize`: Spotify's authorization-code flow, ending in a private `.env`.

Opens Spotify's consent page for scope `user-read-recently-played`, receives the code on a loopback
redirect URI (http://127.0.0.1:PORT/callback: Spotify rejects `localhost`), exchanges it for a refresh
token and writes SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET, SPOTIFY_REFRESH_TOKEN and
SPOTIFY_REFRESH_TOKEN_AUTHORIZED_AT to `.env` (mode 0600, git-ignored), which `dagster dev` reads.
Spotify expires refresh tokens 6 months after authorization: run this again before then.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import os
import secrets
import subprocess
import tempfile
import threading
import webbrowser
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from dotenv import set_key

from .http import ClientError, HttpClient, RetryPolicy
from .oauth import SCOPE
from .spotify_resource import ACCOUNTS_URL_ENV, AUTHORIZED_AT_ENV, DEFAULT_ACCOUNTS_URL

DEFAULT_PORT = 8888
ENV_KEYS = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "SPOTIFY_REFRESH_TOKEN", AUTHORIZED_AT_ENV)
DONE_PAGE = b"<!doctype html><title>Spotify Brain</title><p>Spotify Brain is authorized. You can close this tab.</p>"
FAILED_PAGE = b"<!doctype html><title>Spotify Brain</title><p>Authorization failed: see the terminal.</p>"


class AuthorizationFailed(RuntimeError):
    """The user declined, the callback never came, or Spotify refused the code."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "authorize",
        help="authorize Spotify Brain to read your recently played tracks (writes .env)",
        description="Runs Spotify's authorization-code flow in your browser and writes the credentials to .env "
        "(mode 0600). Register http://127.0.0.1:PORT/callback as a redirect URI of your app first.",
    )
    parser.add_argument("--client-id", default=None, help="the app's client id (default: $SPOTIFY_CLIENT_ID, else asked)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT,
        help=f"loopback port of the redirect URI http://127.0.0.1:PORT/callback, as registered in the app (default {DEFAULT_PORT})",
    )
    parser.add_argument("--env-file", default=".env", help="where to write the credentials (default ./.env)")
    parser.add_argument("--no-browser", action="store_true", help="print the consent URL instead of opening a browser")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the consent (default 300)")
    parser.add_argument("--listener", default=None, help="a Spotify listener of listeners.yaml: write the variables it names")


def listener_variables(name: str) -> dict[str, str]:
    """What `authorize --listener NAME` writes, and under which names: those listeners.yaml gives."""
    from ..listeners.config import CREDENTIALS, ListenersFileError, listeners_path, parse_listeners

    path = listeners_path(Path(__file__).resolve().parents[2])
    if not path.exists():
        raise AuthorizationFailed(f"--listener {name}: there is no {path} (see README, 'Several listeners')")
    try:
        listeners = {listener.name: listener for listener in parse_listeners(path.read_text(encoding="utf-8"), path)}
    except (OSError, UnicodeDecodeError, ListenersFileError) as exc:
        raise AuthorizationFailed(str(exc)) from None
    if name not in listeners:
        raise AuthorizationFailed(f"--listener {name}: not in {path} (listeners: {', '.join(listeners)})")
    if listeners[name].source != "spotify":
        raise AuthorizationFailed(f"--listener {name}: its source is {listeners[name].source}, not spotify: nothing to authorize")
    return dict(zip(ENV_KEYS, (listeners[name].variable(c) for c in CREDENTIALS)))


def run(args: argparse.Namespace) -> int:
    try:
        names = listener_variables(args.listener) if args.listener else dict(zip(ENV_KEYS, ENV_KEYS))
    except AuthorizationFailed as exc:
        print(f"spotify-brain authorize: {exc}")
        return 1
    env = lambda key: os.environ.get(names[key]) or os.environ.get(key)  # noqa: E731 (a household may share one app)
    client_id = args.client_id or env("SPOTIFY_CLIENT_ID") or input("Spotify app client id: ").strip()
    client_secret = env("SPOTIFY_CLIENT_SECRET") or getpass.getpass("Spotify app client secret (not shown): ").strip()
    open_url: Callable[[str], Any] = (lambda url: None) if args.no_browser else webbrowser.open
    try:
        authorize(
            client_id,
            client_secret,
            port=args.port,
            env_file=Path(args.env_file),
            accounts_url=os.environ.get(ACCOUNTS_URL_ENV) or DEFAULT_ACCOUNTS_URL,
            open_url=open_url,
            timeout=args.timeout,
            names=names,
        )
    except AuthorizationFailed as exc:
        print(f"spotify-brain authorize: {exc}")
        return 1
    return 0


def authorize(
    client_id: str,
    client_secret: str,
    *,
    port: int = DEFAULT_PORT,
    env_file: Path = Path(".env"),
    accounts_url: str = DEFAULT_ACCOUNTS_URL,
    open_url: Callable[[str], Any] = webbrowser.open,
    timeout: float = 300.0,
    say: Callable[[str], None] = print,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    names: dict[str, str] | None = None,
) -> Path:
    """Run the flow and write `env_file`; returns its path. `open_url` shows the consent page;
    `names` renames the variables written (a household listener's, from listeners.yaml)."""
    if not client_id or not client_secret:
        raise AuthorizationFailed("a client id and a client secret are needed (Spotify developer dashboard → your app)")
    state = secrets.token_urlsafe(16)
    callback = _Callback(state)
    try:
        server = HTTPServer(("127.0.0.1", port), callback.handler())
    except OSError as exc:
        raise AuthorizationFailed(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); pass another --port") from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        query = urlencode({
            "client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri,
            "scope": SCOPE, "state": state, "show_dialog": "true",
        })
        url = f"{accounts_url.rstrip('/')}/authorize?{query}"
        say(f"Redirect URI (must be registered in the app's settings): {redirect_uri}")
        say(f"Opening Spotify's consent page; if no browser opens, visit:\n  {url}")
        threading.Thread(target=open_url, args=(url,), daemon=True).start()
        if not callback.done.wait(timeout):
            raise AuthorizationFailed(f"no answer from Spotify within {timeout:g} s; run the command again")
    finally:
        server.shutdown()
        server.server_close()
    if callback.error:
        raise AuthorizationFailed(callback.error)
    refresh_token = _exchange(accounts_url, client_id, client_secret, callback.code or "", redirect_uri)
    authorized_at = now().astimezone(timezone.utc).isoformat(timespec="seconds")
    values = dict(zip(ENV_KEYS, (client_id, client_secret, refresh_token, authorized_at)))
    write_env(env_file, {(names or {}).get(key, key): value for key, value in values.items()})
    say(f"Authorized. Wrote the credentials to {env_file} (readable only by you).")
    if _tracked_by_git(env_file):
        say(f"WARNING: {env_file} is not git-ignored: add it to .gitignore before committing anything.")
    say("Restart `dagster dev` (it reads .env at start) or export the variables for `spotify-brain update`.")
    say("Spotify expires this token in 6 months; a warning shows on the `ingestions` asset after 5.")
    return env_file


class _Callback:
    """Receives the single redirect from Spotify and checks its state."""

    def __init__(self, state: str):
        self.state = state
        self.code: str | None = None
        self.error: str | None = None
        self.done = threading.Event()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # the query holds the code
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/callback" or callback.done.is_set():
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if query.get("state") != callback.state:
                    callback.error = "the answer's state does not match this request (a stale or forged redirect)"
                elif "error" in query:
                    callback.error = f"Spotify answered {query['error']!r} (consent declined?)"
                elif not query.get("code"):
                    callback.error = "Spotify's answer carries no authorization code"
                else:
                    callback.code = query["code"]
                page = FAILED_PAGE if callback.error else DONE_PAGE
                self.send_response(200 if not callback.error else 400)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                callback.done.set()

        return Handler


def _exchange(accounts_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str) -> str:
    basic = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    with HttpClient("spotify accounts", accounts_url, retry=RetryPolicy(max_attempts=3, max_total_wait_s=30)) as http:
        try:
            answer = http.request(
                "POST", "/api/token",
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
                headers={"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
            )
        except ClientError as exc:
            raise AuthorizationFailed(f"Spotify refused the authorization code: {exc}") from None
    token = answer.get("refresh_token") if isinstance(answer, dict) else None
    if not token:
        raise AuthorizationFailed("Spotify's token answer carries no refresh token")
    granted = set(str(answer.get("scope") or "").split())
    if SCOPE not in granted:
        raise AuthorizationFailed(f"Spotify granted {sorted(granted) or 'no scopes'}, not {SCOPE}")
    return str(token)


def write_env(path: Path, values: dict[str, str]) -> None:
    """Set `values` in a dotenv file, keeping its other lines: all of them or none, and the file ends up 0600.

    python-dotenv's `set_key` writes each line (single-quoted, so `#`, spaces and `$` survive), on a
    private draft beside the file that then replaces it: a crash leaves the old file whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    draft = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(path.read_text(encoding="utf-8") if path.exists() else "")
        for key, value in values.items():
            set_key(draft, key, value)  # keeps the draft's mode
        with open(draft, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def _tracked_by_git(path: Path) -> bool:
    """True when `path` is inside a git work tree and not ignored there."""
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", path.name], cwd=path.resolve().parent, capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 1  # 0: ignored, 128: not a repository
