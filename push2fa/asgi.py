"""The ASGI entry point Hypercorn serves: `hypercorn -c hypercorn.toml push2fa.asgi:app`."""

from dotenv import find_dotenv, load_dotenv

from push2fa.app import create_app
from push2fa.server import build_asgi

load_dotenv(find_dotenv(usecwd=True), override=False)
app = build_asgi(create_app())
