"""Real Git repositories served on 127.0.0.1, for tests of anything that fetches from Git.

``GitServer`` keeps bare repositories under one directory and serves them two ways at once:
``git daemon`` (``git://``, no authentication) and ``git http-backend`` behind a small threaded
HTTP server that demands HTTP basic auth (``http://``). Tests create repositories, commit, delete
files, tag and move refs through plumbing commands, so no working tree or checked-out branch gets
in the way and any branch can be changed at any time.

    with GitServer(tmp_path) as server:
        server.create_repo("apps")
        sha = server.commit("apps", {"guestbook/deploy.yaml": "kind: Deployment\\n"})
        url = server.git_url("apps")            # or server.http_url("apps") + server.username/password

It never listens beyond loopback, never sleeps to wait (ports are awaited with a deadline), and
leaves no process, thread or socket behind after ``stop``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hmac
import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO

from tests.support.waiting import wait_for

log = logging.getLogger("driftguard.tests.gitserver")

HOST = "127.0.0.1"
GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "driftguard tests",
    "GIT_AUTHOR_EMAIL": "tests@driftguard.invalid",
    "GIT_COMMITTER_NAME": "driftguard tests",
    "GIT_COMMITTER_EMAIL": "tests@driftguard.invalid",
    "LC_ALL": "C",
}
_BACKEND_TIMEOUT = 60.0


@dataclass(frozen=True)
class HTTPRequest:
    """One request the HTTP server answered: who asked (None when unauthenticated) and how it went."""

    method: str
    path: str
    user: str | None
    status: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone, group and all
        os.killpg(process.pid, signum)


def _daemon_listening(daemon: subprocess.Popen[bytes], port: int) -> bool:
    if daemon.poll() is not None:
        raise RuntimeError(f"git daemon exited with {daemon.returncode}")
    return _port_open(port)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


class GitServer:
    """Bare repositories under ``root/repos``, served over git:// and basic-auth http://."""

    def __init__(
        self,
        root: Path,
        *,
        username: str = "driftguard",
        password: str = "http-password-b5e1c7",  # noqa: S107 - test-only
    ) -> None:
        self.root = root
        self.repos = root / "repos"
        self.username = username
        self.password = password
        self.git_port = 0
        self.http_port = 0
        self._daemon: subprocess.Popen[bytes] | None = None
        self._daemon_log: IO[bytes] | None = None
        self._http: _GitHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> GitServer:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.repos.mkdir(parents=True, exist_ok=True)
        try:
            self._start_http()
            self._start_daemon()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=30)
            self._http_thread = None
        self._stop_daemon()

    def _start_http(self) -> None:
        self._http = _GitHTTPServer((HOST, 0), self.repos, self.username, self.password)
        self.http_port = self._http.server_address[1]
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="gitserver-http", kwargs={"poll_interval": 0.05}
        )
        self._http_thread.start()

    def _start_daemon(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            self.git_port = free_port()
            self._daemon_log = open(self.root / "git-daemon.log", "ab")  # noqa: SIM115 - closed in stop
            self._daemon = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    "--informative-errors",
                    f"--base-path={self.repos}",
                    "--export-all",
                    f"--listen={HOST}",
                    f"--port={self.git_port}",
                    str(self.repos),
                ],
                env={**os.environ, **GIT_ENV},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._daemon_log,
                # Its own process group: `git daemon` runs git-daemon as a child, which forks one
                # more per connection; stop() signals them all.
                start_new_session=True,
            )
            try:
                wait_for(
                    functools.partial(_daemon_listening, self._daemon, self.git_port),
                    f"git daemon on {HOST}:{self.git_port}",
                    timeout=30,
                    interval=0.05,
                )
                return
            except RuntimeError:
                self._stop_daemon()
                if attempt == attempts:  # another process took the port each time
                    raise RuntimeError(f"git daemon did not start:\n{self.daemon_log()}") from None

    def _stop_daemon(self) -> None:
        if self._daemon is not None:
            _signal_group(self._daemon, signal.SIGTERM)
            try:
                self._daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(self._daemon, signal.SIGKILL)
                self._daemon.wait(timeout=10)
            self._daemon = None
        if self._daemon_log is not None:
            self._daemon_log.close()
            self._daemon_log = None

    def daemon_log(self) -> str:
        path = self.root / "git-daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- addresses ---------------------------------------------------------------------------------

    def git_url(self, name: str) -> str:
        return f"git://{HOST}:{self.git_port}/{name}.git"

    def http_url(self, name: str) -> str:
        """The repository over HTTP; requests need ``username``/``password`` (basic auth)."""
        return f"http://{HOST}:{self.http_port}/{name}.git"

    @property
    def http_requests(self) -> list[HTTPRequest]:
        """Every request the HTTP server has answered so far, oldest first."""
        assert self._http is not None, "the server is not running"
        with self._http.lock:
            return list(self._http.requests)

    @staticmethod
    def closed_port_url(name: str = "missing") -> str:
        """A git:// URL on a loopback port where nothing listens: connections are refused."""
        return f"git://{HOST}:{free_port()}/{name}.git"

    @staticmethod
    @contextmanager
    def unresponsive(scheme: str = "git") -> Iterator[str]:
        """A URL whose server accepts connections (the kernel does, via the backlog) but never
        answers, for timeout tests. The socket is closed on exit."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((HOST, 0))
            listener.listen(16)
            yield f"{scheme}://{HOST}:{listener.getsockname()[1]}/silent.git"

    # -- repositories ------------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        return self.repos / f"{name}.git"

    def git(
        self, name: str, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        """Run git in repository ``name``; return stripped stdout, failing loudly."""
        done = subprocess.run(
            ["git", "--git-dir", str(self.path(name)), *args],
            input=input,
            env={**os.environ, **GIT_ENV, **(env or {})},
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"git {' '.join(args)} in {name} failed: {done.stderr.decode(errors='replace')}"
            )
        return done.stdout.decode().strip()

    def create_repo(self, name: str, *, branch: str = "main") -> Path:
        """An empty bare repository whose HEAD names ``branch`` (which has no commit yet)."""
        path = self.path(name)
        subprocess.run(
            ["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)],
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            timeout=60,
            check=True,
        )
        return path

    def commit(
        self,
        name: str,
        files: Mapping[str, str | bytes],
        *,
        message: str = "update",
        branch: str | None = None,
        executable: Iterable[str] = (),
        delete: Iterable[str] = (),
    ) -> str:
        """Commit ``files`` (path -> content) on top of ``branch`` (default: HEAD's branch),
        removing ``delete``; create the branch if new. Return the commit SHA."""
        with self._lock:
            ref = f"refs/heads/{branch}" if branch else self.git(name, "symbolic-ref", "HEAD")
            parent = self._sha_or_none(name, ref)
            index = self.root / f"index-{name}-{threading.get_ident()}"
            index_env = {"GIT_INDEX_FILE": str(index)}
            try:
                if parent:
                    self.git(name, "read-tree", parent, env=index_env)
                else:
                    self.git(name, "read-tree", "--empty", env=index_env)
                modes = set(executable)
                entries = []
                for path, content in files.items():
                    data = content.encode() if isinstance(content, str) else content
                    blob = self.git(name, "hash-object", "-w", "--stdin", input=data)
                    entries.append(f"{'100755' if path in modes else '100644'} {blob}\t{path}\n")
                # Mode 0 removes an entry; --index-info needs no work tree (bare repositories).
                entries += [f"0 {'0' * 40}\t{path}\n" for path in delete]
                self.git(name, "update-index", "--index-info", input="".join(entries).encode(), env=index_env)
                tree = self.git(name, "write-tree", env=index_env)
            finally:
                index.unlink(missing_ok=True)
            parents = ["-p", parent] if parent else []
            sha = self.git(name, "commit-tree", tree, *parents, "-m", message)
            self.git(name, "update-ref", ref, sha, parent or "0" * 40)
            return sha

    def delete(
        self, name: str, paths: Iterable[str], *, message: str = "delete", branch: str | None = None
    ) -> str:
        """Commit the removal of ``paths``; return the commit SHA."""
        return self.commit(name, {}, message=message, branch=branch, delete=paths)

    def tag(self, name: str, tag: str, *, ref: str = "HEAD", message: str | None = None) -> str:
        """Tag ``ref``: annotated when ``message`` is given, lightweight otherwise. Moves an
        existing tag. Return the SHA of the tagged commit."""
        annotation = ["-a", "-m", message] if message is not None else []
        self.git(name, "tag", "--force", *annotation, tag, ref)
        return self.rev_parse(name, f"refs/tags/{tag}^{{commit}}")

    def set_ref(self, name: str, ref: str, sha: str) -> None:
        """Point any ref (``refs/heads/x``, ``refs/pull/1/head`` ...) at ``sha``."""
        self.git(name, "update-ref", ref, sha)

    def delete_ref(self, name: str, ref: str) -> None:
        self.git(name, "update-ref", "-d", ref)

    def set_head(self, name: str, branch: str) -> None:
        """Make ``branch`` the repository's default branch."""
        self.git(name, "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    def rev_parse(self, name: str, revision: str) -> str:
        return self.git(name, "rev-parse", "--verify", revision)

    def _sha_or_none(self, name: str, ref: str) -> str | None:
        done = subprocess.run(
            ["git", "--git-dir", str(self.path(name)), "rev-parse", "--verify", "--quiet", ref],
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            timeout=60,
            check=False,
        )
        return done.stdout.decode().strip() if done.returncode == 0 else None


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], project_root: Path, username: str, password: str) -> None:
        super().__init__(address, _GitHTTPHandler)
        self.project_root = project_root
        self.username = username
        self.password = password
        self.requests: list[HTTPRequest] = []
        self.lock = threading.Lock()

    def record(self, request: HTTPRequest) -> None:
        with self.lock:
            self.requests.append(request)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients killed mid-request (timeout tests) break the pipe; that is not a server bug.
        log.debug("git http client %s went away", client_address, exc_info=True)


class _GitHTTPHandler(BaseHTTPRequestHandler):
    """``git http-backend`` as CGI, behind HTTP basic auth."""

    server: _GitHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("git http: " + format, *args)

    def _user(self) -> str | None:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        valid = hmac.compare_digest(user, self.server.username) & hmac.compare_digest(
            password, self.server.password
        )
        return user if valid else None

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        user = self._user()
        if user is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="driftguard tests"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.server.record(HTTPRequest(self.command, path, None, 401))
            return
        body = self._body()
        env = {
            **os.environ,
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.server.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        done = subprocess.run(
            ["git", "http-backend"],
            input=body,
            env=env,
            capture_output=True,
            timeout=_BACKEND_TIMEOUT,
            check=False,
        )
        head, payload = _split_cgi(done.stdout)
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key.strip(), value.strip()))
        if done.returncode != 0 and not head:
            status, payload = 500, done.stderr
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.server.record(HTTPRequest(self.command, path, user, status))


def _split_cgi(output: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, payload = output.partition(separator)
        if found:
            return head, payload
    return b"", output
