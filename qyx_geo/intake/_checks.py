"""Row-level checks of :mod:`qyx_geo.intake`: swaps, county outline, units, shifts, duplicates.

Each check takes the list of :class:`RowState` (one per input row), records what it changed or
why it rejected a row on that row, and returns file-level warnings (Chinese / English text) for
the intake report. No check drops a row: a rejected row keeps its place and its reasons.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from qyx_geo import crs as _crs
from qyx_geo.intake._names import PlaceMatcher, normalise_text

__all__ = [
    "RowState",
    "assign_units",
    "check_duplicates",
    "check_outside",
    "diagnose_shift",
    "fix_swaps",
]

logger = logging.getLogger(__name__)

#: A registered village further than this from the point is mentioned in the row's notes.
FAR_FROM_VILLAGE_M = 2000.0
#: Shift diagnosis: another system must cut the network distance by this much (m) and share ...
NETWORK_GAIN_M, NETWORK_RATIO = 15.0, 0.6
#: ... or the systematic offset against village centres by this much (m) and share.
VILLAGE_GAIN_M, VILLAGE_RATIO = 150.0, 0.6
MIN_SHIFT_ROWS = 3
#: Rows further than this from their village centre are left out of the shift diagnosis.
GROSS_ERROR_M = 3000.0


@dataclasses.dataclass
class RowState:
    """Everything the intake knows about one input row while it is processed."""

    row: int
    source_id: str = ""
    id: str = ""
    name: str = ""
    address: str = ""
    village_text: str = ""
    township_text: str = ""
    level: str | None = None
    capacity: float | None = None
    x: float | None = None
    y: float | None = None
    source_x_text: str = ""
    source_y_text: str = ""
    lon: float | None = None
    lat: float | None = None
    township_code: str | None = None
    unit_code: str | None = None
    unit_by_name: bool = False
    placement: str = "coordinates"
    changes: list[str] = dataclasses.field(default_factory=list)
    reasons: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    candidates: list[str] = dataclasses.field(default_factory=list)

    @property
    def status(self) -> Literal["accepted", "accepted-with-changes", "rejected"]:
        """``rejected`` if any reason, else ``accepted-with-changes`` if any change."""
        if self.reasons:
            return "rejected"
        return "accepted-with-changes" if self.changes else "accepted"

    @property
    def alive(self) -> bool:
        """Whether the row is still headed for the layer."""
        return not self.reasons

    def reject(self, reason: str) -> None:
        """Reject the row for ``reason``."""
        self.reasons.append(reason)

    def change(self, what: str) -> None:
        """Record a change made to the row's data."""
        self.changes.append(what)

    def note(self, text: str) -> None:
        """Record a remark that changes nothing."""
        self.notes.append(text)


def _metric(lon: Any, lat: Any) -> npt.NDArray[np.float64]:
    x, y = _crs.from_wgs84(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float),
                           crs="epsg4549")
    return np.column_stack([x, y])


def _plausible(a: float, b: float, source_crs: str) -> bool:
    if source_crs == "epsg4549":
        return 250_000 <= a <= 750_000 and 2_000_000 <= b <= 6_200_000
    return 72.004 <= a <= 137.8347 and 0.8293 <= b <= 55.8271


def fix_swaps(states: list[RowState], source_crs: str) -> list[str]:
    """Swap x/y where only the swapped order is plausible for China; reject implausible rows."""
    live = [s for s in states if s.alive and s.x is not None and s.y is not None]
    swapped = implausible = 0
    projected_like = 0
    for s in live:
        x, y = float(s.x), float(s.y)  # type: ignore[arg-type]
        if _plausible(x, y, source_crs):
            continue
        if _plausible(y, x, source_crs):
            s.x, s.y = y, x
            swapped += 1
            s.change(f"经纬度互换：({x!r}, {y!r}) → ({y!r}, {x!r}) / longitude and latitude were "
                     f"swapped; fixed")
            continue
        implausible += 1
        projected_like += abs(x) > 1000 or abs(y) > 1000
        s.reject(f"坐标 ({x!r}, {y!r}) 不是中国境内的 {source_crs} 坐标 / not plausible "
                 f"{source_crs} coordinates in China; check the columns and the crs option")
    warnings: list[str] = []
    if swapped:
        share = swapped / len(live)
        warnings.append(f"{swapped} 行经纬度互换，已纠正 / {swapped} row(s) had latitude and "
                        f"longitude swapped and were fixed"
                        + ("；多数行如此，请检查经度/纬度表头是否写反 / most rows do: check "
                           "whether the 经度/纬度 headers are exchanged" if share > 0.5 else ""))
    if projected_like and source_crs != "epsg4549":
        warnings.append(f"{projected_like} 行坐标像投影坐标（米），请用 crs='epsg4549' 导入 / "
                        f"{projected_like} row(s) look like projected metres; import with "
                        f"crs='epsg4549' if they are CGCS2000 Gauss-Kruger 120°E")
    elif implausible:
        warnings.append(f"{implausible} 行坐标不在中国范围内，已拒绝 / {implausible} row(s) with "
                        f"coordinates outside China were rejected")
    return warnings


def check_outside(states: list[RowState], outline: shapely.Geometry, *,
                  tolerance_m: float) -> list[str]:
    """Reject points further than ``tolerance_m`` outside the county; note nearer ones."""
    live = [s for s in states if s.alive and s.lon is not None]
    if not live:
        return []
    pts = shapely.points(_metric([s.lon for s in live], [s.lat for s in live]))
    outline_m = shapely.transform(outline, lambda c: _metric(c[:, 0], c[:, 1]))
    dist = shapely.distance(pts, outline_m)
    rejected = noted = 0
    for s, d in zip(live, dist, strict=True):
        if d > tolerance_m:
            rejected += 1
            s.reject(f"位于县界外约 {d:,.0f} m / {d:,.0f} m outside the county outline; check "
                     f"the coordinates and the crs option")
        elif d > 0:
            noted += 1
            s.note(f"位于县界外 {d:,.0f} m（容差 {tolerance_m:,.0f} m 内，保留）/ {d:,.0f} m "
                   f"outside the county, within the tolerance; kept")
    warnings = []
    if rejected or noted:
        warnings.append(f"{rejected + noted} 行位于县界外（{rejected} 行超出 {tolerance_m:,.0f} m "
                        f"被拒绝）/ {rejected + noted} row(s) outside the county, {rejected} "
                        f"rejected (more than {tolerance_m:,.0f} m)")
    if len(live) >= 3 and rejected > len(live) / 2:
        warnings.append("多数点位在县界外：坐标系或经纬度列可能有误 / most points are outside the "
                        "county: the crs option or the coordinate columns are probably wrong")
    return warnings


def _centres(units: gpd.GeoDataFrame) -> gpd.GeoSeries:
    if {"centre_lon", "centre_lat"} <= set(units.columns):
        pts = gpd.points_from_xy(units["centre_lon"], units["centre_lat"])
        return gpd.GeoSeries(pts, index=units.index, crs=units.crs)
    return units.geometry.representative_point()


def assign_units(states: list[RowState], units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame,
                 *, fallback: str | None) -> list[str]:
    """Match village/township names to codes; place or reject rows without coordinates.

    Rows whose village is not (uniquely) named get the unit their point lies in (within the
    registered township when that is known), flagged as a change.
    """
    unit_town = {str(c): str(t) for c, t in units["township_code"].items()}
    villages = PlaceMatcher(dict(units["name"].items()), kind="village", parents=unit_town)
    towns = PlaceMatcher(dict(townships["name"].items()), kind="township")
    centres = _centres(units)
    spatial: list[RowState] = []
    for s in states:
        if not s.alive:
            continue
        town = towns.match(s.township_text) if s.township_text else None
        if town is not None and not town.matched:
            s.note(f"镇街 '{s.township_text}' 未能匹配 / township not recognised"
                   + (f"（候选 candidates: {'、'.join(town.candidates)}）" if town.candidates
                      else ""))
        village = villages.match(s.village_text, within=town.code if town else None)
        if (village.matched and town is not None and town.matched
                and unit_town[str(village.code)] != town.code):
            # The register's township wins over a same-named village elsewhere.
            s.candidates = [villages._label(str(village.code))]
            s.note(f"村社 '{s.village_text}' 不在 {towns.names[str(town.code)]}，同名村社在 "
                   f"{towns.names[unit_town[str(village.code)]]} / a village of that name exists "
                   f"only in another township")
            village = dataclasses.replace(village, status="unknown", code=None, name=None)
        if village.matched:
            code = str(village.code)
            s.unit_code, s.township_code, s.unit_by_name = code, unit_town[code], True
            if village.status == "variant":
                s.note(f"村社 '{s.village_text}' → {village.name} ({code})")
        elif village.status in {"ambiguous", "unknown"}:
            s.candidates = s.candidates or list(village.candidates)
            what = "不唯一" if village.status == "ambiguous" else "未能匹配"
            label = f"村社 '{s.village_text}' {what} / village {village.status}"
            if s.lon is None:
                s.reject(f"{label}，且无坐标，无法定位 / and no coordinates to place the row")
                continue
            s.unit_by_name = False
            s.change(f"{label}，按坐标归入所在村社 / assigned by location")
        if s.lon is None and village.status == "empty" and s.address:
            town_code = town.code if town is not None and town.matched else (
                towns.find_in(s.address).code)
            guess = villages.find_in(s.address, within=town_code)
            if guess.matched:
                code = str(guess.code)
                s.unit_code, s.township_code = code, unit_town[code]
                s.note(f"村社由地址推断为 {guess.name} ({code}) / village inferred from the "
                       f"address")
            elif guess.status == "ambiguous":
                s.candidates = list(guess.candidates)
        if town is not None and town.matched and s.township_code is None:
            s.township_code = town.code
        if s.lon is None:
            _place_without_coordinates(s, centres, fallback)
            continue
        if not village.matched:
            spatial.append(s)
    _assign_by_location(spatial, units)
    _note_far_from_village(states, units)
    return []


def _place_without_coordinates(s: RowState, centres: gpd.GeoSeries, fallback: str | None) -> None:
    what = f"仅有地址 '{s.address}'" if s.address else "无坐标"
    if fallback == "village_centre" and s.unit_code is not None:
        point = centres.loc[s.unit_code]
        s.lon, s.lat = float(point.x), float(point.y)
        s.placement = "village_centre"
        s.change(f"{what}，按村社中心放置（近似，已标记）/ no coordinates; placed at the centre "
                 f"of its village {s.unit_code} (approximate, flagged)")
        return
    hint = ("；可用 fallback='village_centre' 放在村社中心 / or use fallback='village_centre'"
            if s.unit_code is not None else "")
    s.reject(f"{what}：离线无法地理编码，请补经度/纬度 / no coordinates and addresses cannot be "
             f"geocoded offline; add 经度/纬度{hint}")


def _assign_by_location(rows: list[RowState], units: gpd.GeoDataFrame) -> None:
    if not rows:
        return
    polys = units.to_crs("EPSG:4549")
    codes = np.asarray([str(c) for c in polys.index])
    pts = shapely.points(_metric([s.lon for s in rows], [s.lat for s in rows]))
    tree = shapely.STRtree(polys.geometry.to_numpy())
    town_of = polys["township_code"].astype(str).to_numpy()
    for s, pt in zip(rows, pts, strict=True):
        hits = tree.query(pt, predicate="intersects")
        if s.township_code is not None:
            hits = hits[town_of[hits] == s.township_code]
            if len(hits) == 0:
                inside = np.flatnonzero(town_of == s.township_code)
                if len(inside):
                    dists = shapely.distance(polys.geometry.to_numpy()[inside], pt)
                    hits = inside[[int(np.argmin(dists))]]
        if len(hits) == 0:
            hits = tree.query_nearest(pt)
        code = str(codes[int(hits[0])])
        s.unit_code, s.township_code = code, str(town_of[int(hits[0])])
        s.note(f"村社按坐标确定为 {units.loc[code, 'name']} ({code}) / village from location")


def _note_far_from_village(states: list[RowState], units: gpd.GeoDataFrame) -> None:
    rows = [s for s in states if s.alive and s.unit_by_name and s.placement == "coordinates"
            and s.lon is not None]
    if not rows:
        return
    polys = units.to_crs("EPSG:4549").geometry
    pts = shapely.points(_metric([s.lon for s in rows], [s.lat for s in rows]))
    targets = polys.loc[[s.unit_code for s in rows]].to_numpy()
    for s, d in zip(rows, shapely.distance(pts, targets), strict=True):
        if d > FAR_FROM_VILLAGE_M:
            s.note(f"点位距所登记村社约 {d:,.0f} m（村界为近似）/ point lies {d:,.0f} m from its "
                   f"registered village (village areas are approximate)")


def _hypotheses(rows: list[RowState], source_crs: str) -> tuple[dict[str, np.ndarray], str]:
    """Candidate WGS84 positions of the rows under each web-map system, and the declared one."""
    if source_crs in {"wgs84", "gcj02", "bd09", "cgcs2000"}:
        bx = np.array([s.x for s in rows], dtype=float)
        by = np.array([s.y for s in rows], dtype=float)
    else:
        bx = np.array([s.lon for s in rows], dtype=float)
        by = np.array([s.lat for s in rows], dtype=float)
    out = {"wgs84": _metric(bx, by), "gcj02": _metric(*_crs.gcj02_to_wgs84(bx, by)),
           "bd09": _metric(*_crs.bd09_to_wgs84(bx, by))}
    declared = source_crs if source_crs in out else "wgs84"
    return out, declared


def diagnose_shift(states: list[RowState], source_crs: str, units: gpd.GeoDataFrame, *,
                   network: gpd.GeoSeries | None) -> list[str]:
    """Warn when another web-map system fits the data markedly better than the declared one.

    With a network, the score of a system is the median distance from the points to the nearest
    street; without, the size of the mean offset vector from each point to the centre of the
    village it names (a systematic shift moves all points the same way; honest scatter averages
    out).
    """
    rows = [s for s in states if s.alive and s.lon is not None and s.placement == "coordinates"
            and s.x is not None]
    if network is None:
        rows = [s for s in rows if s.unit_by_name]
    if len(rows) < MIN_SHIFT_ROWS:
        return []
    hyps, declared = _hypotheses(rows, source_crs)
    if network is not None:
        lines = network.to_crs("EPSG:4549") if network.crs is not None else network
        tree = shapely.STRtree(np.asarray(lines.geometry.to_numpy()))
        scores = {}
        for name, xy in hyps.items():
            idx, dist = tree.query_nearest(shapely.points(xy), return_distance=True)
            nearest_m = np.full(len(xy), np.inf)
            np.minimum.at(nearest_m, idx[0], dist)
            scores[name] = float(np.median(nearest_m))
        gain_m, ratio = NETWORK_GAIN_M, NETWORK_RATIO
        what = "点位到最近道路的中位距离 / median distance to the nearest street"
        significant = dict.fromkeys(scores, True)
    else:
        centres = _centres(units).to_crs("EPSG:4549")
        cxy = np.column_stack([centres.x.loc[[s.unit_code for s in rows]],
                               centres.y.loc[[s.unit_code for s in rows]]])
        scores, significant = {}, {}
        for name, xy in hyps.items():
            d = xy - cxy
            d = d[np.hypot(d[:, 0], d[:, 1]) < GROSS_ERROR_M]  # misplaced rows are not a shift
            if len(d) < MIN_SHIFT_ROWS:
                return []
            # Robust: coordinate-wise median offset, its standard error from the MAD.
            median = np.median(d, axis=0)
            sigma = 1.4826 * np.median(np.abs(d - median), axis=0)
            se = float(1.2533 * np.linalg.norm(sigma) / np.sqrt(len(d)))
            scores[name] = float(np.linalg.norm(median))
            significant[name] = scores[name] > 2.5 * se
        gain_m, ratio = VILLAGE_GAIN_M, VILLAGE_RATIO
        what = "相对村社中心的系统偏移 / systematic offset from the village centres"
    best = min(scores, key=lambda k: scores[k])
    logger.debug("shift scores (%s): %s", what, scores)
    if (best != declared and significant[declared]
            and scores[declared] - scores[best] > gain_m
            and scores[best] < ratio * scores[declared]):
        return [f"坐标疑似为 {best} 而非 {source_crs}：按 {best} 解读时{what}由 "
                f"{scores[declared]:,.0f} m 降至 {scores[best]:,.0f} m（{len(rows)} 行）。"
                f"请确认坐标来源后用 crs='{best}' 重新导入 / the coordinates look like {best}, not "
                f"{source_crs}; check their origin and re-import with crs='{best}'"]
    return []


def check_duplicates(states: list[RowState], *, dist_m: float, mode: str) -> list[str]:
    """Flag later rows that repeat an earlier row's id, or its name within ``dist_m``."""
    live = [s for s in states if s.alive and s.lon is not None]
    if not live:
        return []
    xy = _metric([s.lon for s in live], [s.lat for s in live])
    seen_ids: dict[str, RowState] = {}
    seen_names: dict[str, list[tuple[RowState, np.ndarray]]] = {}
    by_id = by_place = 0
    for s, p in zip(live, xy, strict=True):
        first = seen_ids.get(s.id)
        if first is not None:
            by_id += 1
            text = f"编号 '{s.id}' 与第 {first.row} 行重复 / same id as row {first.row}"
            if mode == "reject":
                s.reject(f"{text}; give each facility its own id, or delete the duplicate row")
                continue
            s.id = f"{s.id}-r{s.row}"
            s.change(f"{text}; id made unique as '{s.id}'")
        key = normalise_text(s.name).lower()
        twin = next(((o, float(np.hypot(*(p - q)))) for o, q in seen_names.get(key, [])
                     if np.hypot(*(p - q)) <= dist_m), None)
        if twin is not None:
            by_place += 1
            other, d = twin
            text = (f"与第 {other.row} 行同名且相距 {d:,.0f} m，疑似重复 / same name as row "
                    f"{other.row}, {d:,.0f} m apart: likely a duplicate")
            if mode == "reject":
                s.reject(f"{text}; delete one of them, or re-import with duplicates='keep'")
                continue
            s.note(f"{text}; kept")
        seen_ids[s.id] = s
        seen_names.setdefault(key, []).append((s, p))
    if not by_id and not by_place:
        return []
    verb = "已拒绝 rejected" if mode == "reject" else "已保留 kept"
    return [f"重复 {by_id + by_place} 行（同编号 {by_id}，同名同址 {by_place}），{verb} / "
            f"{by_id + by_place} duplicate row(s): {by_id} by id, {by_place} by name within "
            f"{dist_m:,.0f} m"]
