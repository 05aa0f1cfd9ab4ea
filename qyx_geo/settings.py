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
import math
import numbers
from collections.abc import Mapping
from typing import Any, Literal, get_args

from qyx_geo._errors import SettingsError
from qyx_geo.services import get_service

__all__ = ["MODES", "RANGES", "Mode", "Settings", "check_setting"]

Mode = Literal["walk", "elderly_walk", "cycle"]
MODES: tuple[str, ...] = get_args(Mode)

#: Plausible range (inclusive) and unit of every numeric setting. A value outside is a typing
#: slip (``1e9`` minutes, ``inf`` km/h), not an analysis: it would make every unit pass (or
#: none) and still exit 0, so it is refused here, the one place every entry point goes through.
#: Walking: adult gait is 3-6 km/h; cycling: e-bikes are capped at 25 km/h (GB 17761-2018);
#: thresholds: the plan's circles are 15 and 30 minutes; shares: a unit passing with 0 % of its
#: residents within reach is no test at all, hence the open lower bound of ``min_share``.
RANGES: dict[str, tuple[float, float, str]] = {
    "walk_speed_kmh": (1.0, 10.0, "km/h"),
    "elderly_walk_speed_kmh": (1.0, 10.0, "km/h"),
    "cycle_speed_kmh": (3.0, 50.0, "km/h"),
    "max_snap_m": (1.0, 5000.0, "m"),
    "min_share": (0.0, 1.0, "share"),
    "threshold_minutes": (1.0, 120.0, "minutes"),
    "street_width_m": (1.0, 200.0, "m"),
    "surface_cell_m": (1.0, 1000.0, "m"),
}
_EXAMPLES = {"walk_speed_kmh": "4", "elderly_walk_speed_kmh": "3", "cycle_speed_kmh": "15",
             "max_snap_m": "300", "min_share": "0.8", "threshold_minutes": "15",
             "street_width_m": "30", "surface_cell_m": "25"}


def _number(name: str, value: object) -> float:
    low, high, unit = RANGES[name]
    example = _EXAMPLES[name]
    # bool is an int subclass and numpy.bool_ is not a Real: neither is a number here
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = (f"{name} must be a number ({unit}), got {value!r} of type "
               f"{type(value).__name__}; e.g. {example}.")
        raise SettingsError(msg)
    number = float(value)
    if not math.isfinite(number):
        msg = f"{name} must be a finite number ({unit}), got {value!r}; e.g. {example}."
        raise SettingsError(msg)
    open_low = name == "min_share"
    if number > high or number < low or (open_low and number <= low):
        bound = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
        msg = (f"{name} must be in {bound} {unit}, got {value!r}; e.g. {example}. Values "
               "outside this range are almost always typing slips (see qyx_geo.settings.RANGES).")
        raise SettingsError(msg)
    return number


def check_setting(name: str, value: object) -> Any:
    """Return ``value`` checked and normalised for the setting ``name``, or raise.

    The one rule book of the settings: :class:`Settings` calls it for every field, and the
    CLI and the coverage functions call it for the values they take directly, so a value is
    judged the same way wherever it enters.

    Raises
    ------
    SettingsError
        Unknown setting, wrong type, not finite or outside :data:`RANGES`; the message names
        the setting, shows the value and gives an example.
    UnknownServiceError
        A per-service threshold names a service that is not registered.

    Examples
    --------
    >>> check_setting("min_share", 0.9)
    0.9
    >>> check_setting("walk_speed_kmh", float("inf"))
    Traceback (most recent call last):
    ...
    qyx_geo._errors.SettingsError: walk_speed_kmh must be a finite number (km/h), got inf; e.g. 4.
    """
    if name == "mode":
        if value not in MODES:
            msg = f"mode must be one of {MODES}, got {value!r}."
            raise SettingsError(msg)
        return value
    if name == "threshold_minutes" and isinstance(value, Mapping):
        out: dict[str, float] = {}
        for service, minutes in value.items():
            sid = get_service(str(service)).id  # unknown services: UnknownServiceError
            try:
                out[sid] = _number("threshold_minutes", minutes)
            except SettingsError as err:
                msg = f"threshold_minutes[{service!r}]: {err}"
                raise SettingsError(msg) from None
        return out
    # a single threshold (the coverage functions take one) is judged like the per-service ones
    if name not in RANGES:
        msg = f"Unknown setting {name!r}; valid settings are {sorted([*RANGES, 'mode'])!r}."
        raise SettingsError(msg)
    return _number(name, value)


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
        Share of a unit's residents within the threshold for the unit to pass, in (0, 1].
    threshold_minutes
        Per-service override of the registry's threshold, e.g. ``{"canteen": 10}``; keys are
        registered service ids.
    street_width_m
        Width of the street band drawn as an exact isochrone, metres.
    surface_cell_m
        Cell side of travel-time surfaces, metres.

    Every numeric value must be a finite real number inside :data:`RANGES` (checked by
    :func:`check_setting`); anything else raises :class:`~qyx_geo._errors.SettingsError`.
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
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "threshold_minutes" and not isinstance(value, Mapping):
                msg = (f"Settings.threshold_minutes must be a mapping service -> minutes, got "
                       f"{value!r} (e.g. {{'canteen': 10}}).")
                raise SettingsError(msg)
            try:
                checked = check_setting(field.name, value)
            except SettingsError as err:
                msg = f"Settings.{err}"
                raise SettingsError(msg) from None
            # store the normalised value: plain floats, canonical service ids, a fresh dict
            object.__setattr__(self, field.name, checked)

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
