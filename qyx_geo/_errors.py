"""Exception classes of qyx_geo.

Every error the package raises on purpose derives from :class:`QyxGeoError`, and each
specific class also inherits the builtin it refines, so callers may catch either
(``except ValueError`` keeps working). Messages name the file/row/argument, show the bad
value with ``!r`` and say the fix.
"""

from __future__ import annotations

__all__ = [
    "AssetError",
    "ColumnError",
    "CoordinateError",
    "DataFileError",
    "DuplicateIdError",
    "NetworkError",
    "NoTargetError",
    "OfflineError",
    "OutputError",
    "OutsideCountyError",
    "QyxGeoError",
    "SettingsError",
    "SolverError",
    "UnknownCodeError",
    "UnknownServiceError",
]


class QyxGeoError(Exception):
    """Base class of all qyx_geo errors."""


class SettingsError(ValueError, QyxGeoError):
    """An option or setting has a bad name, type or value."""


class DataFileError(ValueError, QyxGeoError):
    """A data file is missing, empty, unreadable or malformed."""


class ColumnError(KeyError, QyxGeoError):
    """A table lacks a required column (or has an unrecognised one)."""

    def __str__(self) -> str:
        # KeyError quotes its message; show it as plain text instead.
        return str(self.args[0]) if self.args else ""


class DuplicateIdError(ValueError, QyxGeoError):
    """Identifiers that must be unique are repeated."""


class UnknownCodeError(LookupError, QyxGeoError):
    """An administrative code or name is not one of the region's official units."""


class CoordinateError(ValueError, QyxGeoError):
    """Coordinates are missing, non-numeric, swapped, shifted or in an unknown CRS."""


class OutsideCountyError(CoordinateError):
    """Points fall outside the county outline."""


class NetworkError(ValueError, QyxGeoError):
    """A street network is unusable (no walkable edges, wrong CRS, broken file)."""


class OfflineError(ConnectionError, QyxGeoError):
    """An online download was requested but the internet cannot be reached."""


class OutputError(OSError, QyxGeoError):
    """Outputs could not be written or committed (file held open, disk full, read-only folder)."""


class UnknownServiceError(KeyError, QyxGeoError):
    """A service id is not in the service registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NoTargetError(LookupError, QyxGeoError):
    """The plan sets no target for the requested service/indicator and year."""


class SolverError(RuntimeError, QyxGeoError):
    """An optimisation problem could not be solved (infeasible, time limit, solver failure)."""


class AssetError(LookupError, QyxGeoError):
    """A script, style or font an offline map needs is not vendored in ``qyx_geo/maps/_assets``."""
