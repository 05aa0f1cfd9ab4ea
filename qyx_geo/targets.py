"""The plan's targets: its table of 21 indicators and the spatial targets its text states.

Source: 慈溪市公共服务“七优享”工程实施方案(2023—2027年), kept verbatim in
``data/targets/plan_2023-2027.txt``. Two files are read from ``data/targets``:

``indicators.csv``
    The table 慈溪市公共服务“七优享”五年目标: number, domain (七优享 area), name, unit, the 2022
    baseline and the 2023–2027 values exactly as printed (``<3.5``, ``≥32``, ``全覆盖``, ``82%``),
    and parsed ``op_YYYY`` / ``value_YYYY`` columns (``op`` is ``=``, ``<``, ``<=``, ``>``, ``>=``
    or ``full``).
``spatial_targets.json``
    The spatial targets (share of villages/communities covered, places per 1,000 residents), each
    with the clause quoted verbatim and its location in the plan (e.g. ``二、(五)3``), one entry per
    year of the plan period; ``null`` where the plan states no target for that year.

Services reach their targets through the keys of :mod:`qyx_geo.services`
(``coverage_target``/``capacity_target``); :func:`target_for` answers "what is the target for
service S in year Y" and raises :class:`~qyx_geo._errors.NoTargetError` where the plan sets none.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd

from qyx_geo._errors import ColumnError, DataFileError, NoTargetError, SettingsError
from qyx_geo._paths import data_dir
from qyx_geo.services import Service, get_service

__all__ = [
    "BASELINE_YEAR",
    "PLAN_PUBLISHED",
    "PLAN_TITLE",
    "PLAN_YEARS",
    "Clause",
    "SpatialTarget",
    "Target",
    "TargetKind",
    "YearTargets",
    "load_indicators",
    "load_spatial_targets",
    "parse_value",
    "target_for",
    "targets_for_year",
]

TargetKind = Literal["coverage", "capacity"]
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)

#: Years of the plan period and the baseline year of its table.
PLAN_YEARS: tuple[int, ...] = (2023, 2024, 2025, 2026, 2027)
BASELINE_YEAR = 2022
#: The plan's title and publication date (慈溪市人民政府办公室).
PLAN_TITLE = "慈溪市公共服务“七优享”工程实施方案(2023—2027年)"
PLAN_PUBLISHED = "2023-07-25"
_TABLE_YEARS = (BASELINE_YEAR, *PLAN_YEARS)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_INDICATOR_TEXT_COLUMNS = ("domain", "name", "unit", "label", "direction")
_VALUE_RE = re.compile(r"^(?P<op><|>|≥|≤)?\s*(?P<num>-?\d+(?:\.\d+)?)\s*(?P<pct>%)?$")


@dataclasses.dataclass(frozen=True)
class Clause:
    """A passage of the plan quoted verbatim, with its location (e.g. ``二、(五)3``)."""

    location: str
    text: str

    def cite(self) -> str:
        """Return ``location「text」`` for reports."""
        return f"{self.location}「{self.text}」"


@dataclasses.dataclass(frozen=True)
class Target:
    """The plan's target for one key and year.

    Attributes
    ----------
    key
        Target key (``meal_aid_coverage``, ``nursery_places_per_1000``, ...).
    value
        Machine-readable value: a share in [0, 1] for coverage targets, places per 1,000
        residents for the capacity target.
    op
        Comparison the actual figure must satisfy (``>=``, ``<``, ...).
    text
        The target as the plan prints it (``95%以上``, ``全覆盖``, ``5.5``).
    clause
        The clause that sets it, verbatim (the first of the entry's clauses).
    year
        Year the target applies to.
    location
        Location of ``clause`` in the plan (``二、(五)3``).
    kind
        ``coverage`` or ``capacity``.
    reading
        How qyx_geo reads the clause where it needs interpretation.
    """

    key: str
    value: float
    op: str
    text: str
    clause: str
    year: int
    location: str = ""
    kind: str = "coverage"
    reading: str = ""

    def is_met(self, actual: float) -> bool:
        """Return whether ``actual`` satisfies the target (``False`` for NaN)."""
        if actual is None or (isinstance(actual, float) and math.isnan(actual)):
            return False
        # Shares are compared at the precision a report shows, so 0.95 counts as 95 %.
        return _OPS[self.op](round(float(actual), 9), self.value)

    def cite(self) -> str:
        """Return the clause with its location, e.g. ``二、(五)3「实施老年助餐…」``."""
        return f"{self.location}「{self.clause}」"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SpatialTarget:
    """One spatial target of the plan with its clauses and a target (or none) per plan year."""

    key: str
    kind: str
    services: tuple[str, ...]
    measure_zh: str
    measure_en: str
    unit: str
    clauses: tuple[Clause, ...]
    years: Mapping[int, Target | None]
    reading: str
    unit_kinds: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class YearTargets:
    """Everything the plan sets for one year: table indicators and spatial targets."""

    year: int
    indicators: pd.DataFrame
    spatial: Mapping[str, Target | None]
    spatial_targets: Mapping[str, SpatialTarget]


def parse_value(text: str) -> tuple[str, float]:
    """Parse a table cell as printed into ``(op, value)``.

    ``"<3.5"`` → ``("<", 3.5)``, ``"≥32"`` → ``(">=", 32.0)``, ``"82%"`` → ``("=", 82.0)``,
    ``"全覆盖"`` → ``("full", nan)``, ``"16.30"`` → ``("=", 16.3)``.

    Raises
    ------
    DataFileError
        If the text is not one of these forms.
    """
    cell = str(text).strip()
    if cell == "全覆盖":
        return "full", math.nan
    match = _VALUE_RE.match(cell)
    if match is None:
        msg = (f"Cannot parse the plan value {text!r}; expected a number optionally prefixed by "
               "<, >, ≥ or ≤ and/or followed by %, or 全覆盖.")
        raise DataFileError(msg)
    op = {None: "=", "<": "<", ">": ">", "≥": ">=", "≤": "<="}[match["op"]]
    return op, float(match["num"])


def _targets_dir() -> Path:
    return data_dir() / "targets"


@functools.lru_cache(maxsize=4)
def _read_indicators(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError as err:
        msg = (f"Plan indicator table {str(path)!r} not found; reinstall the package or set "
               "QYX_DATA_DIR to a folder holding targets/indicators.csv.")
        raise DataFileError(msg) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        msg = f"Plan indicator table {str(path)!r} is not a readable UTF-8 CSV: {err}"
        raise DataFileError(msg) from err
    required = ["number", *_INDICATOR_TEXT_COLUMNS, *(str(y) for y in _TABLE_YEARS)]
    required += [f"{c}_{y}" for y in _TABLE_YEARS for c in ("op", "value")]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        msg = (f"{str(path)!r} lacks column(s) {missing!r}; expected {required!r} "
               "(see docs/targets.md).")
        raise ColumnError(msg)
    out = frame[required].copy()
    for pos, record in enumerate(out.to_dict("records")):
        row = pos + 2  # 1-based line number in the file, after the header
        if not record["number"].isdigit():
            msg = f"{str(path)!r} row {row}: number {record['number']!r} is not an integer."
            raise DataFileError(msg)
        for year in _TABLE_YEARS:
            text = record[str(year)]
            op, value = parse_value(text)
            stored_op, stored_value = record[f"op_{year}"], record[f"value_{year}"]
            stored = float(stored_value) if stored_value else math.nan
            same = stored == value or (math.isnan(stored) and math.isnan(value))
            if stored_op != op or not same:
                msg = (f"{str(path)!r} row {row}: op_{year}/value_{year} = "
                       f"{stored_op!r}/{stored_value!r} disagree with the printed value {text!r} "
                       f"(parsed as {op!r}/{value!r}); fix the parsed columns.")
                raise DataFileError(msg)
    out["number"] = out["number"].astype(int)
    if out["number"].duplicated().any():
        dup = out.loc[out["number"].duplicated(), "number"].tolist()
        msg = f"{str(path)!r}: indicator number(s) {dup!r} appear more than once."
        raise DataFileError(msg)
    for year in _TABLE_YEARS:
        out[f"value_{year}"] = pd.to_numeric(out[f"value_{year}"].replace("", None),
                                             errors="raise").astype(float)
    return out.set_index("number").sort_index()


def load_indicators(path: str | Path | None = None) -> pd.DataFrame:
    """Load the plan's table of 21 indicators.

    Parameters
    ----------
    path
        CSV to read; default ``data/targets/indicators.csv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by indicator ``number`` (1–21): ``domain``, ``name``, ``unit``, ``label`` (name and
        unit as printed), ``direction`` (``up``: higher is better, ``down``: lower is better),
        ``"2022"``…``"2027"`` (text as printed), ``op_YYYY`` and ``value_YYYY`` (parsed).

    Examples
    --------
    >>> ind = load_indicators()
    >>> ind.loc[7, "2027"], ind.loc[7, "op_2027"], float(ind.loc[7, "value_2027"])
    ('<3.5', '<', 3.5)
    """
    target = Path(path) if path is not None else _targets_dir() / "indicators.csv"
    return _read_indicators(target.resolve()).copy()


def _target_from_json(key: str, kind: str, year: int, entry: Mapping[str, Any],
                      clauses: tuple[Clause, ...], reading: str, where: str) -> Target:
    label = f"{where}: targets[{key!r}].years[{str(year)!r}]"
    try:
        op, value, text = entry["op"], float(entry["value"]), str(entry["text"])
        clause = clauses[int(entry.get("clause", 0))]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        msg = (f"{label} must be null or an object with op, value, text and optionally clause "
               f"(an index into the entry's clauses); got {entry!r}.")
        raise DataFileError(msg) from err
    if op not in _OPS:
        msg = f"{label}.op {op!r} is not one of {list(_OPS)!r}."
        raise DataFileError(msg)
    return Target(key=key, value=value, op=op, text=text, clause=clause.text, year=year,
                  location=clause.location, kind=kind, reading=reading)


@functools.lru_cache(maxsize=4)
def _read_spatial(path: Path) -> dict[str, SpatialTarget]:
    where = repr(str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        msg = (f"Spatial targets file {where} not found; reinstall the package or set "
               "QYX_DATA_DIR to a folder holding targets/spatial_targets.json.")
        raise DataFileError(msg) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"Spatial targets file {where} is not valid UTF-8 JSON: {err}"
        raise DataFileError(msg) from err
    if not isinstance(raw, dict) or not isinstance(raw.get("targets"), list):
        msg = f"{where} must be an object with a 'targets' list."
        raise DataFileError(msg)
    out: dict[str, SpatialTarget] = {}
    for pos, item in enumerate(raw["targets"]):
        try:
            key, kind = str(item["key"]), str(item["kind"])
            clauses = tuple(Clause(str(c["location"]), str(c["text"])) for c in item["clauses"])
            years_raw = {int(y): v for y, v in item["years"].items()}
            fields = {f: str(item[f]) for f in ("measure_zh", "measure_en", "unit", "reading")}
            services = tuple(str(s) for s in item["services"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            msg = (f"{where}: targets[{pos}] is malformed ({err!r}); each needs key, kind, "
                   "services, measure_zh, measure_en, unit, clauses[{location, text}], years, "
                   "reading.")
            raise DataFileError(msg) from err
        if kind not in TARGET_KINDS:
            msg = f"{where}: targets[{key!r}].kind {kind!r} is not one of {TARGET_KINDS!r}."
            raise DataFileError(msg)
        if not clauses:
            msg = f"{where}: targets[{key!r}] quotes no clause; every target must cite the plan."
            raise DataFileError(msg)
        if key in out:
            msg = f"{where}: target key {key!r} appears more than once."
            raise DataFileError(msg)
        if set(years_raw) != set(PLAN_YEARS):
            msg = (f"{where}: targets[{key!r}].years must list every plan year {list(PLAN_YEARS)} "
                   f"(null where the plan sets none); got {sorted(years_raw)}.")
            raise DataFileError(msg)
        years = {y: None if v is None else _target_from_json(key, kind, y, v, clauses,
                                                             fields["reading"], where)
                 for y, v in sorted(years_raw.items())}
        kinds = item.get("unit_kinds")
        out[key] = SpatialTarget(key=key, kind=kind, services=services, clauses=clauses,
                                 years=years, unit_kinds=None if kinds is None else tuple(kinds),
                                 **fields)
    return out


def load_spatial_targets(path: str | Path | None = None) -> dict[str, SpatialTarget]:
    """Load the spatial targets the plan's text states, keyed by target key.

    Parameters
    ----------
    path
        JSON to read; default ``data/targets/spatial_targets.json``.

    Examples
    --------
    >>> t = load_spatial_targets()["meal_aid_coverage"]
    >>> t.clauses[0].location, t.years[2027].value, t.years[2025]
    ('二、(五)3', 0.95, None)
    """
    target = Path(path) if path is not None else _targets_dir() / "spatial_targets.json"
    return dict(_read_spatial(target.resolve()))


def _check_year(year: object) -> int:
    if isinstance(year, bool) or not isinstance(year, int):
        msg = f"year must be an integer such as 2027, got {year!r}."
        raise SettingsError(msg)
    return year


def target_for(service: str | Service, year: int, *,
               kind: TargetKind = "coverage") -> Target:
    """Return the plan's target for ``service`` in ``year``.

    Parameters
    ----------
    service
        Service id (``nursery``, ``canteen``, ``clinic``, ``sports``) or a :class:`Service`.
    year
        A year of the plan period, 2023–2027.
    kind
        ``coverage`` (share of villages/communities) or ``capacity`` (places per 1,000).

    Raises
    ------
    NoTargetError
        If the service has no target of this kind, or the plan sets none for ``year``.

    Examples
    --------
    >>> target_for("canteen", 2027).text
    '95%以上'
    >>> target_for("nursery", 2024, kind="capacity").value
    4.3
    """
    svc = get_service(service)
    year = _check_year(year)
    if kind not in TARGET_KINDS:
        msg = f"kind must be one of {TARGET_KINDS!r}, got {kind!r}."
        raise SettingsError(msg)
    key = svc.coverage_target if kind == "coverage" else svc.capacity_target
    if key is None:
        msg = f"The plan sets no {kind} target for service {svc.id!r} ({svc.label_zh})."
        raise NoTargetError(msg)
    spatial = load_spatial_targets()
    if key not in spatial:
        msg = (f"Service {svc.id!r} refers to target key {key!r}, which is not in "
               f"data/targets/spatial_targets.json (keys: {sorted(spatial)!r}).")
        raise NoTargetError(msg)
    entry = spatial[key]
    if year not in entry.years:
        msg = (f"No target for {svc.id!r} ({key}) in {year!r}: the plan covers "
               f"{PLAN_YEARS[0]}–{PLAN_YEARS[-1]}"
               + (f" ({BASELINE_YEAR} is its baseline year)" if year == BASELINE_YEAR else "")
               + "; choose a year in that range.")
        raise NoTargetError(msg)
    found = entry.years[year]
    if found is None:
        stated = [y for y, t in entry.years.items() if t is not None]
        msg = (f"The plan sets no {kind} target for {svc.id!r} ({svc.label_zh}, {key}) in {year}; "
               f"it states one for {stated!r} only ({entry.clauses[0].location}).")
        raise NoTargetError(msg)
    return found


def targets_for_year(year: int) -> YearTargets:
    """Return the 21 table indicators and every spatial target for ``year``.

    ``year`` may also be the baseline year 2022 (indicators only; spatial targets are all
    ``None``).

    Raises
    ------
    NoTargetError
        If ``year`` is outside 2022–2027.
    """
    year = _check_year(year)
    if year not in _TABLE_YEARS:
        msg = (f"The plan's table covers {BASELINE_YEAR} (baseline) and "
               f"{PLAN_YEARS[0]}–{PLAN_YEARS[-1]}; got {year!r}.")
        raise NoTargetError(msg)
    ind = load_indicators()
    table = ind[["domain", "name", "unit", "label", "direction", str(BASELINE_YEAR)]].rename(
        columns={str(BASELINE_YEAR): "baseline"})
    table["text"] = ind[str(year)]
    table["op"] = ind[f"op_{year}"]
    table["value"] = ind[f"value_{year}"]
    spatial = load_spatial_targets()
    return YearTargets(year=year, indicators=table,
                       spatial={k: s.years.get(year) for k, s in spatial.items()},
                       spatial_targets=spatial)
