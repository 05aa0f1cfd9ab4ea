"""``qyx site``: placeholder registered until its issue lands."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``site`` sub-command (not yet built)."""
    p = sub.add_parser("site", help="(尚未实现 / not built yet)")
    p.set_defaults(func=lambda args: 2)
