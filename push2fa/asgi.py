"""The ASGI entry point Hypercorn serves: `hypercorn -c hypercorn.toml push2fa.asgi:app`.

`push2fa serve` serves the same stack through push2fa.server.run, which also drains
open sockets the moment a shutdown signal arrives (see there for why that matters).
"""

from push2fa.web.stack import from_environment

application, app = from_environment()
