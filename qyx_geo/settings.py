"""Analysis settings shared by the engine, coverage, maps and CLI: one validated object.

Defaults and why
----------------
``walk_speed_kmh = 4.0``
    GB 50180-2018 (城市居住区规划设计标准) defines the 15-minute life circle as the area within
    800–1,000 m walking. 1,000 m in 15 min is 4.0 km/h (1.11 m/s): the standard's own radius is
    reproduced exactly, and it sits at the slow end of adult gait (1.1–1.4 m/s) to allow for
    crossings and waiting.
``elderly_walk_speed_kmh = 3.0``
    0.83 m/s, the usual planning value for people over 60 (gait speeds of 0.7–1.0 m/s are reported
    for that group); used for canteens when the elderly option is chosen.
``cycle_speed_kmh = 15.0``
    e-bike/cycling speed for the rural 30-minute circle (电动自行车 are the common rural mode;
    GB 17761-2018 caps them at 25 km/h, 15 km/h allows for lanes and junctions).
``max_snap_m = 300``
    A point further than this from any walkable edge is flagged and reported, never used silently.
``min_share = 0.8``
    A village/community passes a service when at least 80 % of its residents (of the demand group)
    live within the threshold. The plan counts *villages covered*; 80 % follows the common
    "service radius covers the main settlement" reading while tolerating outlying hamlets.
``street_width_m = 30``
    Isochrones are the reachable street centre-lines buffered by half of this width each side,
    i.e. the frontage plots a resident can reach, not a convex hull (exact isochrones).
``surface_cell_m = 25``
    Cell side of the travel-time surfaces (:mod:`qyx_geo.surfaces`) and of the isochrones
    contoured from them: a 25 m cell is a house plot or a short block face, finer than the
    300 m snap limit by an order of magnitude while a county grid stays ~5 M cells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, get_args

from qyx_geo._errors import SettingsError

__all__ = ["MODES", "Mode", "Settings"]

Mode = Literal["walk", "elderly_walk", "cycle"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Options that many functions share. Immutable; use :meth:`replace` to vary one.

    Parameters
    ----------
    walk_speed_kmh, elderly_walk_speed_kmh, cycle_speed_kmh
        Travel speeds per mode in km/h (see module docstring for the defaults' sources).
    mode
        Travel mode used when a function is not told otherwise.
    max_snap_m
        Largest accepted straight-line distance from a point to the walking network, metres.
    min_share
        Share of a unit's residents within the threshold for the unit to pass, in [0, 1].
    threshold_minutes
        Per-service override of the registry's threshold, e.g. ``{"canteen": 10}``.
    street_width_m
        Width of the street band drawn as an exact isochrone, metres.
    surface_cell_m
        Cell side of travel-time surfaces, metres.
    """

    walk_speed_kmh: float = 4.0
    elderly_walk_speed_kmh: float = 3.0
    cycle_speed_kmh: float = 15.0
    mode: Mode = "walk"
    max_snap_m: float = 300.0
    min_share: float = 0.8
    threshold_minutes: Mapping[str, float] = dataclasses.field(default_factory=dict)
    street_width_m: float = 30.0
    surface_cell_m: float = 25.0

    def __post_init__(self) -> None:
        for name in ("walk_speed_kmh", "elderly_walk_speed_kmh", "cycle_speed_kmh",
                     "max_snap_m", "street_width_m", "surface_cell_m"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                msg = f"Settings.{name} must be a positive number, got {value!r}."
                raise SettingsError(msg)
        if self.mode not in MODES:
            msg = f"Settings.mode must be one of {MODES}, got {self.mode!r}."
            raise SettingsError(msg)
        if not isinstance(self.min_share, int | float) or not 0.0 <= self.min_share <= 1.0:
            msg = (f"Settings.min_share must be a share in [0, 1], got {self.min_share!r} "
                   "(e.g. 0.8).")
            raise SettingsError(msg)
        if not isinstance(self.threshold_minutes, Mapping):
            msg = (f"Settings.threshold_minutes must be a mapping service -> minutes, got "
                   f"{self.threshold_minutes!r}.")
            raise SettingsError(msg)
        for service, minutes in self.threshold_minutes.items():
            if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
                msg = (f"Settings.threshold_minutes[{service!r}] must be positive minutes, "
                       f"got {minutes!r}.")
                raise SettingsError(msg)
        # freeze the mapping so the object stays hashable-ish and immutable
        object.__setattr__(self, "threshold_minutes", dict(self.threshold_minutes))

    def speed_kmh(self, mode: Mode | None = None) -> float:
        """Return the speed of ``mode`` (default: ``self.mode``) in km/h."""
        mode = self.mode if mode is None else mode
        if mode not in MODES:
            msg = f"mode must be one of {MODES}, got {mode!r}."
            raise SettingsError(msg)
        return {"walk": self.walk_speed_kmh, "elderly_walk": self.elderly_walk_speed_kmh,
                "cycle": self.cycle_speed_kmh}[mode]

    def speed_m_per_min(self, mode: Mode | None = None) -> float:
        """Return the speed of ``mode`` in metres per minute."""
        return self.speed_kmh(mode) * 1000.0 / 60.0

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (validated; unknown keys are refused)."""
        return Settings.from_mapping({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain, JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        out["threshold_minutes"] = dict(self.threshold_minutes)
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from a mapping, refusing unknown keys with the list of valid ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            msg = f"Unknown setting(s) {unknown!r}; valid settings are {sorted(known)!r}."
            raise SettingsError(msg)
        return cls(**dict(values))
