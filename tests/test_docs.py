"""The documentation site builds with warnings as errors, its API reference from the docstrings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mtbench.settings.config import PRESETS

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / ".ci" / "mkdocs.yml"
RAW_ROLE = re.compile(r":(class|func|meth|mod|data|attr|obj|exc|param|raises?|returns?|rtype|type):")
"""A reStructuredText role or field left raw in a page (the site renders markdown docstrings)."""


def build(site: Path, config: Path = CONFIG) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    env = {k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"}  # the theme's banner shows
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_the_docs_site_builds_without_warnings(tmp_path):
    result = build(tmp_path / "site")
    assert result.returncode == 0, result.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "RunOptions" in api and "resolve_config" in api and "check_agent" in api
    # no raw reStructuredText on any page
    raw = {
        page.relative_to(tmp_path).as_posix(): match[0]
        for page in (tmp_path / "site").rglob("*.html")
        if (match := RAW_ROLE.search(page.read_text()))
    }
    assert not raw, raw
    # the docs' links into reports/ reach the example reports, copied into the site
    reports = (tmp_path / "site" / "runs-and-reports" / "index.html").read_text()
    for link in re.findall(r'href="\.\./(reports/[^"#]*)"', reports):
        assert (tmp_path / "site" / link / "index.html").is_file() or (tmp_path / "site" / link).is_file(), (
            link
        )
    assert (tmp_path / "site" / "reports" / "mt10-fixed-20k" / "index.html").is_file()
    # the theme prints no end-of-life or MkDocs 2.0 banner (pyproject pins a release without one)
    output = result.stdout + result.stderr
    assert "end of life" not in output and "Material for MkDocs team" not in output, output


def test_the_presets_table_lists_every_preset():
    usage = (ROOT / "docs" / "usage.md").read_text()
    table = usage.split("## Presets", 1)[1].split("\n\n", 2)[1]
    listed = re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)
    assert listed == list(PRESETS)


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [the missing page](missing.md).\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text("site_name: t\ndocs_dir: docs\n")
    result = build(tmp_path / "site", config)
    assert result.returncode != 0 and "missing.md" in result.stderr
