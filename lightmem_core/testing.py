"""Test helpers for users of LightMem: a fast, deterministic embedder whose similarities
mean something, so tests need no model, and a real Chroma server on loopback.

    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder, chroma_server

    mem = LightMem(tmp_path, embedder=HashingEmbedder())
    with chroma_server(tmp_path / "chroma") as url:
        shared = LightMem(tmp_path / "shared", chroma_url=url)
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["HashingEmbedder", "chroma_server"]

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
