"""The ``qyx`` command line: ``qyx info | audit | batch | map | targets | … | region``.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int``. Only the CLI prints, configures logging
and draws progress bars.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from qyx_geo import __version__
from qyx_geo._errors import QyxGeoError

__all__ = ["build_parser", "help_only", "main", "os_error_message"]

#: Sub-command modules, in the order ``qyx --help`` lists them.
COMMANDS = ("info", "audit", "batch", "map", "targets", "network", "facilities", "demand", "site",
            "region")


def build_parser(*, commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    """Return the ``qyx`` argument parser with these sub-commands registered (default: all).

    Registering a sub-command imports its module and what that imports (``info`` the dataset
    stack, ``map`` the maps…), so :func:`main` registers only the one it runs.
    """
    parser = argparse.ArgumentParser(
        prog="qyx",
        description="县域“15分钟公共服务圈”体检工具 — qyx_geo: village-by-village audits of a "
                    "county's 15-minute public service circle against its 七优享 plan "
                    "(default region: the embedded pack; any other with --region DIR).",
    )
    parser.add_argument("--version", action="version", version=f"qyx_geo {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="更详细的日志 / more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        module = importlib.import_module(f"qyx_geo.cli.{name}")
        module.register(sub)
    return parser


def help_only(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Return the ``func`` of a command group given without its action: help, then exit 2."""

    def _run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return _run


#: errno -> what to do about it (Chinese first)
_OS_FIXES = {
    errno.EACCES: "没有写入权限 / no permission: choose a folder you can write to (--out, "
                  "QYX_CACHE_DIR)",
    errno.EPERM: "没有写入权限 / not permitted: choose a folder you can write to (--out, "
                 "QYX_CACHE_DIR)",
    errno.EROFS: "只读文件系统 / read-only file system: choose a writable --out or QYX_CACHE_DIR",
    errno.ENOSPC: "磁盘已满 / disk full: free some space or choose --out on another disk",
    errno.EDQUOT: "超出磁盘配额 / disk quota exceeded: free some space or choose another --out",
    errno.ENOTDIR: "路径中有一段是文件而不是文件夹 / part of the path is a file, not a folder: "
                   "choose another --out",
    errno.EEXIST: "同名文件已存在 / a file of that name is in the way: choose another --out",
    errno.EISDIR: "这是一个文件夹 / that is a folder, not a file: give a file name",
    errno.ENOENT: "找不到路径 / no such file or folder: check the path",
    errno.ENAMETOOLONG: "路径太长 / path too long: choose a shorter --out",
}


def os_error_message(err: OSError, args: argparse.Namespace | None = None) -> str:
    """Return one line for an operating-system error: the path, the reason and the fix."""
    path = err.filename if err.filename is not None else getattr(args, "out", None)
    reason = err.strerror or type(err).__name__
    fix = _OS_FIXES.get(err.errno or -1, "check the path and the disk, then run again")
    where = f"{str(path)!r}: " if path is not None else ""
    return f"{where}{reason}. {fix}"


def _command_of(argv: Sequence[str]) -> str | None:
    """Return the sub-command ``argv`` runs, or ``None`` when the full parser is needed.

    ``qyx``'s own options (``-v``, ``--version``, ``-h``) take no value, so the first word
    without a dash names the sub-command; help or the version before it needs every command.
    """
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None  # unknown: argparse lists the choices
        if word in ("--", "--help", "--version") or (word[1:2] != "-" and "h" in word):
            return None  # -h, also among other short flags (-vh)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qyx`` command line and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    # one sub-command's parser: `qyx audit` imports only what the audit needs (issue 11)
    parser = build_parser(commands=(command,) if command else COMMANDS)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except QyxGeoError as err:
        print(f"qyx {args.command}: 错误 / error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the operating system refused: not a bug, not --fail-under (1)
        print(f"qyx {args.command}: 错误 / error: {os_error_message(err, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qyx {args.command}: 已中断 / interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
