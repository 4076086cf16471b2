"""A cache of Git repositories: one bare mirror per repository URL, shared by every Application
that uses the URL, safe to use from many threads.

``RepoCache.resolve`` fetches and turns a revision (branch, tag, commit SHA or HEAD) into a full
commit SHA; ``RepoCache.checkout`` lends out a private, read-only tree of one commit and deletes it
afterwards. Git runs through GitPython with a deadline, no terminal prompts and no system or global
git configuration, so a host's credential helpers never answer for the controller.

This module must never write a credential to disk outside a 0600 file in a private temporary
directory that is deleted after the command, never put one in argv or in a remote URL stored on
disk, and never let one reach an exception message or a log line, including text copied from git's
own stderr (``redact``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import stat
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import git

from controller.credentials import Credentials

__all__ = [
    "Credentials",
    "GitError",
    "RepoCache",
    "redact",
    "split_userinfo",
    "ssh_command",
    "transport_environment",
]

log = logging.getLogger(__name__)

HEADS_REFSPEC = "+refs/heads/*:refs/heads/*"
REMOTE_HEAD_REF = "refs/remotes/origin/HEAD"
_REMOTE_HEAD_REFSPEC = f"+HEAD:{REMOTE_HEAD_REF}"
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,40}")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#\s]+)@")
_SSH_SCHEMES = frozenset({"ssh://", "git+ssh://", "ssh+git://"})
_READ_ONLY_DIR = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Lines of a multi-line secret (a private key) shorter than this are too generic to hunt for.
_MIN_SECRET_LINE = 16

# Reads credentials from the environment of the one git command that needs them; with none there
# it fails, so git gives up instead of waiting for a prompt.
_ASKPASS_SCRIPT = """#!/bin/sh
case "$1" in
  Username*) [ -n "$DRIFTGUARD_GIT_USERNAME" ] && exec printf '%s\\n' "$DRIFTGUARD_GIT_USERNAME" ;;
  Password*) [ -n "$DRIFTGUARD_GIT_PASSWORD" ] && exec printf '%s\\n' "$DRIFTGUARD_GIT_PASSWORD" ;;
esac
exit 1
"""
# Commands that never talk to a remote still ignore the host's git configuration.
_LOCAL_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
# A token alone still needs some user name; hosting services ignore which.
TOKEN_USERNAME = "git"  # noqa: S105 - a user name, not a secret


class GitError(Exception):
    """Fetching or reading a repository failed. The message is redacted and meant for humans."""

    reason = "FetchFailed"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any of ``secrets`` and without URL userinfo that may hold credentials.

    Each secret is replaced by ``***``; so is every long line of a multi-line secret, in case a
    tool quotes one line of a key. ``scheme://user:pass@`` becomes ``scheme://***@``; a bare user
    name is kept only for ssh URLs, where it is a login name rather than a token.
    """
    needles: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        needles.add(secret)
        needles.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= _MIN_SECRET_LINE)
    for needle in sorted(needles, key=len, reverse=True):
        text = text.replace(needle, "***")

    def mask(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        if scheme.lower() in _SSH_SCHEMES and ":" not in userinfo:
            return match[0]
        return f"{scheme}***@"

    return _USERINFO.sub(mask, text)


def split_userinfo(url: str, creds: Credentials | None) -> tuple[str, Credentials | None]:
    """``url`` without user and password for http(s), and the credentials to use instead: those
    given, else the ones the URL carried. Keeps credentials out of the remote URL stored on disk."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, creds
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    if creds is None and parts.password is not None:
        creds = Credentials(username=unquote(parts.username or ""), password=unquote(parts.password))
    elif creds is None and parts.username:
        creds = Credentials(password=unquote(parts.username))  # https://<token>@host/...
    return clean, creds


def ssh_command(key_file: Path | None, known_hosts_file: Path | None, *, insecure: bool) -> str:
    """The ``GIT_SSH_COMMAND`` for the given key and known-hosts files.

    Batch mode keeps ssh from ever prompting. Host keys are checked strictly against
    ``known_hosts_file`` (or the user's known hosts) unless ``insecure``.
    """
    args = ["ssh", "-o", "BatchMode=yes"]
    if key_file is not None:
        args += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    if insecure:
        args += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    else:
        if known_hosts_file is not None:
            args += ["-o", f"UserKnownHostsFile={known_hosts_file}"]
        args += ["-o", "StrictHostKeyChecking=yes"]
    return shlex.join(args)


# The transports git may use to fetch: file:// (and local paths) only where the operator allows
# local repositories, since the controller's filesystem holds every mirror it fetched.
REMOTE_PROTOCOLS = "http:https:ssh:git"


def transport_environment(
    creds: Credentials | None, askpass: Path, key_file: Path | None, known_hosts_file: Path | None,
    *, allow_local: bool = False,
) -> dict[str, str]:  # fmt: skip
    """Environment variables for one git command: no prompts, no system or global git config,
    only the remote transports allowed, credentials (if any) for the askpass helper, and the ssh
    command."""
    env = {
        "GIT_ALLOW_PROTOCOL": REMOTE_PROTOCOLS + (":file" if allow_local else ""),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": str(askpass),
        "SSH_ASKPASS": str(askpass),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_SSH_COMMAND": ssh_command(
            key_file, known_hosts_file, insecure=creds is not None and creds.insecure_ignore_host_key
        ),
        "DRIFTGUARD_GIT_USERNAME": "",
        "DRIFTGUARD_GIT_PASSWORD": "",
    }
    if creds is not None and creds.password:
        env["DRIFTGUARD_GIT_USERNAME"] = creds.username or TOKEN_USERNAME
        env["DRIFTGUARD_GIT_PASSWORD"] = creds.password
    return env


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path


def _make_read_only(tree: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o222)
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, _READ_ONLY_DIR)
    os.chmod(tree, _READ_ONLY_DIR)


def _remove_tree(tree: Path) -> None:
    if not tree.exists():
        return
    os.chmod(tree, 0o700)
    for dirpath, dirnames, _ in os.walk(tree):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    shutil.rmtree(tree)


class RepoCache:
    """Bare mirrors under ``root/<sha256(url)[:16]>`` and borrowed trees under ``root/trees``.

    Work on one URL (fetch, mirror repair, tree extraction) is serialised by a per-URL lock;
    different URLs proceed in parallel. Every git command is killed after ``timeout_seconds``.
    """

    def __init__(
        self, root: Path, *, timeout_seconds: float = 60.0, idle_trees: int = 64, idle_seconds: float = 300.0,
        allow_local: bool = False,
    ) -> None:  # fmt: skip
        self.root, self.allow_local = root, allow_local
        self.timeout_seconds = timeout_seconds
        self.idle_trees, self.idle_seconds = idle_trees, idle_seconds
        # (url, sha) -> [tree, borrowers, last returned (monotonic)]: idle trees (no borrower) are
        # kept for idle_seconds, at most idle_trees of them (least recently used out first), so
        # that the Applications of one commit share one extraction.
        self._shared: OrderedDict[tuple[str, str], list[Any]] = OrderedDict()
        self._shared_guard = threading.Lock()
        self._trees = root / "trees"
        self._tmp = root / "tmp"
        for directory in (root, self._trees, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)
        for leftover in self._trees.iterdir():  # from an earlier process: nobody borrows them now
            _remove_tree(leftover)
        self._askpass = self._install_askpass()
        self._git = git.Git(str(root))
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def mirror_path(self, url: str, access: str = "") -> Path:
        """Where ``url`` is mirrored when fetched with the credentials of ``access`` (a Secret's
        namespace/name; empty: none). One mirror per URL and credential: content fetched with one
        project's credentials is never read for an Application that could not fetch it itself."""
        return self.root / hashlib.sha256(_cache_key(url, access).encode("utf-8")).hexdigest()[:16]

    def resolve(self, url: str, revision: str, creds: Credentials | None = None) -> str:
        """Fetch ``url`` and return the full SHA of the commit ``revision`` names.

        ``revision`` is "" or ``HEAD`` (the remote's default branch), a branch, a tag (annotated
        tags are peeled), a ``refs/...`` name, or a full or abbreviated commit SHA. A full SHA that
        no branch or tag reaches is fetched by SHA, which servers may refuse.
        """
        revision = revision.strip()
        access = creds.source if creds is not None else ""
        remote, creds = split_userinfo(url, creds)
        secrets = creds.secrets() if creds is not None else ()
        shown = redact(url, secrets)
        want_head = revision in ("", "HEAD")
        with self._lock(_cache_key(url, access)), self._transport(creds) as env:
            mirror = self._ensure_mirror(url, access, remote, shown)
            refspecs = [HEADS_REFSPEC, _REMOTE_HEAD_REFSPEC] if want_head else [HEADS_REFSPEC]

            def fetch_and_find() -> str | None:
                self._fetch(mirror, shown, refspecs, env, secrets)
                return (
                    self._rev_parse(mirror, REMOTE_HEAD_REF) if want_head else self._lookup(mirror, revision)
                )

            try:
                sha = fetch_and_find()
            except GitError:
                if self._healthy(mirror, remote):
                    raise
                sha = None
            # A failed fetch or a missing revision may be the mirror's fault (lost objects leave
            # refs pointing nowhere); both are rare, so only then pay for a connectivity check.
            if sha is None and not self._healthy(mirror, remote):
                log.warning("mirror of %s is damaged; recreating it", shown)
                mirror = self._recreate_mirror(url, access, remote, shown)
                sha = fetch_and_find()
            if sha is None and _FULL_SHA.fullmatch(revision):
                sha = self._fetch_by_sha(mirror, shown, revision, env, secrets)
        if sha is None:
            raise GitError(f"revision {revision!r} not found in {shown}")
        return sha

    @contextmanager
    def checkout(self, url: str, sha: str, access: str = "") -> Iterator[Path]:
        """A read-only tree of commit ``sha`` (as resolved from ``url``), shared by every caller
        that borrows the same commit: a commit's content never changes, and nobody can write to
        the tree. After the last borrower, the tree stays for reuse for ``idle_seconds``; beyond
        ``idle_trees`` idle trees, the least recently used are deleted at once.

        Files keep their executable bits and symlinks; submodules are left out. Callers needing
        scratch space copy what they need.
        """
        shown = redact(url, ())
        if not _FULL_SHA.fullmatch(sha):
            raise GitError(f"cannot check out {sha!r} from {shown}: not a full commit SHA")
        key = (_cache_key(url, access), sha)
        with self._lock(key[0]):  # one extraction per commit, however many borrowers wait
            with self._shared_guard:
                entry = self._shared.get(key)
                if entry is not None:
                    entry[1] += 1
                    self._shared.move_to_end(key)
            if entry is None:
                entry = [self._extract(url, access, sha, shown), 1, 0.0]
                with self._shared_guard:
                    self._shared[key] = entry
        try:
            yield cast(Path, entry[0])
        finally:
            now = time.monotonic()
            with self._shared_guard:
                entry[1] -= 1
                entry[2] = now
                idle = [k for k, e in self._shared.items() if e[1] == 0]
                old = {k for k in idle if now - self._shared[k][2] > self.idle_seconds}
                old |= set(idle[: max(0, len(idle) - self.idle_trees)])
                evicted = [self._shared.pop(k)[0] for k in old]
            for tree in evicted:
                try:
                    _remove_tree(tree)
                except OSError as exc:  # not this borrower's problem: log it, render on
                    log.warning("could not delete the idle tree %s: %s", tree, exc)

    def _extract(self, url: str, access: str, sha: str, shown: str) -> Path:
        """Extract commit ``sha`` into a new read-only tree; the caller holds the URL's lock."""
        tree = Path(tempfile.mkdtemp(prefix=f"{sha}-", dir=self._trees))
        try:
            with tempfile.TemporaryDirectory(dir=self._tmp) as scratch:
                mirror = self.mirror_path(url, access)
                if not mirror.is_dir() or self._rev_parse(mirror, sha) != sha:
                    raise GitError(f"commit {sha} of {shown} is not in the cache; resolve a revision first")
                env = {**_LOCAL_ENV, "GIT_INDEX_FILE": str(Path(scratch) / "index")}
                base = ["--git-dir", str(mirror), "--work-tree", str(tree)]
                self._run([*base, "read-tree", sha], env, f"reading {sha} of {shown}")
                self._run(
                    [*base, "checkout-index", "--all", "--force"], env, f"checking out {sha} of {shown}"
                )
            _make_read_only(tree)
        except BaseException:
            _remove_tree(tree)
            raise
        return tree

    # -- internals ---------------------------------------------------------------------------------

    def _install_askpass(self) -> Path:
        path = self.root / "askpass.sh"
        if not path.is_file() or path.read_text(encoding="utf-8") != _ASKPASS_SCRIPT:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".askpass-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(_ASKPASS_SCRIPT)
            os.chmod(tmp, stat.S_IRWXU)
            os.replace(tmp, path)
        return path

    def _lock(self, url: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(url, threading.Lock())

    @contextmanager
    def _transport(self, creds: Credentials | None) -> Iterator[dict[str, str]]:
        """The environment for talking to a remote; key files live only inside the block."""
        if creds is None or not (creds.ssh_private_key or creds.known_hosts):
            yield transport_environment(creds, self._askpass, None, None, allow_local=self.allow_local)
            return
        with tempfile.TemporaryDirectory(dir=self._tmp, prefix="ssh-") as private:
            key = hosts = None
            if creds.ssh_private_key:
                key = _write_private(Path(private) / "key", creds.ssh_private_key)
            if creds.known_hosts:
                hosts = _write_private(Path(private) / "known_hosts", creds.known_hosts)
            yield transport_environment(creds, self._askpass, key, hosts, allow_local=self.allow_local)

    def _call(self, args: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
        """Run git with a deadline; return its status, stripped stdout and stderr."""
        started = time.monotonic()
        try:
            result = self._git.execute(
                ["git", *args],
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=self.timeout_seconds,
                env=env,
            )
        except git.GitCommandNotFound as exc:
            raise GitError(f"git is not installed: {exc}") from exc
        status, out, err = cast(tuple[int, str | bytes | None, str], result)
        if status != 0 and time.monotonic() - started >= self.timeout_seconds:
            raise _Timeout(f"timed out after {self.timeout_seconds:g}s")
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else (out or "")
        return status, text.strip(), err

    def _run(self, args: list[str], env: Mapping[str, str], doing: str) -> str:
        """Run a local git command that must succeed; return its stdout."""
        try:
            status, out, err = self._call(args, env)
        except _Timeout as exc:
            raise GitError(f"{exc} {doing}") from None
        if status != 0:
            raise GitError(f"{doing} failed: {_last_lines(err)}")
        return out

    def _fetch(
        self, mirror: Path, shown: str, refspecs: list[str], env: Mapping[str, str], secrets: Iterable[str]
    ) -> None:
        log.info("fetching %s", shown)
        started = time.monotonic()
        args = ["--git-dir", str(mirror), "fetch", "--prune", "--tags", "--force", "--update-head-ok"]
        try:
            status, _, err = self._call([*args, "origin", *refspecs], env)
        except _Timeout as exc:
            raise GitError(f"{exc} fetching {shown}") from None
        if status != 0:
            if _REMOTE_HEAD_REFSPEC in refspecs and "couldn't find remote ref HEAD" in err:
                raise GitError(f"revision 'HEAD' not found in {shown}: the repository has no default branch")
            raise GitError(f"fetching {shown} failed: {_explain(redact(err, secrets))}")
        log.info("fetched %s in %.1fs", shown, time.monotonic() - started)

    def _fetch_by_sha(
        self, mirror: Path, shown: str, sha: str, env: Mapping[str, str], secrets: Iterable[str]
    ) -> str | None:
        """Fetch one commit that no branch or tag reaches (servers may refuse: "not our ref")."""
        log.info("fetching commit %s of %s", sha, shown)
        started = time.monotonic()
        try:
            status, _, err = self._call(["--git-dir", str(mirror), "fetch", "--no-tags", "origin", sha], env)
        except _Timeout as exc:
            raise GitError(f"{exc} fetching {sha} from {shown}") from None
        if status != 0:
            raise GitError(
                f"revision {sha!r} not found in {shown}: no branch or tag points to it, "
                f"and fetching it by SHA failed: {_last_lines(redact(err, secrets))}"
            )
        log.info("fetched commit %s of %s in %.1fs", sha, shown, time.monotonic() - started)
        return self._rev_parse(mirror, sha)

    def _lookup(self, mirror: Path, revision: str) -> str | None:
        """Branch first, then tag, then commit SHA (as Argo CD does)."""
        candidates = [f"refs/heads/{revision}", f"refs/tags/{revision}"]
        if revision.startswith("refs/"):
            candidates.insert(0, revision)
        if _SHORT_SHA.fullmatch(revision):
            candidates.append(revision.lower())
        for candidate in candidates:
            sha = self._rev_parse(mirror, candidate)
            if sha is not None:
                return sha
        return None

    def _rev_parse(self, mirror: Path, name: str) -> str | None:
        args = ["--git-dir", str(mirror), "rev-parse", "--verify", "--quiet", "--end-of-options"]
        try:
            status, out, _ = self._call([*args, f"{name}^{{commit}}"], _LOCAL_ENV)
        except _Timeout as exc:
            raise GitError(f"{exc} looking up {name!r}") from None
        return out if status == 0 and _FULL_SHA.fullmatch(out) else None

    def _ensure_mirror(self, url: str, access: str, remote: str, shown: str) -> Path:
        mirror = self.mirror_path(url, access)
        if mirror.is_dir() and self._looks_valid(mirror, remote):
            return mirror
        if mirror.exists():
            log.warning("mirror of %s at %s is incomplete or damaged; recreating it", shown, mirror)
        return self._recreate_mirror(url, access, remote, shown)

    def _looks_valid(self, mirror: Path, remote: str) -> bool:
        """The cheap checks: a bare repository whose origin is ``remote``."""
        if not (mirror / "HEAD").is_file() or not (mirror / "objects").is_dir():
            return False
        args = ["--git-dir", str(mirror)]
        try:
            bare_status, bare, _ = self._call([*args, "rev-parse", "--is-bare-repository"], _LOCAL_ENV)
            url_status, origin, _ = self._call([*args, "config", "--get", "remote.origin.url"], _LOCAL_ENV)
        except _Timeout:
            return False
        return (bare_status, bare, url_status, origin) == (0, "true", 0, remote)

    def _healthy(self, mirror: Path, remote: str) -> bool:
        """The cheap checks plus a connectivity check; run only after a failed fetch, to tell a
        damaged mirror from a remote problem."""
        if not self._looks_valid(mirror, remote):
            return False
        try:
            status, _, _ = self._call(
                ["--git-dir", str(mirror), "fsck", "--connectivity-only", "--no-dangling"], _LOCAL_ENV
            )
        except _Timeout:
            return False
        return status == 0

    def _recreate_mirror(self, url: str, access: str, remote: str, shown: str) -> Path:
        """A fresh empty mirror, built aside and renamed into place so that a crash never leaves a
        half-made mirror at the real path."""
        mirror = self.mirror_path(url, access)
        staging = Path(tempfile.mkdtemp(prefix=f"{mirror.name}-", dir=self._tmp))
        base = ["--git-dir", str(staging)]
        steps = [
            ["init", "--quiet", "--bare", str(staging)],
            [*base, "remote", "add", "origin", remote],
            # Only what the fetch command names: no refs/remotes/origin/* side copies.
            [*base, "config", "--replace-all", "remote.origin.fetch", HEADS_REFSPEC],
            # Keep maintenance inside the fetch that triggers it, under this URL's lock.
            [*base, "config", "gc.autoDetach", "false"],
            [*base, "config", "maintenance.autoDetach", "false"],
            [*base, "config", "core.logAllRefUpdates", "false"],
        ]
        try:
            for step in steps:
                self._run(step, _LOCAL_ENV, f"creating the mirror of {shown}")
            if mirror.is_dir() and not mirror.is_symlink():
                _remove_tree(mirror)
            elif mirror.exists() or mirror.is_symlink():
                mirror.unlink()
            os.replace(staging, mirror)
        finally:
            if staging.exists():
                _remove_tree(staging)
        return mirror


class _Timeout(Exception):
    pass


def _cache_key(url: str, access: str) -> str:
    return f"{url}\n{access}" if access else url


# Git's words for common failures -> what to do about them.
_HINTS = (
    ("could not read Username", "the server asks for credentials and none are configured"),
    ("could not read Password", "the server asks for a password and none is configured"),
    ("Authentication failed", "the server rejected the credentials"),
    ("Host key verification failed", "the ssh host key is not among the known hosts"),
    ("Permission denied (publickey", "the server rejected the ssh key"),
)

# Boilerplate that would push the informative lines out of the message.
_NOISE = (
    "unable to read askpass response",
    "Please make sure you have the correct access rights",
    "and the repository exists.",
)


def _explain(stderr: str) -> str:
    """The last lines of git's stderr, after a plain-words hint when the failure is a common one."""
    lines = "\n".join(line for line in stderr.splitlines() if not any(noise in line for noise in _NOISE))
    hints = [hint for needle, hint in _HINTS if needle in stderr]
    return f"{hints[0]}: {_last_lines(lines)}" if hints else _last_lines(lines)


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[-count:]) if lines else "no output from git"
