"""Every public method of ``LightMem`` that does work has an async twin with the very same
parameters (names, kinds, defaults), so nothing is typed ``**kwargs`` and nothing drifts."""

from __future__ import annotations

import inspect

from lightmem_core import LightMem


def test_every_async_twin_has_the_sync_signature() -> None:
    twins = 0
    for name, method in inspect.getmembers(LightMem, inspect.iscoroutinefunction):
        if name.startswith("_") or not name.startswith("a"):
            continue
        sync = getattr(LightMem, name[1:], None)
        if sync is None:
            continue
        theirs = list(inspect.signature(sync).parameters.values())
        ours = list(inspect.signature(method).parameters.values())
        assert [(p.name, p.kind, p.default) for p in ours] == [
            (p.name, p.kind, p.default) for p in theirs
        ], name
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours), name
        twins += 1
    assert twins >= 12
