"""Hypercorn's target for the benchmark server: `bench.asgi:app` (see bench/server.py)."""

from bench.app import create_bench_asgi

app = create_bench_asgi()
