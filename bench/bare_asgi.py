"""Hypercorn's target for the reference stack: `bench.bare_asgi:app`, the bare app wrapped
like push2fa's target, `bench.asgi:app`: the same traffic counter (bench/traffic.py, a
closure per websocket) and the same stall and GC probe (bench/probe.py), so that neither
instrument's cost lands on one side only."""

from bench import probe
from bench.bare import app as bare_app
from bench.traffic import TrafficCounter

app = probe.wrap(TrafficCounter().wrap(bare_app))
