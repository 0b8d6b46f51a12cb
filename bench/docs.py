"""Benchmark figures live in the docs: each bench script puts its latest results between
`<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in docs/performance.md."""

from __future__ import annotations

import re
from pathlib import Path

PERFORMANCE = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def place(name: str, markdown: str, doc: Path = PERFORMANCE) -> None:
    """Replace the marked block `name` in `doc` with `markdown` (its headings moved two levels
    down, so a report's title sits under the page's sections)."""
    body = re.sub(r"(?m)^(#+) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", markdown.strip())
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{doc} has no {start} … {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{body}\n{end}{tail}")
