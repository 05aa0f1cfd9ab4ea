"""Finding Chromium for the real-browser tests, and the CI switch that keeps them from going quiet.

Without Chromium the browser tests are skipped on a developer's machine. CI (``.ci/run``)
exports ``QYX_REQUIRE_BROWSER=1``: a missing browser is then an error, so the only check that
the maps' escaping survives a real browser cannot disappear from CI unnoticed.
"""

from __future__ import annotations

import os
import shutil

import pytest

#: Environment variable that turns "no browser, skip" into "no browser, fail".
REQUIRE_BROWSER = "QYX_REQUIRE_BROWSER"
NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str:
    """Return the Chromium executable; skip the calling module, or fail it in CI."""
    path = next((p for p in map(shutil.which, NAMES) if p), None)
    if path is not None:
        return path
    reason = ("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs "
              "it), so the maps cannot be opened in a browser here.")
    if os.environ.get(REQUIRE_BROWSER, "").strip() not in ("", "0"):
        pytest.fail(f"{reason} {REQUIRE_BROWSER} is set: the browser tests must run.",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)
