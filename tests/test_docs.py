"""The documentation site builds with warnings as errors, its API reference from the docstrings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CONFIG = Path(__file__).parent.parent / ".ci" / "mkdocs.yml"


def build(site: Path, config: Path = CONFIG) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_the_docs_site_builds_without_warnings(tmp_path):
    result = build(tmp_path / "site")
    assert result.returncode == 0, result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "RunOptions" in api and "resolve_config" in api and "check_agent" in api


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\ndocs_dir: docs\n")
    result = build(tmp_path / "site", config)
    assert result.returncode != 0 and "missing.md" in result.stderr
