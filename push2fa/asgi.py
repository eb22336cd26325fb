"""The ASGI entry point Hypercorn serves: `hypercorn -c hypercorn.toml push2fa.asgi:app`.

`push2fa serve` serves the same objects through push2fa.server.run, which also drains
open sockets the moment a shutdown signal arrives (see there for why that matters).
"""

from dotenv import find_dotenv, load_dotenv

from push2fa.server import build_asgi
from push2fa.web.app import create_app

load_dotenv(find_dotenv(usecwd=True), override=False)
application = create_app()
app = build_asgi(application)
