"""The README's examples run as shown: the "Using it" block, against a real server, and every
statement followed by a ``# <expected repr>`` comment (without ``...``) gives exactly that."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pandas as pd

README = Path(__file__).resolve().parent.parent / "README.md"


def python_block(after: str) -> str:
    """The first ```python block after the heading ``after``."""
    text = README.read_text()
    start = text.index(after)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {after!r}"
    return match.group(1)


def test_the_using_it_example_runs_and_says_what_it_gives(server, namespace, tmp_path, monkeypatch) -> None:
    source = python_block("## Using it")
    assert 'redis_url="redis://localhost:6379/0"' in source
    source = source.replace('redis_url="redis://localhost:6379/0"', f'redis_url="{server.url}", namespace="{namespace}"')
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"sku": ["1", "2", "3"], "price": [1.0, 2.0, 3.0],
                  "ts": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"], utc=True)}).to_parquet("prices.parquet")
    lines = source.splitlines()
    tree = ast.parse(source)
    scope: dict[str, object] = {}
    checked = []
    for statement in tree.body:
        code = compile(ast.Module([statement], []), "README.md", "exec")
        after = lines[statement.end_lineno] if statement.end_lineno < len(lines) else ""
        expected = after.strip()[2:] if after.strip().startswith("# ") else None
        if isinstance(statement, ast.Expr) and expected and "..." not in expected:
            value = eval(compile(ast.Expression(statement.value), "README.md", "eval"), scope)  # noqa: S307 - our README
            assert repr(value) == expected, (ast.get_source_segment(source, statement), repr(value))
            checked.append(expected)
        else:
            exec(code, scope)  # noqa: S102 - our README
    assert len(checked) >= 4, checked  # the batch read, the rollback, the late write, the as-of read
