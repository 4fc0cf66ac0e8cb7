"""Copying the dashboard into the owner's website repository, committing and pushing it.

Only the configured dashboard files are ever staged or committed there. Neither end follows a
symbolic link: a source is a plainly named regular file of export/ (no `../secret.json`), a target is
a relative path inside the repository whose every existing component is a real folder (not `.git`),
and the file is written to a fresh temporary (O_CREAT|O_EXCL|O_NOFOLLOW, opened through folder
descriptors) renamed over a target that must be a regular file if it exists. Something planted in
the repository (a symlink at a target, at its folder or at a temporary's name) is refused, never
written through, and git is asked to commit regular files only. Git runs as a subprocess.
"""

import contextlib
import os
import re
import secrets
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_CHUNK = 1 << 20


class DeployError(RuntimeError):
    """Deployment could not be done as configured (the dashboard itself is already written)."""


class PushFailed(DeployError):
    """The remote refused or could not be reached: what is committed locally is pushed by a later run."""


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


def check_source(name: str) -> str:
    """A source is a file directly in export/, named plainly: no folder, no `..`, no hidden file."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise DeployError(f"refusing to publish {name!r}: a source must be a file of export/ named plainly (no folder, no leading dot)")
    return name


def target_parts(name: str, relative: str) -> tuple[str, ...]:
    """The target's path components, refused when they could leave the repository or enter .git."""
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts or ".." in path.parts or any(c in relative for c in "\\\0"):
        raise DeployError(f"refusing to deploy {name} to {relative!r}: it is outside the website repository")
    if any(part.lower() == ".git" for part in path.parts):
        raise DeployError(f"refusing to deploy {name} into the repository's .git directory")
    return path.parts


def _kind(dir_fd: int, name: str) -> int | None:
    """The st_mode of `name` in the folder, the link itself if it is one; None when absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None


def _refuse_unless(mode: int | None, is_kind, shown: str, what: str) -> None:
    if mode is not None and not is_kind(mode):
        why = "a symbolic link" if stat.S_ISLNK(mode) else "not a " + what
        raise DeployError(f"refusing to publish through {shown}: it is {why} (symbolic links are never followed)")


def _open_folder(repo_fd: int, parts: tuple[str, ...], create: bool) -> int | None:
    """A descriptor of the folder `parts` under the repository, every component a real folder
    (created when `create`); None when it does not exist yet and `create` is off."""
    fd = os.dup(repo_fd)
    try:
        for depth, part in enumerate(parts, start=1):
            shown = "/".join(parts[:depth])
            mode = _kind(fd, part)
            if mode is None:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(part, dir_fd=fd)
                mode = _kind(fd, part)
            _refuse_unless(mode, stat.S_ISDIR, shown, "folder")
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:  # swapped for a link since the check
                raise DeployError(f"refusing to publish through {shown}: {exc.strerror}") from exc
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_source(export_fd: int, name: str) -> int:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=export_fd)
    except FileNotFoundError:
        raise DeployError(f"export/{name} does not exist: nothing to deploy for {name}") from None
    except OSError as exc:
        raise DeployError(f"refusing to publish export/{name}: {exc.strerror} (symbolic links are never followed)") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DeployError(f"refusing to publish export/{name}: it is not a regular file")
    return fd


def _check_target(repo_fd: int, parts: tuple[str, ...]) -> None:
    folder = _open_folder(repo_fd, parts[:-1], create=False)
    if folder is not None:
        try:
            _refuse_unless(_kind(folder, parts[-1]), stat.S_ISREG, "/".join(parts), "regular file")
        finally:
            os.close(folder)


def _copy(source_fd: int, repo_fd: int, parts: tuple[str, ...]) -> None:
    """Write the source to a fresh temporary beside the target and rename it over the target."""
    folder = _open_folder(repo_fd, parts[:-1], create=True)
    tmp, created = f".{parts[-1]}.{secrets.token_hex(8)}.tmp", False
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
        created = True
        try:
            while chunk := os.read(source_fd, _CHUNK):
                os.write(out, chunk)
            os.fsync(out)
        finally:
            os.close(out)
        _refuse_unless(_kind(folder, parts[-1]), stat.S_ISREG, "/".join(parts), "regular file")
        os.replace(tmp, parts[-1], src_dir_fd=folder, dst_dir_fd=folder)  # replaces a link, never follows it
        created = False
    finally:
        if created:
            os.unlink(tmp, dir_fd=folder)
        os.close(folder)


def _copy_all(export_dir: Path, repo: Path, files: dict[str, str]) -> list[str]:
    """Copy every file, after checking both ends of all of them (a refusal writes nothing)."""
    plan = {check_source(name): target_parts(name, relative) for name, relative in files.items()}
    with contextlib.ExitStack() as fds:
        def opened(fd: int) -> int:
            fds.callback(os.close, fd)
            return fd

        export_fd = opened(os.open(export_dir, os.O_RDONLY | os.O_DIRECTORY))
        repo_fd = opened(os.open(repo, os.O_RDONLY | os.O_DIRECTORY))
        sources = {}
        for name, parts in plan.items():
            sources[name] = opened(_open_source(export_fd, name))
            _check_target(repo_fd, parts)
        for name, parts in plan.items():
            _copy(sources[name], repo_fd, parts)
    return ["/".join(parts) for parts in plan.values()]


def _refuse_staged_links(repo: Path, paths: list[str]) -> None:
    """Git commits what it staged: anything staged as other than a regular file is refused."""
    staged = _git(repo, "ls-files", "--stage", "--", *paths).stdout.splitlines()
    odd = [line.split("\t", 1)[-1] for line in staged if not line.startswith(("100644 ", "100755 "))]
    if odd:
        _git(repo, "reset", "-q", "--", *paths)
        raise DeployError(f"refusing to commit {', '.join(odd)}: staged as something other than a regular file")


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
    outcome = DeployOutcome(copied=_copy_all(Path(export_dir), repo, files))
    if not commit:
        outcome.messages.append("copied; committing is off")
        return outcome
    paths = outcome.copied
    added = _git(repo, "add", "--", *paths)
    if added.returncode:
        raise DeployError(f"git add failed: {added.stderr}")
    _refuse_staged_links(repo, paths)
    if _git(repo, "diff", "--cached", "--quiet", "--", *paths).returncode == 0:
        outcome.messages.append("nothing changed: no commit")
    else:
        done = _git(repo, "-c", "user.name=Spotify Brain", "-c", "user.email=spotify-brain@localhost", "commit", "-m", message, "--only", "--", *paths)
        if done.returncode:
            raise DeployError(f"git commit failed: {done.stderr or done.stdout}")
        outcome.committed = _git(repo, "rev-parse", "HEAD").stdout.strip()
        outcome.messages.append(f"committed {outcome.committed[:10]}")
    if push:  # also when nothing changed: an earlier push may have failed (pushing what is there is a no-op)
        if remote not in _git(repo, "remote").stdout.split():
            outcome.messages.append(f"push asked but the repository has no remote {remote!r}: not pushed")
            return outcome
        ref = branch or _git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
        pushed = _git(repo, "push", remote, f"HEAD:{ref}")
        if pushed.returncode:
            raise PushFailed(f"git push to {remote} failed: {pushed.stderr}")
        outcome.pushed = True
        outcome.messages.append(f"pushed to {remote}/{ref}")
    return outcome
