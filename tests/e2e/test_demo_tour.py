"""demos/tour.py, the Playwright demo script, runs against a bare `aipipe serve --dev` relay
and produces its screenshots (as CI runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
STEPS = ["01-login.png", "02-signed-in.png", "03-playground.png", "04-show-code.png",
         "05-dashboard.png"]


def test_tour_saves_a_screenshot_of_each_step(dev_relay: str, tmp_path: Path) -> None:
    """The tour signs in, chats with the demo model, opens the dashboard and saves one PNG per
    step — with no page error and no request leaving the relay (--strict)."""
    out = tmp_path / "tour"
    result = subprocess.run(
        [sys.executable, str(ROOT / "demos" / "tour.py"), "--url", dev_relay, "--out", str(out),
         "--strict"], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == STEPS
    for name in STEPS:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "model openai:aipipe-demo" in result.stdout
    assert "reply cost $" in result.stdout
