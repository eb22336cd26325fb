"""The README's settings table and .env.example are generated from the settings declared in
config.py (scripts/settings_docs.py writes them); these tests keep them in step with the code."""

from __future__ import annotations

import re

from push2fa.config import PROJECT_ROOT, env_example, markdown_table


def test_readme_settings_table_is_the_generated_one():
    readme = (PROJECT_ROOT / "README.md").read_text()
    match = re.search(r"<!-- settings-table:.*?-->\n(.*?)<!-- /settings-table -->", readme, re.S)
    assert match, "README.md has no settings-table markers"
    assert match.group(1).strip() == markdown_table().strip(), (
        "README settings table is stale: regenerate with `python scripts/settings_docs.py`"
    )


def test_env_example_is_the_generated_one():
    text = (PROJECT_ROOT / ".env.example").read_text()
    assert text.strip() == env_example().strip(), (
        ".env.example is stale: regenerate with `python scripts/settings_docs.py`"
    )


def test_readme_starts_with_what_it_is_and_the_two_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    head = readme[: readme.index("## How a login works")]
    assert "make run" in head and "make test" in head
