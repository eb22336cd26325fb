"""Load and latency benchmarks for push2fa (issue 6).

The product claims that a waiting browser learns the phone's answer the instant the
webhook arrives, and that waiting costs the server next to nothing. This package measures
that claim against the polling design it replaced, with real servers and real sockets:
the app and the Authy emulator each run under Hypercorn in their own process, and the
waiting browsers are python-socketio clients (or aiohttp pollers) spread over worker
processes. `python -m bench.run` runs everything and regenerates docs/benchmarks.md;
`--quick` is the CI smoke version.

Everything here talks to 127.0.0.1 only, every loop is bounded in count and time, and every
child process is stopped when the run ends, even on error.
"""
