"""The ASGI entry point Hypercorn serves: `hypercorn -c hypercorn.toml push2fa.asgi:app`."""

from push2fa.app import create_app
from push2fa.server import build_asgi

app = build_asgi(create_app())
