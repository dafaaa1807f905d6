"""A report as a list of blocks, rendered to markdown and to PDF (fpdf2) with the same content.

Text may use ``**bold**`` and ``[label](https://...)`` links (the inline markup both renderers
share). The PDF flows: a section starts a new page only when too little of the page is left for
its heading and a few lines; a figure that does not fit the rest of a page starts the next one.
Table columns are at least as wide as their longest word, so no word is broken. The PDF embeds the
DejaVu fonts that ship with matplotlib, so it needs no system fonts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image as PILImage

LINK = re.compile(r"\[([^][]+)\]\(([^()]+)\)")
WORD_HYPHEN = re.compile(r"(?<=[A-Za-z])-(?=[A-Za-z0-9])")
"""A hyphen inside a name (``button-press-topdown-wall-v3``): a table cell may break after it."""

SECTION_ROOM = 40.0
"""Millimetres a section heading needs below it on a page (or its first figure's height), or it
starts the next page."""
GAP = 4.0
"""Millimetres between figures side by side."""


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
    width: float = 0.75
    """Width in the PDF as a fraction of the text width (tall figures are scaled to fit a page)."""


@dataclass(frozen=True)
class Row:
    """Figures side by side in the PDF (one after the other in markdown), each with its caption."""

    images: list[Image] = field(default_factory=list)


Block = Section | Text | Bullets | Table | Image | Row


def _markdown_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    return lines + ["| " + " | ".join(row) + " |" for row in table.rows] + [""]


def _markdown_image(image: Image) -> list[str]:
    return [f"![{image.caption}]({image.path})", "", f"*{image.caption}*", ""]


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
            lines += _markdown_table(block)
        elif isinstance(block, Row):
            lines += [line for image in block.images for line in _markdown_image(image)]
        else:
            lines += _markdown_image(block)
    return "\n".join(lines)


def _fonts(pdf: FPDF) -> None:
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdf.add_font("DejaVu", "", str(ttf / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(ttf / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "I", str(ttf / "DejaVuSans-Oblique.ttf"))


def _inline(text: str) -> tuple[str, bool]:
    """Text for fpdf2 and whether to parse its markup. Only ``**bold**`` and links are meant, so
    fpdf2's other markers (``__``, ``--``, ``~~``, common in paths and names) are escaped; text with
    no markup is written verbatim."""
    text = text.replace("`", "")
    if "**" not in text and not LINK.search(text):
        return text, False
    for marker in ("__", "--", "~~"):
        text = text.replace(marker, "\\" + marker)
    return text, True


def plain(text: str) -> str:
    """``text`` without its inline markup: what a reader sees."""
    return LINK.sub(r"\1", text).replace("**", "").replace("`", "")


def _table_cell(text: str) -> str:
    """A table cell for fpdf2: a name may break after its hyphens; a parenthesis stays on the line
    of the word before it (``0.00 (0)``: a score and its runs)."""
    return WORD_HYPHEN.sub("-\u200b", text).replace(" (", "\u00a0(")


def _widths(pdf: FPDF, cells: list[str], bold: bool) -> tuple[float, float]:
    """The longest word and the longest cell of ``cells`` in the current font (bold for the header
    and for cells in ``**bold**``)."""
    words, longest = 0.0, 0.0
    for cell in cells:
        pdf.set_font(style="B" if bold or "**" in cell else "")
        text = plain(cell)
        words = max([words, *(pdf.get_string_width(w) for w in re.split("[ \u200b]+", _table_cell(text)))])
        longest = max(longest, pdf.get_string_width(text))
    pdf.set_font(style="")
    return words, longest


def _column_widths(pdf: FPDF, table: Table) -> list[float] | None:
    """Millimetres per column: each at least its longest word (plus padding), the rest of the text
    width shared in proportion to the columns' longest cells; None when the words do not fit."""
    pad = 3.0
    columns = []
    for i, head in enumerate(table.header):
        body = _widths(pdf, [row[i] for row in table.rows], bold=False)
        top = _widths(pdf, [head], bold=True)
        columns.append((max(body[0], top[0]) + pad, max(body[1], top[1]) + pad))
    least = [w for w, _ in columns]
    spare = pdf.epw - sum(least)
    if spare < 0:
        return None
    extra = [max(0.0, full - w) for w, full in columns]
    if sum(extra) <= spare:  # everything on one line: no wider than it needs
        return [max(w, full) for w, full in columns]
    return [w + spare * e / sum(extra) for w, e in zip(least, extra, strict=True)]


def _pdf_table(pdf: FPDF, table: Table) -> None:
    """The table in the largest font (8 pt down to 5.5 pt) at which no word has to break (names
    may break after their hyphens)."""
    for size in (8.0, 7.5, 7.0, 6.5, 6.0, 5.5):
        pdf.set_font("DejaVu", "", size)
        widths = _column_widths(pdf, table)
        if widths is not None:
            break
    else:
        widths = [pdf.epw / len(table.header)] * len(table.header)  # words break only at 5.5 pt
    text = [[_table_cell(_inline(cell)[0]) for cell in row] for row in [table.header, *table.rows]]
    with pdf.table(
        markdown=any(_inline(cell)[1] for row in [table.header, *table.rows] for cell in row),
        text_align="LEFT",
        line_height=size * 0.5,
        col_widths=widths,
        width=min(sum(widths), pdf.epw),
        align="LEFT",
        headings_style=FontFace(emphasis="BOLD"),
    ) as pdf_table:
        for row in text:
            cells = pdf_table.row()
            for cell in row:
                cells.cell(cell)
    pdf.ln(2)


def _image_height(root: Path, image: Image, width: float) -> float:
    with PILImage.open(root / image.path) as im:
        return width * im.height / im.width


def _row_layout(pdf: FPDF, root: Path, images: list[Image]) -> tuple[list[float], list[float], float]:
    """Widths and heights of figures side by side, and the height of their tallest caption."""
    widths = [image.width * pdf.epw for image in images]
    if len(images) > 1:
        scale = (pdf.epw - GAP * (len(images) - 1)) / sum(widths)
        widths = [w * min(1.0, scale) for w in widths]
    heights = [_image_height(root, im, w) for im, w in zip(images, widths, strict=True)]
    limit = pdf.eph - 20
    if max(heights) > limit:  # tall figures are scaled to fit a page
        widths = [w * limit / max(heights) for w in widths]
        heights = [h * limit / max(heights) for h in heights]
    style, size = pdf.font_style, pdf.font_size_pt
    pdf.set_font("DejaVu", "I", 7.5)
    lines = max(pdf.get_string_width(plain(im.caption)) / w + 1 for im, w in zip(images, widths, strict=True))
    pdf.set_font("DejaVu", style, size)
    return widths, heights, 3.6 * int(lines) + 3


def _row_height(pdf: FPDF, root: Path, images: list[Image]) -> float:
    _, heights, caption = _row_layout(pdf, root, images)
    return max(heights) + caption


def _pdf_images(pdf: FPDF, root: Path, images: list[Image]) -> None:
    """Figures side by side (one figure: on its own line) with their captions below."""
    widths, heights, caption = _row_layout(pdf, root, images)
    if pdf.get_y() + max(heights) + caption > pdf.page_break_trigger:
        pdf.add_page()
    top, x = pdf.get_y(), pdf.l_margin
    pdf.set_font("DejaVu", "I", 7.5)
    bottom = top
    for image, width, height in zip(images, widths, heights, strict=True):
        pdf.image(str(root / image.path), x=x, y=top, w=width)
        pdf.set_xy(x, top + height + 1)
        pdf.multi_cell(width, 3.6, _inline(image.caption)[0], align="L")
        bottom = max(bottom, pdf.get_y())
        x += width + GAP
    pdf.set_xy(pdf.l_margin, bottom + 2)


def _pdf_section(pdf: FPDF, title: str, room: float) -> None:
    """The heading, on the next page unless ``room`` millimetres are left below it."""
    if pdf.get_y() + 10 + room > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font("DejaVu", "B", 12)
    pdf.multi_cell(0, 6, title, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def to_pdf(title: str, blocks: list[Block], root: Path, path: Path) -> None:
    """Write the blocks as a PDF; image paths are relative to ``root``."""
    pdf = FPDF(format="A4")
    pdf.set_margins(15, 12, 15)
    pdf.set_auto_page_break(True, margin=12)
    pdf.set_title(title)
    pdf.MARKDOWN_LINK_COLOR = (20, 60, 160)  # type: ignore[assignment]  # fpdf2 declares it None
    _fonts(pdf)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    for i, block in enumerate(blocks):
        if isinstance(block, Section):
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            images = after.images if isinstance(after, Row) else [after] if isinstance(after, Image) else []
            room = _row_height(pdf, root, images) if images else SECTION_ROOM
            _pdf_section(pdf, block.title, room)
        elif isinstance(block, Text | Bullets):
            pdf.set_font("DejaVu", "", 8.5)
            items = [block.text] if isinstance(block, Text) else [f"\u2022 {item}" for item in block.items]
            for item in items:
                text, markdown = _inline(item)
                pdf.multi_cell(0, 4.2, text, markdown=markdown, align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif isinstance(block, Table):
            _pdf_table(pdf, block)
        else:
            _pdf_images(pdf, root, block.images if isinstance(block, Row) else [block])
    pdf.output(str(path))
