"""MkDocs hook: the example reports in reports/ are part of the site, under reports/, so that the
docs' links into ``../reports/`` work on the site as they do in the repository."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "reports"
LINK = re.compile(r"\]\((\.\./)+reports/([^)#\s]*)")
DOCS_LINK = re.compile(r"\]\(((?:\.\./)+)docs/")


def on_files(files: Files, config: Any) -> Files:
    """Every file under reports/ as a file of the site (its markdown as pages)."""
    for path in sorted(REPORTS.rglob("*")):
        if path.is_file():
            files.append(
                File(
                    path.relative_to(ROOT).as_posix(),
                    str(ROOT),
                    config["site_dir"],
                    config["use_directory_urls"],
                )
            )
    return files


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """A link from docs/ into ``../reports/`` as a link to that page of the site (a folder: its
    README), and a link from a report into ``../docs/`` as one to the docs page of the site."""
    depth = page.file.src_uri.count("/")
    if page.file.src_uri.startswith("reports/"):
        return DOCS_LINK.sub(lambda m: f"]({m[1]}" if len(m[1]) == 3 * depth else m[0], markdown)

    def relink(match: re.Match) -> str:
        target = match[2]
        if target == "" or target.endswith("/"):
            target += "README.md"
        return f"]({'../' * depth}reports/{target}"

    return LINK.sub(relink, markdown)
