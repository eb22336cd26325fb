"""Hypothesis settings for `make mutation` (loaded with `-p tests.mutation_settings`).

Under mutmut every call goes through a trampoline and the first run traces coverage, so
Hypothesis's 200 ms deadline fails healthy tests; and a mutant must meet the same examples
each time, so a kill is reproducible. Fewer examples keep a run to minutes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "mutation",
    deadline=None,
    derandomize=True,
    max_examples=30,
    suppress_health_check=list(HealthCheck),
    database=None,
)
settings.load_profile("mutation")
