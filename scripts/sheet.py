"""Contact sheets: rows of images side by side with a caption underneath (scripts/gallery.py
and the time-to-quality benchmark draw theirs with this)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def contact_sheet(rows: list[list[np.ndarray]], caption: str, height: int) -> Image.Image:
    """Rows of images side by side, each scaled to `height`, the caption underneath."""
    thumbs = [[_thumbnail(image, height) for image in row] for row in rows]
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in thumbs)
    font = ImageFont.load_default(size=max(10, height // 18))
    lines = _wrap(caption, font, width - 8)
    line_height = font.getbbox("Ag")[3] + 4
    grid_height = len(rows) * (height + 4)
    sheet = Image.new("RGB", (width, grid_height + len(lines) * line_height + 6), "white")
    for y, row in enumerate(thumbs):
        x = 0
        for thumb in row:
            sheet.paste(thumb, (x, y * (height + 4)))
            x += thumb.width + 4
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(lines):
        draw.text((4, grid_height + 2 + i * line_height), line, "black", font)
    return sheet


def _thumbnail(image: np.ndarray, height: int) -> Image.Image:
    picture = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return picture.resize((round(picture.width * height / picture.height), height), Image.LANCZOS)


def _wrap(text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and font.getlength(f"{line} {word}") > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line]
