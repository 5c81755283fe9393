"""Test helpers for users of LightMem: a fast, deterministic embedder whose similarities
mean something, so tests need no model.

    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder

    mem = LightMem(tmp_path, embedder=HashingEmbedder())
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

__all__ = ["HashingEmbedder"]

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
