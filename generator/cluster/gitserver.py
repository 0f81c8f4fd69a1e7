"""A Git server on loopback for the GitOps tools: `git http-backend` (smart HTTP, fetch
and push) as a CGI behind a tiny HTTP server in a thread of this process.

Flux fetches only over http(s) or ssh, so `git daemon` or a file path will not do; Argo
CD's repo-server accepts the same URL. Nothing listens beyond 127.0.0.1, and there is no
authentication: it serves throwaway repositories to controllers on this machine only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from mlgen.errors import ClusterError

_AUTHOR = {
    "GIT_AUTHOR_NAME": "mlgen",
    "GIT_AUTHOR_EMAIL": "mlgen@localhost",
    "GIT_COMMITTER_NAME": "mlgen",
    "GIT_COMMITTER_EMAIL": "mlgen@localhost",
}


@dataclass
class GitServer:
    """A running server: bare repositories under `root`, served at `base_url`."""

    root: Path
    port: int
    _server: ThreadingHTTPServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, repository: str) -> str:
        return f"{self.base_url}/{repository}.git"

    def create(self, repository: str) -> str:
        """A new empty bare repository that accepts pushes; returns its URL."""
        path = self.root / f"{repository}.git"
        git(["init", "--quiet", "--bare", "--initial-branch=main", str(path)], cwd=self.root)
        # Anonymous push: http-backend refuses receive-pack without an authenticated user.
        git(["config", "http.receivepack", "true"], cwd=path)
        return self.url(repository)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start(root: Path) -> GitServer:
    """Serve the bare repositories under `root` on a free loopback port."""
    backend = _backend()
    root.mkdir(parents=True, exist_ok=True)

    class Handler(_CgiHandler):
        project_root = root
        program = backend

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="mlgen-git-server", daemon=True)
    thread.start()
    return GitServer(root=root, port=server.server_address[1], _server=server, _thread=thread)


def git(args: list[str], *, cwd: Path) -> str:
    """Run git with a fixed identity and no user or system config; errors name the fix."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(cwd),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        **_AUTHOR,
    }
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(
            f"`git {' '.join(args)}` failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def commit_and_push(worktree: Path, *, message: str) -> str:
    """Commit everything in `worktree` and push it to its `origin`; returns the commit."""
    git(["add", "--all"], cwd=worktree)
    git(["commit", "--quiet", "--allow-empty", "-m", message], cwd=worktree)
    git(["push", "--quiet", "origin", "HEAD:main"], cwd=worktree)
    return git(["rev-parse", "HEAD"], cwd=worktree).strip()


def clone_empty(url: str, worktree: Path) -> Path:
    """A work tree whose origin is `url`, on branch main (the repository may be empty)."""
    worktree.mkdir(parents=True, exist_ok=True)
    git(["init", "--quiet", "--initial-branch=main"], cwd=worktree)
    git(["remote", "add", "origin", url], cwd=worktree)
    return worktree


def _backend() -> Path:
    if shutil.which("git") is None:
        raise ClusterError(
            "no git on PATH: install git (apt-get install git); the GitOps "
            "tests serve their manifests from a local repository"
        )
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=False
    ).stdout.strip()
    backend = Path(exec_path) / "git-http-backend"
    if not backend.is_file():
        raise ClusterError(
            f"{backend} is missing: install git's http-backend (Debian: it "
            "ships in the git package)"
        )
    return backend


class _CgiHandler(BaseHTTPRequestHandler):
    """One request = one `git http-backend` run, per the CGI/1.1 variables it reads."""

    project_root: Path
    program: Path

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the controllers' own logs say what they fetched

    def _cgi(self) -> None:
        parts = urlsplit(self.path)
        env = {
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH": os.environ.get("PATH", os.defpath),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        for key, value in self.headers.items():
            env["HTTP_" + key.upper().replace("-", "_")] = value
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        proc = subprocess.run(
            [str(self.program)], input=body, env=env, capture_output=True, check=False
        )
        blank = b"\r\n\r\n" if b"\r\n\r\n" in proc.stdout else b"\n\n"
        head, _, payload = proc.stdout.partition(blank)
        headers = [
            line.split(":", 1) for line in head.decode("latin-1").splitlines() if ":" in line
        ]
        status = next((v.strip() for k, v in headers if k.lower() == "status"), "200 OK")
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason or None)
        for key, value in headers:
            if key.lower() not in ("status", "content-length"):
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
