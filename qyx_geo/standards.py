"""National standards as data: life-circle tiers, the facilities each tier must reach, scoring.

A standard is a file (format ``qyx-standard/1``, docs/standards.md) in ``data/standards/``:
tiers (5/10/15-minute life circles and their walking distances, or rural levels judged by
presence), the services each tier must reach, and for every value the clause/table it comes from
and whether it was verified against the standard's text. Shipped: ``gb50180-2018``
(《城市居住区规划设计标准》) and ``tdt1062-2021`` (《社区生活圈规划技术指南》).

:func:`score_standard` re-scores an audit's travel times against each tier — no new shortest-path
pass: a tier with ``distance_m`` takes ``distance_m`` at the audit's speed as its threshold; one
with ``minutes`` takes that; a ``presence`` tier asks for a facility inside the unit
(``level="unit"``) or its township (``level="township"``). Urban tiers judge 社区/居委会, rural
ones 村委会 (the file's ``unit_kinds``; ``unit_kinds=`` overrides).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo._paths import data_dir
from qyx_geo.coverage import rank_shares, unit_coverage

if TYPE_CHECKING:
    from qyx_geo.audit import AuditResult

__all__ = ["Standard", "StandardAudit", "Tier", "TierFacility", "list_standards",
           "load_standard", "score_standard"]

STANDARD_FORMAT = "qyx-standard/1"


@dataclasses.dataclass(frozen=True)
class TierFacility:
    """A facility a tier must reach: the registry service, the item as the standard names it."""

    service: str
    item_zh: str
    source: str
    verified: bool | str = False
    distance_m: float | None = None


@dataclasses.dataclass(frozen=True)
class Tier:
    """One life-circle tier (or rural level) of a standard."""

    id: str
    label_zh: str
    label_en: str
    facilities: tuple[TierFacility, ...]
    unit_kinds: tuple[str, ...]
    source: str
    verified: bool | str
    distance_m: float | None = None
    minutes: float | None = None
    reach: str = "travel"
    level: str = "township"
    distance_text: str = ""
    population_text: str = ""


@dataclasses.dataclass(frozen=True)
class Standard:
    """A loaded standard file."""

    id: str
    code: str
    title: str
    publisher: str
    effective: str
    tiers: tuple[Tier, ...]
    verification: str
    path: Path | None = None

    def services(self) -> list[str]:
        """Every service any tier asks for, in file order."""
        return list(dict.fromkeys(f.service for t in self.tiers for f in t.facilities))


def _standards_dir() -> Path:
    return data_dir() / "standards"


def list_standards() -> list[str]:
    """Return the ids of the shipped standards (file names in ``data/standards``)."""
    return sorted(p.stem for p in _standards_dir().glob("*.json"))


def _facility(item: Any, where: str) -> TierFacility:
    try:
        dist = item.get("distance_m")
        return TierFacility(service=str(item["service"]), item_zh=str(item["item_zh"]),
                            source=str(item["source"]), verified=item.get("verified", False),
                            distance_m=None if dist is None else float(dist))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{where} must have service, item_zh and source ({err!r})."
        raise DataFileError(msg) from err


def _tier(item: Any, default_kinds: tuple[str, ...], where: str) -> Tier:
    try:
        tid = str(item["id"])
        label = f"{where}.tiers[{tid!r}]"
        facilities = tuple(_facility(f, f"{label}.facilities[{k}]")
                           for k, f in enumerate(item["facilities"]))
        tier = Tier(id=tid, label_zh=str(item["label_zh"]), label_en=str(item["label_en"]),
                    facilities=facilities,
                    unit_kinds=tuple(item.get("unit_kinds", default_kinds)),
                    source=str(item["source"]), verified=item.get("verified", False),
                    distance_m=None if item.get("distance_m") is None
                    else float(item["distance_m"]),
                    minutes=None if item.get("minutes") is None else float(item["minutes"]),
                    reach=str(item.get("reach", "travel")), level=str(item.get("level",
                                                                                "township")),
                    distance_text=str(item.get("distance_text", "")),
                    population_text=str(item.get("population_text", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = (f"{where}: a tier is malformed ({err!r}); each needs id, label_zh, label_en, "
               "source, facilities and either distance_m, minutes or reach: presence.")
        raise DataFileError(msg) from err
    if tier.reach not in ("travel", "presence") or tier.level not in ("township", "unit"):
        msg = (f"{label}: reach must be 'travel' or 'presence' and level 'township' or 'unit'; "
               f"got {tier.reach!r}/{tier.level!r}.")
        raise DataFileError(msg)
    if tier.reach == "travel" and (tier.distance_m is None) == (tier.minutes is None):
        msg = f"{label}: give exactly one of distance_m or minutes (or reach: presence)."
        raise DataFileError(msg)
    return tier


@functools.lru_cache(maxsize=8)
def _read(path: Path) -> Standard:
    where = repr(str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        msg = (f"Standard file {where} not found; shipped standards: {list_standards()!r} "
               "(or give a qyx-standard/1 JSON file).")
        raise DataFileError(msg) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"Standard file {where} is not valid UTF-8 JSON: {err}"
        raise DataFileError(msg) from err
    if not isinstance(raw, dict) or raw.get("format") != STANDARD_FORMAT:
        msg = f"{where} must be a JSON object with \"format\": \"{STANDARD_FORMAT}\"."
        raise DataFileError(msg)
    try:
        kinds = tuple(str(k) for k in raw["unit_kinds"])
        tiers = tuple(_tier(t, kinds, where) for t in raw["tiers"])
        std = Standard(id=str(raw["id"]), code=str(raw["code"]), title=str(raw["title"]),
                       publisher=str(raw.get("publisher", "")),
                       effective=str(raw.get("effective", "")), tiers=tiers,
                       verification=str(raw.get("verification", "")), path=path)
    except (KeyError, TypeError) as err:
        msg = f"{where} lacks {err}; a standard needs id, code, title, unit_kinds and tiers."
        raise DataFileError(msg) from err
    ids = [t.id for t in tiers]
    if len(set(ids)) != len(ids) or not ids:
        msg = f"{where}: tier ids {ids!r} must be present and unique."
        raise DataFileError(msg)
    return std


def load_standard(standard: str | os.PathLike[str]) -> Standard:
    """Load a shipped standard by id (``gb50180-2018``) or a standard file by path.

    Examples
    --------
    >>> std = load_standard("gb50180-2018")
    >>> [(t.id, t.distance_m) for t in std.tiers]
    [('15min', 1000.0), ('10min', 500.0), ('5min', 300.0)]
    """
    text = str(standard)
    path = Path(standard) if text.endswith(".json") else _standards_dir() / f"{text}.json"
    return _read(path.resolve())


@dataclasses.dataclass(frozen=True)
class StandardAudit:
    """An audit scored against one standard.

    Attributes
    ----------
    standard
        The :class:`Standard`.
    units
        Per village/community: for every tier ``<tier>__<service>`` (``True``/``False``, ``<NA>``
        where the tier does not apply), ``<tier>__passing``, ``<tier>__required``,
        ``<tier>__all`` and, over all tiers, ``tiers_passing``/``tiers_judged``.
    tiers
        Tier id → ``{"townships": DataFrame, "county": dict}`` (units judged / passing every
        service of the tier, share, rank; per-service shares).
    services
        Services scored (audited and asked for); ``missing`` those asked for but not audited.
    speed_kmh
        Speed used to turn tier distances into minutes.
    """

    standard: Standard
    units: pd.DataFrame
    tiers: Mapping[str, Mapping[str, Any]]
    services: tuple[str, ...]
    missing: tuple[str, ...]
    speed_kmh: float

    def minutes(self, tier: Tier, item: TierFacility) -> float:
        """Threshold in minutes for ``item`` of ``tier`` (NaN for presence tiers)."""
        dist = item.distance_m or tier.distance_m
        if dist is not None:
            return dist / 1000.0 / self.speed_kmh * 60.0
        return tier.minutes if tier.minutes is not None else math.nan


def _presence(layer: pd.DataFrame, units: pd.DataFrame, level: str) -> np.ndarray:
    column = "unit_code" if level == "unit" else "township_code"
    have = set(layer[column].astype(str))
    keys = units.index.astype(str) if level == "unit" else units["township_code"].astype(str)
    return np.array([k in have for k in keys], dtype=bool)


def score_standard(result: AuditResult, standard: Standard | str | Path, *,
                   unit_kinds: Mapping[str, Iterable[str]] | None = None) -> StandardAudit:
    """Score every village/community of an audit against each tier of ``standard``.

    Parameters
    ----------
    result
        An audit (:func:`qyx_geo.audit.run_audit`) of the services the standard names; services
        not audited are listed in ``missing`` and left out of the tiers.
    standard
        A :class:`Standard`, a shipped id or a standard file.
    unit_kinds
        Tier id → unit kinds judged, overriding the file (e.g. ``{"5min": ["社区/居委会",
        "村委会"]}``).
    """
    std = standard if isinstance(standard, Standard) else load_standard(standard)
    overrides = {k: tuple(v) for k, v in (unit_kinds or {}).items()}
    unknown = sorted(set(overrides) - {t.id for t in std.tiers})
    if unknown:
        msg = (f"unit_kinds names tier(s) {unknown!r} that {std.code} lacks; its tiers are "
               f"{[t.id for t in std.tiers]!r}.")
        raise SettingsError(msg)
    audits = result.services
    settings = result.settings
    speed = float(getattr(settings, f"{settings.mode}_speed_kmh"))
    first = next(iter(audits.values()))
    base = first.units[["name", "township_code", "township_name", "kind"]]
    out = pd.DataFrame(index=base.index.copy())
    towns = first.townships[["name"]]
    audited = [s for s in std.services() if s in audits]
    missing = tuple(s for s in std.services() if s not in audits)
    shell = StandardAudit(standard=std, units=out, tiers={}, services=tuple(audited),
                          missing=missing, speed_kmh=speed)
    tiers: dict[str, Mapping[str, Any]] = {}
    for tier in std.tiers:
        kinds = overrides.get(tier.id, tier.unit_kinds)
        judged = base["kind"].isin(set(kinds)).to_numpy()
        items = [f for f in tier.facilities if f.service in audits]
        per_service: dict[str, float] = {}
        passing = np.zeros(len(base), int)
        for item in items:
            audit = audits[item.service]
            if tier.reach == "presence":
                ok = _presence(audit.facilities, base, tier.level) & judged
            else:
                scored = unit_coverage(audit.points, audit.units, demand_column=audit.service.
                                       demand_column, threshold_minutes=shell.minutes(tier, item),
                                       min_share=settings.min_share, unit_kinds=kinds)
                ok = scored["passes"].reindex(base.index).fillna(False).to_numpy(bool)
            col = f"{tier.id}__{item.service}"
            out[col] = pd.array(np.where(judged, ok, pd.NA), dtype="boolean")
            passing += ok.astype(int)
            per_service[item.service] = float(ok[judged].mean()) if judged.any() else math.nan
        out[f"{tier.id}__passing"] = pd.array(np.where(judged, passing, pd.NA), dtype="Int64")
        out[f"{tier.id}__required"] = pd.array(np.where(judged, len(items), pd.NA),
                                               dtype="Int64")
        all_ok = judged & (passing == len(items)) & (len(items) > 0)
        out[f"{tier.id}__all"] = pd.array(np.where(judged, all_ok, pd.NA), dtype="boolean")
        tiers[tier.id] = _tier_tables(tier, base, towns, judged, all_ok, passing, len(items),
                                      per_service)
    all_cols = [f"{t.id}__all" for t in std.tiers]
    flags = out[all_cols].astype("boolean")
    out["tiers_judged"] = flags.notna().sum(axis=1).astype(int)
    out["tiers_passing"] = flags.fillna(False).sum(axis=1).astype(int)
    out = pd.concat([base, out], axis=1)
    return dataclasses.replace(shell, units=out, tiers=tiers)


def _tier_tables(tier: Tier, base: pd.DataFrame, towns: pd.DataFrame, judged: np.ndarray,
                 all_ok: np.ndarray, passing: np.ndarray, required: int,
                 per_service: dict[str, float]) -> dict[str, Any]:
    frame = pd.DataFrame({"t": base["township_code"].to_numpy(), "j": judged, "a": all_ok,
                          "p": np.where(judged, passing, 0)})
    by = frame[frame["j"]].groupby("t")
    t = pd.DataFrame({"name": towns["name"]}, index=towns.index.copy())
    t["units_judged"] = by.size().reindex(t.index).fillna(0).astype(int).to_numpy()
    t["units_passing"] = by["a"].sum().reindex(t.index).fillna(0).astype(int).to_numpy()
    services_met = by["p"].sum().reindex(t.index).fillna(0).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t["share_passing"] = np.where(t["units_judged"] > 0, t["units_passing"] / np.where(
            t["units_judged"] > 0, t["units_judged"], 1), np.nan)
        t["services_met_share"] = np.where(t["units_judged"] > 0, services_met / np.where(
            t["units_judged"] > 0, t["units_judged"] * max(required, 1), 1), np.nan)
    t["rank"] = rank_shares(t["share_passing"], t["services_met_share"])
    n = int(judged.sum())
    county = {"units_judged": n, "units_passing": int(all_ok.sum()),
              "share_passing": all_ok.sum() / n if n else math.nan,
              "services": per_service, "required": required}
    return {"townships": t, "county": county}
