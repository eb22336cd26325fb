"""Render the brand icon (push2fa/static/brand/icon.svg) to the PNG app icons the phone
Approver installs with (192 and 512 px), with the same Chromium the browser tests use.

Run by `make icons`; the PNGs are committed, so nothing renders at run time.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from playwright.async_api import async_playwright

BRAND = Path(__file__).resolve().parents[1] / "push2fa" / "static" / "brand"
SIZES = (192, 512)
CHROMIUM = "/usr/bin/chromium"


async def render() -> None:
    svg = base64.b64encode((BRAND / "icon.svg").read_bytes()).decode()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        for size in SIZES:
            page = await browser.new_page(viewport={"width": size, "height": size})
            await page.set_content(
                '<body style="margin:0;background:transparent">'
                f'<img src="data:image/svg+xml;base64,{svg}" width="{size}" height="{size}"'
                ' style="display:block"></body>'
            )
            await page.wait_for_load_state("load")
            target = BRAND / f"icon-{size}.png"
            await page.screenshot(path=target, omit_background=True)
            print(f"wrote {target}")
        await browser.close()


if __name__ == "__main__":
    asyncio.run(render())
