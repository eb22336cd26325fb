"""Rewrite `.env.example` and the README's settings table from the settings declared in
push2fa/config.py, so that adding or changing a setting is one edit plus this command:

    .venv/bin/python scripts/settings_docs.py

tests/test_docs.py fails while either file differs from what this writes.
"""

from __future__ import annotations

import re

from push2fa.config import PROJECT_ROOT, env_example, markdown_table

TABLE = re.compile(r"(<!-- settings-table:.*?-->\n)(.*?)(<!-- /settings-table -->)", re.S)


def main() -> None:
    (PROJECT_ROOT / ".env.example").write_text(env_example().rstrip("\n") + "\n")
    readme = PROJECT_ROOT / "README.md"
    text = readme.read_text()
    if not TABLE.search(text):
        raise SystemExit("README.md has no <!-- settings-table --> markers")
    readme.write_text(TABLE.sub(lambda m: m[1] + markdown_table() + "\n" + m[3], text, count=1))


if __name__ == "__main__":
    main()
