"""The docs describe the repo as it is: every link and every file path they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Paths in backticks that start at a top-level folder of the repo, e.g. `relay/forward/call.py`.
TOP = ("relay/", "bench/", "tests/", "testkit/", "docs/", "web/", "notebooks/", "demos/", "scripts/",
       "deploy/")
PATH = re.compile("`((?:" + "|".join(re.escape(t) for t in TOP) + r")[\w./-]+)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_and_paths_exist(doc: Path) -> None:
    """A relative link or a backticked repo path in a doc names a file or folder that exists."""
    text = doc.read_text()
    missing = []
    for target in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (doc.parent / target).exists():
            missing.append(target)
    for path in PATH.findall(text):
        if not (ROOT / path.rstrip("/")).exists() and "*" not in path:
            missing.append(path)
    assert not missing, f"{doc.relative_to(ROOT)} names what is not in the repo: {missing}"


def test_readme_stays_short() -> None:
    """The README is the front door (what it is, the two commands, configuration, links);
    depth lives in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_doc_is_linked_from_the_readme() -> None:
    """No orphan pages: the README's documentation table links every page in docs/."""
    readme = (ROOT / "README.md").read_text()
    for doc in DOCS[1:]:
        assert f"(docs/{doc.name})" in readme, doc.name
