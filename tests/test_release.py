"""Release metadata: one version, read by the package metadata from ``__version__``, with
its entry in the changelog. (The built wheel itself is checked by ``.ci/release``: installed
into fresh virtualenvs with each extra and smoke-tested.)"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import lightmem_core

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_set_in_one_place() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("lightmem-slm") == lightmem_core.__version__


def test_the_changelog_has_the_current_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = re.escape(lightmem_core.__version__)
    assert re.search(rf"^## \[{version}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert "## [Unreleased]" in changelog


def test_the_release_check_smoke_tests_every_extra() -> None:
    script = (ROOT / ".ci" / "release").read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    user_extras = set(project["optional-dependencies"]) - {"all", "dev", "docs"}
    looped = re.search(r"for extra in ([\w ]+); do", script)
    assert looped is not None
    assert set(looped.group(1).split()) == user_extras | {"none"}
