"""Where the embedded dataset and the caches live.

The embedded Cixi dataset is the repository's ``data/`` folder (install with ``pip install -e .``).
``QYX_DATA_DIR`` and ``QYX_CACHE_DIR`` override the two folders; nothing is read at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from qyx_geo._errors import SettingsError

__all__ = ["cache_dir", "data_dir"]


def data_dir() -> Path:
    """Return the folder of the embedded dataset (``data/`` of the repository)."""
    env = os.environ.get("QYX_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data"


def cache_dir() -> Path:
    """Return (and create) the cache folder for processed networks and online downloads."""
    env = os.environ.get("QYX_CACHE_DIR")
    base = Path(env) if env else Path.home() / ".cache" / "qyx_geo"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        where = "QYX_CACHE_DIR" if env else "the default cache folder"
        msg = (f"缓存文件夹无法创建 / cannot create the cache folder {str(base)!r} ({where}): "
               f"{err.strerror or err}; set QYX_CACHE_DIR to a writable folder")
        raise SettingsError(msg) from err
    return base
