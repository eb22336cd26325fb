"""An optional ngrok tunnel, as the seed app offered, so Authy can reach a laptop.

Only `push2fa serve` opens it, before any worker starts, and exports the tunnel's https
URL as PUSH2FA_PUBLIC_URL: every worker then checks webhook signatures against the URL
Authy really calls.
"""

from __future__ import annotations

import os


class TunnelError(RuntimeError):
    pass


def open_tunnel(bind: str) -> str:
    """Open an https tunnel to `bind` (host:port) and return its public URL."""
    try:
        from pyngrok import ngrok
    except ImportError:
        raise TunnelError(
            "PUSH2FA_NGROK=1 needs the optional ngrok extra: pip install -e '.[ngrok]'"
        ) from None
    port = bind.rsplit(":", 1)[-1]
    if not port.isdigit():
        raise TunnelError(f"cannot tunnel to {bind!r}: bind a host:port to use PUSH2FA_NGROK")
    tunnel = ngrok.connect(int(port), "http")
    url = str(tunnel.public_url).replace("http://", "https://", 1)
    os.environ["PUSH2FA_PUBLIC_URL"] = url
    return url
