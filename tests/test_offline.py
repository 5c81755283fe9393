"""The default configuration makes no network call: the whole cycle with sockets blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightmem_core import LightMem


@pytest.mark.slow
@pytest.mark.disable_socket
@pytest.mark.filterwarnings("ignore:A test tried to use socket")  # the probe below, expected
def test_full_cycle_with_default_embedder_and_no_network(tmp_path: Path) -> None:
    import socket

    with pytest.raises(Exception, match=r"(?i)socket"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 9))

    with LightMem(tmp_path / "memory") as mem:  # every default: MiniLM, embedded Chroma
        mem.add("alice", "I just adopted a beagle called Max.", role="user", session_id="s1",
                timestamp="2024-05-08T13:56:00", turn_id="s1-t1", speaker="Alice")  # fmt: skip
        mem.add("alice", "The quarterly report is due on Friday.", session_id="s1", turn_id="s1-t2")
        mem.remember("alice", "Alice is allergic to peanuts.")
        hits = mem.search("alice", "What pet does Alice have?", token_budget=1000)
        assert hits[0].source_ids == ("s1-t1",)
        assert "beagle" in mem.get_context("alice", "What pet does Alice have?", session_id="s9")
        assert mem.search("alice", "food allergy")[0].text == "Alice is allergic to peanuts."
        assert mem.forget("alice").total == 5  # 2 turns, 2 MTM entries, 1 LTM fact
        assert mem.search("alice", "pet") == []
