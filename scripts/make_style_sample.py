#!/usr/bin/env python3
"""Generate the bundled style sample, nst_tf/samples/swirls.jpg: swirling brush strokes.

Deterministic (fixed seed), made only of NumPy and Pillow drawing, so the image is ours to
release into the public domain (CC0). Run from the repository root:

    python scripts/make_style_sample.py
"""

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512
OUT = os.path.join(os.path.dirname(__file__), "..", "nst_tf", "samples", "swirls.jpg")
# A night-sky palette: deep blues, teal, ochre, cream.
PALETTE = [(23, 42, 94), (35, 72, 140), (64, 115, 170), (38, 110, 120),
           (214, 170, 60), (235, 205, 110), (240, 232, 200), (18, 28, 58)]  # fmt: skip


def flow_angle(x: float, y: float) -> float:
    """Direction of the stroke field at (x, y): two vortices over a gentle wave."""
    angle = 0.6 * math.sin(y / 60.0) + 0.4 * math.cos(x / 90.0)
    for cx, cy, strength in ((170, 180, 1.0), (360, 330, -0.8)):
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy
        angle += strength * math.exp(-r2 / 12000.0) * (math.atan2(dy, dx) + math.pi / 2)
    return angle


def main() -> None:
    rng = np.random.default_rng(1889)
    img = Image.new("RGB", (SIZE, SIZE), PALETTE[0])
    draw = ImageDraw.Draw(img)
    for _ in range(2600):
        x, y = rng.uniform(0, SIZE, 2)
        color = PALETTE[rng.integers(len(PALETTE))]
        color = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in color)
        width = int(rng.integers(3, 8))
        points = [(x, y)]
        for _ in range(int(rng.integers(6, 14))):
            a = flow_angle(x, y)
            x, y = x + 4 * math.cos(a), y + 4 * math.sin(a)
            points.append((x, y))
        draw.line(points, fill=color, width=width, joint="curve")
    img = img.filter(ImageFilter.SMOOTH)
    img.save(OUT, quality=88)
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT) // 1024} KB)")


if __name__ == "__main__":
    main()
