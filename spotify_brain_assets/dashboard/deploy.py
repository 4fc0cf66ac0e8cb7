"""Copying the dashboard into the owner's website repository, committing and pushing it.

Only the configured dashboard files are ever staged or committed there; targets outside the
repository are refused. Git runs as a subprocess with a fixed identity-free environment.
"""

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


class DeployError(RuntimeError):
    """Deployment could not be done as configured (the dashboard itself is already written)."""


@dataclass
class DeployOutcome:
    copied: list[str] = field(default_factory=list)
    committed: str | None = None  # the new commit's sha
    pushed: bool = False
    messages: list[str] = field(default_factory=list)


def _redact(text: str) -> str:
    """Remove credentials embedded in remote URLs (https://user:token@host) from git's messages."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text.strip())


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)
    done.stderr, done.stdout = _redact(done.stderr), _redact(done.stdout)
    return done


def resolve_targets(repo: Path, files: dict[str, str]) -> dict[str, Path]:
    """Map each source file name to its target inside `repo`; refuse anything escaping it."""
    repo = repo.resolve()
    targets = {}
    for name, relative in files.items():
        target = (repo / relative).resolve()
        if target == repo or repo not in target.parents:
            raise DeployError(f"refusing to deploy {name} to {relative!r}: it is outside the website repository {repo}")
        if ".git" in target.relative_to(repo).parts:
            raise DeployError(f"refusing to deploy {name} into the repository's .git directory")
        targets[name] = target
    return targets


def deploy(
    export_dir: Path,
    repo: Path,
    files: dict[str, str],
    commit: bool = True,
    push: bool = False,
    message: str = "Update Spotify Brain dashboard",
    remote: str = "origin",
    branch: str | None = None,
) -> DeployOutcome:
    """Copy `files` (name in export_dir → path in repo), commit them if changed, push if asked."""
    repo = Path(repo)
    if not (repo / ".git").exists():
        raise DeployError(f"{repo} is not a git repository (no .git)")
    targets = resolve_targets(repo, files)
    outcome = DeployOutcome()
    for name, target in targets.items():
        source = export_dir / name
        if not source.exists():
            raise DeployError(f"{source} does not exist: nothing to deploy for {name}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
        outcome.copied.append(str(target.relative_to(repo.resolve())))
    if not commit:
        outcome.messages.append("copied; committing is off")
        return outcome
    paths = outcome.copied
    added = _git(repo, "add", "--", *paths)
    if added.returncode:
        raise DeployError(f"git add failed: {added.stderr}")
    if _git(repo, "diff", "--cached", "--quiet", "--", *paths).returncode == 0:
        outcome.messages.append("nothing changed: no commit")
        return outcome
    done = _git(repo, "-c", "user.name=Spotify Brain", "-c", "user.email=spotify-brain@localhost", "commit", "-m", message, "--only", "--", *paths)
    if done.returncode:
        raise DeployError(f"git commit failed: {done.stderr or done.stdout}")
    outcome.committed = _git(repo, "rev-parse", "HEAD").stdout.strip()
    outcome.messages.append(f"committed {outcome.committed[:10]}")
    if push:
        if remote not in _git(repo, "remote").stdout.split():
            outcome.messages.append(f"push asked but the repository has no remote {remote!r}: not pushed")
            return outcome
        ref = branch or _git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        pushed = _git(repo, "push", remote, f"HEAD:{ref}")
        if pushed.returncode:
            raise DeployError(f"git push to {remote} failed: {pushed.stderr}")
        outcome.pushed = True
        outcome.messages.append(f"pushed to {remote}/{ref}")
    return outcome
