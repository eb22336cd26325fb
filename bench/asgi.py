"""Hypercorn's target for the benchmark server: `bench.asgi:app` (see bench/server.py),
push2fa in its benchmark configuration with the stall and GC probe (bench/probe.py) that
the bare stack's target, `bench.bare_asgi:app`, carries too."""

from bench import probe
from bench.app import create_bench_asgi

app = probe.wrap(create_bench_asgi())
