"""The CI switch QYX_REQUIRE_BROWSER: without Chromium the browser tests fail, not skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _browser import REQUIRE_BROWSER, find_chromium


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)


def test_missing_browser_skips_by_default(no_browser, monkeypatch):
    monkeypatch.delenv(REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        find_chromium()


def test_missing_browser_fails_when_required(no_browser, monkeypatch):
    monkeypatch.setenv(REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match="QYX_REQUIRE_BROWSER is set"):
        find_chromium()


def test_ci_sets_the_switch():
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert f"export {REQUIRE_BROWSER}=1" in ci


def test_browser_module_errors_in_ci_without_chromium(tmp_path):
    """End to end: pytest on the browser tests with no Chromium on PATH exits non-zero."""
    env = {**os.environ, "PATH": str(tmp_path), REQUIRE_BROWSER: "1"}
    module = Path(__file__).parent / "test_maps_browser.py"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(module)], env=env, capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).parents[1], check=False)
    assert run.returncode != 0, run.stdout[-2000:]
    assert "QYX_REQUIRE_BROWSER is set" in run.stdout
    assert " skipped" not in run.stdout.splitlines()[-1]
