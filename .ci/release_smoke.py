"""Smoke test of an installed wheel, run inside a fresh virtualenv by ``.ci/release``.

``python release_smoke.py EXTRA`` (``none``, ``langchain``, ``llamaindex`` or ``postgres``)
checks that the package came from the wheel (not a checkout), that its package data is there
(``py.typed`` of each package), that the demo runs on the embedded defaults, and one round
trip through what the extra adds. Exits non-zero on the first failure.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.resources
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def check(condition: object, message: str) -> None:
    if not condition:
        raise SystemExit(f"release smoke test failed: {message}")


def installed_from_the_wheel() -> None:
    import lightmem_core

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(lightmem_core.__file__).resolve()
    check(site in where.parents, f"lightmem_core imported from {where}, not from {site}")
    version = importlib.metadata.version("lightmem-slm")
    check(lightmem_core.__version__ == version, f"{lightmem_core.__version__} != {version}")
    for package in ("lightmem_core", "lightmem_langchain", "lightmem_llamaindex"):
        check(
            importlib.resources.files(package).joinpath("py.typed").is_file(),
            f"{package}/py.typed is not in the wheel",
        )
    print(f"lightmem-slm {version} from {where.parent}")


def demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lightmem_core.cli", "demo"], capture_output=True, text=True
    )
    check(done.returncode == 0, f"lightmem demo failed:\n{done.stdout}\n{done.stderr}")
    print("demo: ok")


def langchain() -> None:
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder
    from lightmem_langchain import LightMemRetriever

    with (
        tempfile.TemporaryDirectory() as folder,
        LightMem(Path(folder), embedder=HashingEmbedder()) as mem,
    ):
        mem.add("ana", "I keep bees on my roof in Lisbon")
        documents = LightMemRetriever(mem, user_id="ana", k=2).invoke("what do I keep?")
        check(any("bees" in d.page_content for d in documents), f"retriever gave {documents}")
    print("langchain retriever: ok")


def llamaindex() -> None:
    from llama_index.core.llms import ChatMessage

    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder
    from lightmem_llamaindex import LightMemMemory

    with (
        tempfile.TemporaryDirectory() as folder,
        LightMem(Path(folder), embedder=HashingEmbedder()) as mem,
    ):
        memory = LightMemMemory.from_defaults(mem=mem, user_id="ana", session_id="s1")
        memory.put(ChatMessage(role="user", content="I keep bees on my roof in Lisbon"))
        check("bees" in str(memory.get("what do I keep?")), "memory.get lost the turn")
    print("llamaindex memory: ok")


def postgres() -> None:
    from lightmem_core import LightMem
    from lightmem_core.testing import HashingEmbedder, postgres_server

    with postgres_server() as url, tempfile.TemporaryDirectory() as folder:

        async def round_trip() -> None:
            async with LightMem(Path(folder), embedder=HashingEmbedder(), records=url) as mem:
                await mem.aadd("ana", "I keep bees on my roof in Lisbon")
                hits = await mem.asearch("ana", "what do I keep?")
                check(any("bees" in h.text for h in hits), f"search gave {hits}")

        asyncio.run(round_trip())
    print("postgres, native async: ok")


ROUND_TRIPS = {"none": None, "langchain": langchain, "llamaindex": llamaindex, "postgres": postgres}

if __name__ == "__main__":
    extra = sys.argv[1] if len(sys.argv) > 1 else "none"
    check(extra in ROUND_TRIPS, f"unknown extra {extra!r}: one of {sorted(ROUND_TRIPS)}")
    installed_from_the_wheel()
    demo()
    trip = ROUND_TRIPS[extra]
    if trip is not None:
        trip()
