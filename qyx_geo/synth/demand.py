"""Synthetic demand points: residential clusters with population by age group.

No per-village population is published, so residents are spread over the official units with
a seeded model and labelled ``source="synthetic"``:

* unit population: a lognormal draw around a typical size per unit kind and township kind (urban
  communities of the 街道 largest, villages mid-sized, the development zones' virtual communities
  small), scaled so that the county sums **exactly** to the 2020 census resident population
  (largest-remainder rounding keeps every count a whole person);
* clusters: several per unit (urban communities 4–8, villages 3–6, virtual communities 1–2),
  Dirichlet shares of the unit population, placed around the unit centre inside the unit's area —
  tighter in urban communities (denser) than in villages;
* age groups: binomial draws per cluster with shares that differ by kind — older villages (60+
  about 27 %), younger urban communities (about 19 %), migrant-worker virtual communities
  (about 6 %); 0–3 years about 2.4–3.0 % — giving county shares near the census profile
  (60+ ≈ 23 %, 0–3 ≈ 2.7 %).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qyx_geo.schema import METRIC_CRS, WGS84
from qyx_geo.synth import rng_for, write_csv
from qyx_geo.units import CENSUS_2020_POPULATION, DEMAND_CSV_COLUMNS

__all__ = ["build_demand", "largest_remainder", "write_demand"]

logger = logging.getLogger(__name__)

#: (typical residents, lognormal sigma, clusters min, clusters max, spread sd in m) per kind.
_PROFILE: dict[str, tuple[float, float, int, int, float]] = {
    "street_community": (9500.0, 0.35, 4, 8, 160.0),
    "town_community": (5500.0, 0.35, 3, 6, 180.0),
    "village": (3300.0, 0.40, 3, 6, 380.0),
    "virtual": (1200.0, 0.50, 1, 2, 250.0),
}
#: (mean, sd) of the 60+ and 0–3 shares per kind.
_SHARE_60P = {"street_community": (0.185, 0.025), "town_community": (0.21, 0.025),
              "village": (0.275, 0.03), "virtual": (0.06, 0.02)}
_SHARE_0_3 = {"street_community": (0.030, 0.004), "town_community": (0.028, 0.004),
              "village": (0.024, 0.004), "virtual": (0.012, 0.004)}


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Split the whole number ``total`` in proportion to ``weights`` (Hamilton's method).

    The parts are non-negative integers that sum exactly to ``total``; ties break by position, so
    the split is deterministic.
    """
    w = np.asarray(weights, dtype=float)
    if total < 0 or w.size == 0 or (w < 0).any() or w.sum() <= 0:
        msg = f"need total >= 0 and non-negative weights with a positive sum, got {total!r}"
        raise ValueError(msg)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(np.int64)
    short = int(total - base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:short]] += 1
    return base


def _profile_key(kind: str, township_kind: str) -> str:
    if kind == "虚拟社区":
        return "virtual"
    if kind == "村委会":
        return "village"
    return "street_community" if township_kind == "街道" else "town_community"


def _cluster_points(centre: np.ndarray, cell: shapely.Geometry, n: int, sd_m: float,
                    rng: np.random.Generator) -> np.ndarray:
    """``n`` points around ``centre`` (metric) that lie inside ``cell``; the first is the centre."""
    shapely.prepare(cell)
    pts = [centre]
    tries = 0
    while len(pts) < n and tries < 400:
        tries += 1
        p = centre + rng.normal(0.0, sd_m, size=2)
        if shapely.contains_xy(cell, p[0], p[1]):
            pts.append(p)
    while len(pts) < n:  # a tiny or odd-shaped cell: fall back to points on the way to centre
        pts.append(centre + (pts[-1] - centre) * 0.5 + rng.normal(0.0, 5.0, size=2))
    return np.array(pts)


def build_demand(units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, *, seed: int,
                 total: int = CENSUS_2020_POPULATION) -> pd.DataFrame:
    """Return the demand table (columns :data:`qyx_geo.units.DEMAND_CSV_COLUMNS`).

    Parameters
    ----------
    units
        Units as from :func:`qyx_geo.units.load_units` (index: 12-digit code).
    townships
        Townships as from :func:`qyx_geo.units.load_townships`.
    seed
        Seed of the run; the same seed gives the same table.
    total
        Residents to distribute (default: the 2020 census population of Cixi).
    """
    units = units.sort_index()
    keys = [_profile_key(k, townships.loc[t, "kind"])
            for k, t in zip(units["kind"], units["township_code"], strict=True)]
    rng = rng_for(seed, "demand", "unit-sizes")
    size = np.array([_PROFILE[k][0] * rng.lognormal(0.0, _PROFILE[k][1]) for k in keys])
    unit_pop = largest_remainder(size, total)
    cells = units.to_crs(METRIC_CRS).geometry.to_numpy()
    centres = gpd.GeoSeries(gpd.points_from_xy(units["centre_lon"], units["centre_lat"]),
                            crs=WGS84).to_crs(METRIC_CRS)
    centre_xy = shapely.get_coordinates(centres.to_numpy())

    ids: list[str] = []
    codes: list[str] = []
    towns: list[str] = []
    pops: list[int] = []
    p03: list[int] = []
    p60: list[int] = []
    xy: list[np.ndarray] = []
    for i, code in enumerate(units.index):
        key = keys[i]
        _, _, lo, hi, sd_m = _PROFILE[key]
        r = rng_for(seed, "demand", code)
        n = int(r.integers(lo, hi + 1))
        shares = r.dirichlet(np.full(n, 3.0))
        parts = largest_remainder(shares, int(unit_pop[i]))
        share60 = float(np.clip(r.normal(*_SHARE_60P[key]), 0.02, 0.45))
        share03 = float(np.clip(r.normal(*_SHARE_0_3[key]), 0.004, 0.06))
        pts = _cluster_points(centre_xy[i], cells[i], n, sd_m, r)
        for k in range(n):
            pop = int(parts[k])
            old = int(r.binomial(pop, share60))
            young = int(r.binomial(pop - old, share03 / max(1e-9, 1.0 - share60)))
            ids.append(f"{code}-{k + 1:02d}")
            codes.append(code)
            towns.append(str(units.loc[code, "township_code"]))
            pops.append(pop)
            p60.append(old)
            p03.append(young)
            xy.append(pts[k])
    lonlat = shapely.get_coordinates(
        gpd.GeoSeries(gpd.points_from_xy(*np.array(xy).T), crs=METRIC_CRS).to_crs(WGS84).to_numpy())
    table = pd.DataFrame({
        "id": ids, "unit_code": codes, "township_code": towns, "pop": pops, "pop_0_3": p03,
        "pop_60p": p60, "lon": np.round(lonlat[:, 0], 6), "lat": np.round(lonlat[:, 1], 6),
        "source": "synthetic"})
    logger.info("built %d demand points, %d residents", len(table), int(table["pop"].sum()))
    return table[list(DEMAND_CSV_COLUMNS)]


def write_demand(table: pd.DataFrame, out_dir: Path) -> Path:
    """Write ``table`` to ``<out_dir>/demand.csv`` deterministically and return the path."""
    return write_csv(out_dir / "demand.csv", list(DEMAND_CSV_COLUMNS),
                     table[list(DEMAND_CSV_COLUMNS)].itertuples(index=False, name=None))
