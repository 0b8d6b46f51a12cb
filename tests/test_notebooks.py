"""Every admin notebook runs top to bottom on a generated ledger and shows its charts and tables."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from relay.demo_data import write_demo_ledger

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def run(path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel whose environment is `env` (plus the repo on the
    path, so `relay` imports even without an editable install)."""
    for key, value in {**env, "PYTHONPATH": str(ROOT), "JUPYTER_PLATFORM_DIRS": "1"}.items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb") / "usage.parquet"
    write_demo_ledger(out, 40_000, end=date(2025, 6, 30))
    return out


def test_there_are_four_story_notebooks() -> None:
    """Overview, users & domains, models & cost provenance, anomalies — all present."""
    assert [p.name for p in NOTEBOOKS] == [
        "01-overview.ipynb",
        "02-users-and-domains.ipynb",
        "03-models-and-cost-provenance.ipynb",
        "04-anomalies.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_stripped_and_share_their_sql(path: Path) -> None:
    """In git: no outputs, no execution counts; no SQL copied into cells (it lives in
    relay.analysis); narrative cells between the code."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert not any("SELECT" in c.source for c in code)
    assert "analysis.choose_source(os.environ)" in code[0].source
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_an_export_and_draws_charts_and_tables(
    path: Path, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executed on a ledger file (AIPIPE_USAGE): no errors or warnings, charts and tables."""
    nb = run(path, {"AIPIPE_USAGE": str(ledger)}, monkeypatch)
    outs = outputs(nb)
    assert not [o for o in outs if o["output_type"] == "error"]
    assert not [o["text"] for o in outs if o.get("name") == "stderr"]
    images = [o for o in outs if "image/png" in o.get("data", {})]
    tables = [o for o in outs if "<table" in str(o.get("data", {}).get("text/html", ""))]
    assert len(images) >= 3, "charts"
    assert len(tables) >= 2, "tables"
    assert str(ledger) in outs[0]["text"]  # the first cell says where the data came from


def test_with_no_source_set_the_notebook_uses_demo_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AIPIPE_USAGE or AIPIPE_URL: the first cell generates demo data and the story runs."""
    for name in ("AIPIPE_USAGE", "AIPIPE_URL", "AIPIPE_ADMIN_TOKEN", "AIPIPE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    nb = run(NOTEBOOKS[0], {"TMPDIR": str(tmp_path)}, monkeypatch)
    outs = outputs(nb)
    assert "generated demo data" in outs[0]["text"]
    assert any("image/png" in o.get("data", {}) for o in outs)
    assert list((tmp_path / "aipipe-notebooks").glob("demo-*.parquet"))
