"""Identicon avatars drawn here, so no third party learns who views which profile."""

from __future__ import annotations

import hashlib

GRID = 5
CELL = 16


def identicon_svg(seed: str) -> str:
    """A symmetric 5x5 identicon as SVG; the same seed always gives the same picture."""
    digest = hashlib.sha256(seed.lower().encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    colour = f"hsl({hue}, 55%, 45%)"
    cells = []
    bits = int.from_bytes(digest[2:], "big")
    for row in range(GRID):
        for col in range((GRID + 1) // 2):
            if bits & 1:
                for x in {col, GRID - 1 - col}:
                    cells.append(
                        f'<rect x="{x * CELL}" y="{row * CELL}" width="{CELL}" height="{CELL}"/>'
                    )
            bits >>= 1
    size = GRID * CELL
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'width="{size}" height="{size}" role="img">'
        f'<rect width="{size}" height="{size}" fill="#f1f3f5"/>'
        f'<g fill="{colour}">{"".join(cells)}</g></svg>'
    )
