"""What a test needs from the machine. Outside CI a missing tool skips the test, with the command
that installs it; under CI (`CI` set) it fails the run: the set-up must have installed it."""

from __future__ import annotations

import os

import pytest


def need(available: bool, what: str) -> None:
    """Skip (or, under CI, fail) the calling test unless `available`; `what` says how to get it."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}", pytrace=False)
    pytest.skip(f"needs {what}")
