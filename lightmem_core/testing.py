"""Test helpers for users of LightMem: a fast, deterministic embedder whose similarities
mean something, so tests need no model, and real servers on loopback (Chroma, PostgreSQL).

    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder, chroma_server

    mem = LightMem(tmp_path, embedder=HashingEmbedder())
    with chroma_server(tmp_path / "chroma") as url:
        shared = LightMem(tmp_path / "shared", chroma_url=url)
    with postgres_server() as dsn:
        fleet = LightMem(tmp_path / "app", records=dsn)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HashingEmbedder", "PostgresNotFound", "chroma_server", "postgres_server"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of words and character trigrams hashed into ``dimension`` buckets, normalised.

    Texts that share words get a high cosine similarity; unrelated texts a low one.
    """

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        return f"hashing-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _bucket(self, feature: str) -> int:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little") % self._dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * self._dimension
            for word in _WORD.findall(text.lower()):
                vector[self._bucket("w:" + word)] += 1.0
                padded = f"#{word}#"
                for i in range(len(padded) - 2):
                    vector[self._bucket("t:" + padded[i : i + 3])] += 0.3
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chroma_server(folder: Path, *, timeout_s: float = 60.0) -> Iterator[str]:
    """A real ``chroma run`` server on 127.0.0.1 with its data in ``folder``; yields its URL
    and stops it (by its own pid) afterwards. Raises ``RuntimeError`` if it does not start."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        raise RuntimeError("the chroma command is not installed")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = _free_port()
    with (folder / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                chroma,
                "run",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--path",
                str(folder / "db"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (folder / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the chroma server did not start: {tail}")
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def postgres_bindir() -> Path:
    """The folder of PostgreSQL's ``initdb`` and ``postgres``: ``$LIGHTMEM_PG_BINDIR``, else
    what ``pg_config --bindir`` names. Raises :class:`PostgresNotFound` saying how to get one."""
    named = os.environ.get("LIGHTMEM_PG_BINDIR")
    candidates = [Path(named)] if named else []
    pg_config = shutil.which("pg_config")
    if pg_config is not None and not named:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresNotFound(
        "no PostgreSQL server binaries (initdb, postgres) found: install the server "
        "(Debian/Ubuntu: apt install postgresql; macOS: brew install postgresql@15) or set "
        "LIGHTMEM_PG_BINDIR to the folder that holds them"
    )


@contextmanager
def postgres_server(*, fsync: bool = True, timeout_s: float = 60.0) -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 in a fresh temporary cluster; yields its URL
    (``postgresql://lightmem@127.0.0.1:PORT/postgres``, trust authentication: loopback only)
    and stops it by its own pid afterwards, removing the cluster.

    PostgreSQL refuses to run as root; as root, the server runs as ``nobody``. ``fsync=False``
    is for tests that do not crash the server (faster commits). Raises
    :class:`PostgresNotFound` without the binaries, ``RuntimeError`` if it does not start."""
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0
    # Not under the caller's folders: as root the server's user must be able to reach it.
    cluster = Path(tempfile.mkdtemp(prefix="lightmem-pg-"))
    data, sockets, log_path = cluster / "data", cluster / "sockets", cluster / "server.log"
    user: str | None = "nobody" if as_root else None
    try:
        sockets.mkdir()
        if as_root:
            shutil.chown(cluster, user="nobody")
            shutil.chown(sockets, user="nobody")
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "lightmem", "--auth=trust"]
        init = subprocess.run(
            [*initdb, "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True,
            text=True,
            user=user,
            cwd=cluster,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
        port = _free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(sockets),
            "fsync": "on" if fsync else "off",
            "max_connections": "200",
        }
        arguments = [f"-c{name}={value}" for name, value in settings.items()]
        with log_path.open("wb") as log:
            if as_root:
                shutil.chown(log_path, user="nobody")
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), *arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=user,
                cwd=cluster,
            )
        try:
            deadline = time.monotonic() + timeout_s
            while not _accepts(bindir, port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the PostgreSQL server did not start: {tail}")
                time.sleep(0.1)
            yield f"postgresql://lightmem@127.0.0.1:{port}/postgres"
        finally:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: ends open sessions
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        shutil.rmtree(cluster, ignore_errors=True)


def _accepts(bindir: Path, port: int) -> bool:
    ready = bindir / "pg_isready"
    if ready.is_file():
        checked = subprocess.run(
            [str(ready), "-q", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        return checked.returncode == 0
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
