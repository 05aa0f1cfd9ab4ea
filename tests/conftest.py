"""Shared pytest fixtures. Tests are offline and deterministic."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's caches out of the user's home, shared within the session."""
    if "QYX_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qyx_cache"))
