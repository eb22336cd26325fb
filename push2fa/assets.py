"""Front-end libraries: served from `static/vendor/` (copied from npm by `make assets`), or,
when npm was not available, from a CDN pinned to the same version with SRI hashes.

One table says which file is which; templates ask for `vendor_tags("socket.io.js")` and get
the right tag either way, and the CSP admits the CDN only when the fallback is in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape
from quart import Quart, url_for

from push2fa.config import PROJECT_ROOT

CDN_ORIGIN = "https://cdn.jsdelivr.net"
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
NODE_MODULES = PROJECT_ROOT / "node_modules"


@dataclass(frozen=True)
class VendorFile:
    name: str
    package: str
    version: str
    path: str  # inside the npm package
    integrity: str

    @property
    def kind(self) -> str:
        return "css" if self.name.endswith(".css") else "js"

    @property
    def filename(self) -> str:
        return Path(self.path).name

    @property
    def cdn_url(self) -> str:
        return f"{CDN_ORIGIN}/npm/{self.package}@{self.version}/{self.path}"

    @property
    def installed(self) -> Path:
        return NODE_MODULES / self.package / self.path


VENDOR: dict[str, VendorFile] = {
    f.name: f
    for f in (
        VendorFile(
            "bootstrap.css",
            "bootstrap",
            "5.3.8",
            "dist/css/bootstrap.min.css",
            "sha384-sRIl4kxILFvY47J16cr9ZwB07vP4J8+LH7qKQnuqkuIAvNWLzeN8tE5YBujZqJLB",
        ),
        VendorFile(
            "bootstrap.js",
            "bootstrap",
            "5.3.8",
            "dist/js/bootstrap.bundle.min.js",
            "sha384-FKyoEForCGlyvwx9Hj09JcYn3nv7wiPVlz7YYwJrWVcXK/BmnVDxM+D2scQbITxI",
        ),
        VendorFile(
            "socket.io.js",
            "socket.io-client",
            "4.8.1",
            "dist/socket.io.min.js",
            "sha384-mkQ3/7FUtcGyoppY6bz/PORYoGqOl7/aSUMn2ymDOJcapfS6PHqxhRTMh1RR0Q6+",
        ),
    )
}


def local_assets_present() -> bool:
    return all((VENDOR_DIR / f.filename).is_file() for f in VENDOR.values())


def vendor_tags(name: str) -> Markup:
    """The <script> or <link> tag for a vendor file, local when installed, else pinned CDN."""
    f = VENDOR[name]
    if (VENDOR_DIR / f.filename).is_file():
        url, extra = url_for("static", filename=f"vendor/{f.filename}"), ""
    else:
        url = f.cdn_url
        extra = f' integrity="{escape(f.integrity)}" crossorigin="anonymous"'
    if f.kind == "css":
        return Markup(f'<link rel="stylesheet" href="{escape(url)}"{extra}>')
    return Markup(f'<script src="{escape(url)}"{extra} defer></script>')


def content_security_policy(extra_sources: str = "") -> str:
    """No inline script or style anywhere; a CDN only when vendor files fell back to it."""
    extra = f" {extra_sources}" if extra_sources else ""
    return (
        f"default-src 'self'; script-src 'self'{extra}; style-src 'self'{extra}; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def init_assets(app: Quart) -> None:
    app.add_template_global(vendor_tags, "vendor_tags")
    app.config["CSP_EXTRA_SOURCES"] = "" if local_assets_present() else CDN_ORIGIN
