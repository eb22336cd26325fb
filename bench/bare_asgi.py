"""Hypercorn's target for the reference stack: `bench.bare_asgi:app`, the bare app with the
same stall and GC probe (bench/probe.py) as push2fa's target, `bench.asgi:app`."""

from bench import probe
from bench.bare import app as bare_app

app = probe.wrap(bare_app)
