"""A report as a list of blocks, rendered to markdown and to PDF (fpdf2) with the same content.

Text may use ``**bold**`` (the only inline markup both renderers share). Each section starts a new
PDF page. The PDF embeds the DejaVu fonts that ship with matplotlib, so it needs no system fonts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image as PILImage


@dataclass(frozen=True)
class Section:
    title: str


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    path: str
    """Relative to the report folder."""
    caption: str


Block = Section | Text | Bullets | Table | Image


def to_markdown(title: str, blocks: list[Block]) -> str:
    lines = [f"# {title}", ""]
    for block in blocks:
        if isinstance(block, Section):
            lines += [f"## {block.title}", ""]
        elif isinstance(block, Text):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(row) + " |" for row in block.rows]
            lines.append("")
        else:
            lines += [f"![{block.caption}]({block.path})", "", f"*{block.caption}*", ""]
    return "\n".join(lines)


def _fonts(pdf: FPDF) -> None:
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdf.add_font("DejaVu", "", str(ttf / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(ttf / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "I", str(ttf / "DejaVuSans-Oblique.ttf"))


def _inline(text: str) -> tuple[str, bool]:
    """Text for fpdf2 and whether to parse its markup: only ``**bold**`` is meant, so text with
    none is written verbatim (fpdf2 would also read ``__`` and ``--`` in paths as markup)."""
    return text.replace("`", ""), "**" in text


def to_pdf(title: str, blocks: list[Block], root: Path, path: Path) -> None:
    """Write the blocks as a PDF; image paths are relative to ``root``."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(title)
    _fonts(pdf)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    first_section = True
    for block in blocks:
        if isinstance(block, Section):
            if not first_section:
                pdf.add_page()
            first_section = False
            pdf.ln(2)
            pdf.set_font("DejaVu", "B", 13)
            pdf.multi_cell(0, 7, block.title, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
        elif isinstance(block, Text | Bullets):
            pdf.set_font("DejaVu", "", 9)
            items = [block.text] if isinstance(block, Text) else [f"\u2022 {item}" for item in block.items]
            for item in items:
                text, markdown = _inline(item)
                pdf.multi_cell(0, 4.5, text, markdown=markdown, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
        elif isinstance(block, Table):
            size = 8 if len(block.header) <= 6 else 6.5
            pdf.set_font("DejaVu", "", size)
            with pdf.table(
                markdown=any("**" in cell for row in block.rows for cell in row),
                text_align="LEFT",
                line_height=size * 0.55,
                headings_style=FontFace(emphasis="BOLD"),
            ) as table:
                for row in [block.header, *block.rows]:
                    cells = table.row()
                    for cell in row:
                        cells.cell(cell)
            pdf.ln(3)
        else:
            with PILImage.open(root / block.path) as im:
                aspect = im.height / im.width
            width = min(0.75 * pdf.epw, (pdf.eph - 25) / aspect)  # tall figures are scaled to fit a page
            pdf.image(str(root / block.path), w=width)
            pdf.set_font("DejaVu", "I", 8)
            pdf.multi_cell(0, 4, block.caption, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))
