"""Plan files: a county's targets as one documented, validated file (format ``qyx-plan/1``).

A plan file is UTF-8 JSON (docs/targets.md describes every field)::

    {
      "format": "qyx-plan/1",
      "title": "XX市公共服务“七优享”工程实施方案(2023—2027年)",
      "publisher": "XX市人民政府办公室", "published": "2023-07-25",
      "region": {"code": "330282", "name_zh": "XX市"},
      "period": [2023, 2027], "baseline_year": 2022,
      "text_file": "plan_2023-2027.txt",          # optional: clauses are checked against it
      "indicators": "indicators.csv",             # or a list of objects, or omitted
      "ranking": {"location": ..., "text": ..., "reading": ...},   # optional
      "targets": [{"key", "kind", "services", "measure_zh", "measure_en", "unit",
                   "clauses": [{"location", "text"}], "years": {"2027": {"op", "value", "text"}},
                   "reading", ...kind-specific fields}]
    }

Target kinds (:data:`TARGET_KINDS`):

``coverage``
    Share of villages/communities whose residents (of the service's demand group) reach the service
    within the threshold (optional ``minutes``; optional ``unit_kinds`` such as ``["村委会"]``).
``capacity``
    Places of the service within reach per 1,000 residents (two-step floating catchment).
``presence``
    Share of townships with at least one facility of the service (``level: "township"``, optional
    ``township_kinds`` judged, e.g. ``["街道", "镇"]``).
``attribute_share``
    Share of the service's facilities (optional ``levels``) whose boolean ``attribute`` column is
    true (e.g. ``smart_terminal``).
``per_1000``
    Places (``capacity``) per 1,000 residents of ``population`` (default ``pop``), counted by
    township and county without travel times (the statistical reading of an indicator).

:func:`load_plan` reads any such file; the embedded Cixi plan is ``data/targets/plan.json``.
Every quoted clause must occur verbatim in ``text_file`` when one is given.
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

from qyx_geo._errors import DataFileError, NoTargetError, SettingsError
from qyx_geo._paths import data_dir
from qyx_geo._validate import require_columns
from qyx_geo.services import Service, get_service

__all__ = [
    "PLAN_FORMAT",
    "TARGET_KINDS",
    "Clause",
    "Plan",
    "SpatialTarget",
    "Target",
    "TargetKind",
    "YearTargets",
    "default_plan_path",
    "load_plan",
    "parse_value",
]

PLAN_FORMAT = "qyx-plan/1"
TargetKind = Literal["coverage", "capacity", "presence", "attribute_share", "per_1000"]
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)
#: Kinds scored on the facilities themselves (no travel times), see :mod:`qyx_geo.checks`.
FACILITY_KINDS: tuple[str, ...] = ("presence", "attribute_share", "per_1000")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
_INDICATOR_TEXT_COLUMNS = ("domain", "name", "unit", "label", "direction")
_VALUE_RE = re.compile(r"^(?P<op><|>|≥|≤)?\s*(?P<num>-?\d+(?:\.\d+)?)\s*(?P<pct>%)?$")
_SPACE_RE = re.compile(r"\s+")


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
        Machine-readable value: a share in [0, 1] for share kinds, places per 1,000 residents for
        ``capacity`` and ``per_1000``.
    op
        Comparison the actual figure must satisfy (``>=``, ``<``, ...).
    text
        The target as the plan prints it (``95%以上``, ``全覆盖``, ``5.5``).
    clause
        The clause that sets it, verbatim.
    year
        Year the target applies to.
    location
        Location of ``clause`` in the plan (``二、(五)3``).
    kind
        One of :data:`TARGET_KINDS`.
    reading
        How qyx_geo reads the clause where it needs interpretation.
    all_clauses
        Every clause the plan entry quotes (the one that sets the figure among them).
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
    all_clauses: tuple[Clause, ...] = ()

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
    """One target of the plan with its clauses and a target (or none) per plan year.

    ``options`` holds the kind-specific fields: ``minutes`` (coverage), ``level`` (presence),
    ``attribute`` (attribute_share), ``population`` and ``per`` (per_1000).
    """

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
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class YearTargets:
    """Everything the plan sets for one year: table indicators and spatial targets."""

    year: int
    indicators: pd.DataFrame
    spatial: Mapping[str, Target | None]
    spatial_targets: Mapping[str, SpatialTarget]


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """A loaded plan file (see the module docstring and docs/targets.md).

    Attributes
    ----------
    title, publisher, published
        The document's title, issuing office and date as printed.
    period
        Years of the plan period (e.g. 2023–2027).
    baseline_year
        Baseline year of the indicator table (``None`` if it has none).
    region_code, region_name
        The county the plan belongs to (optional in the file; empty when absent).
    indicators
        The indicator table indexed by ``number`` (may be empty): ``domain``, ``name``, ``unit``,
        ``label``, ``direction``, the printed cell per year (``"2022"``…) and parsed
        ``op_YYYY``/``value_YYYY``.
    targets
        Target key → :class:`SpatialTarget`, in file order.
    ranking
        The clause that asks for rankings (季晾晒), or ``None``; ``ranking_reading`` explains it.
    path
        The plan file read.
    text
        The plan's full text when ``text_file`` is given (clauses are checked against it).
    """

    title: str
    publisher: str
    published: str
    period: tuple[int, ...]
    baseline_year: int | None
    indicators: pd.DataFrame
    targets: Mapping[str, SpatialTarget]
    region_code: str = ""
    region_name: str = ""
    ranking: Clause | None = None
    ranking_reading: str = ""
    path: Path | None = None
    text_file: str | None = None
    text: str | None = None

    @property
    def years(self) -> tuple[int, ...]:
        """Baseline year (if any) and the plan years, ascending."""
        return ((self.baseline_year,) if self.baseline_year is not None else ()) + self.period

    def check_year(self, year: object) -> int:
        """Return ``year`` if it is the baseline or a plan year; else raise ``SettingsError``."""
        if isinstance(year, bool) or not isinstance(year, int) or year not in self.years:
            base = f" (or the {self.baseline_year} baseline)" if self.baseline_year else ""
            msg = (f"year must be a year of the plan {self.title!r}, "
                   f"{self.period[0]}–{self.period[-1]}{base}, got {year!r}.")
            raise SettingsError(msg)
        return year

    def find(self, service: str | Service, kind: str) -> SpatialTarget | None:
        """Return the plan's target of ``kind`` for ``service``, or ``None``.

        The service registry's key for that kind wins where the plan has it; otherwise the most
        specific target (fewest services) that lists the service, first in file order on ties.
        """
        svc = get_service(service)
        preferred = svc.target_keys.get(kind)
        if preferred and preferred in self.targets and self.targets[preferred].kind == kind:
            return self.targets[preferred]
        found = [t for t in self.targets.values() if t.kind == kind and svc.id in t.services]
        return min(found, key=lambda t: len(t.services)) if found else None

    def for_service(self, service: str | Service) -> list[SpatialTarget]:
        """Every target of the plan that lists ``service``, in file order."""
        sid = get_service(service).id
        return [t for t in self.targets.values() if sid in t.services]

    def target_for(self, service: str | Service, year: int, *,
                   kind: TargetKind = "coverage") -> Target:
        """Return the plan's target of ``kind`` for ``service`` in ``year``.

        Raises
        ------
        NoTargetError
            If the plan has no such target, or sets none for ``year``.
        SettingsError
            If ``year`` is not an integer or ``kind`` is unknown.
        """
        if isinstance(year, bool) or not isinstance(year, int):
            msg = f"year must be an integer such as 2027, got {year!r}."
            raise SettingsError(msg)
        if kind not in TARGET_KINDS:
            msg = f"kind must be one of {TARGET_KINDS!r}, got {kind!r}."
            raise SettingsError(msg)
        svc = get_service(service)
        entry = self.find(svc, kind)
        if entry is None:
            msg = (f"The plan sets no {kind} target for service {svc.id!r} ({svc.label_zh}) "
                   f"({self.title}).")
            raise NoTargetError(msg)
        return self.year_target(entry, year)

    def year_target(self, entry: SpatialTarget, year: int) -> Target:
        """Return ``entry``'s target for ``year`` or raise :class:`NoTargetError` saying why."""
        if year not in self.period:
            msg = (f"No target for {entry.key} in {year!r}: the plan covers "
                   f"{self.period[0]}–{self.period[-1]}"
                   + (f" ({year} is its baseline year)" if year == self.baseline_year else "")
                   + "; choose a year in that range.")
            raise NoTargetError(msg)
        found = entry.years.get(year)
        if found is None:
            stated = [y for y, t in entry.years.items() if t is not None]
            msg = (f"The plan sets no {entry.kind} target for {'/'.join(entry.services)!r} "
                   f"({entry.key}) in {year}; it states one for {stated!r} only "
                   f"({entry.clauses[0].location}).")
            raise NoTargetError(msg)
        return found

    def for_year(self, year: int) -> YearTargets:
        """Return the indicator table and every spatial target for ``year``.

        Raises
        ------
        NoTargetError
            If ``year`` is neither the baseline nor a plan year.
        """
        if isinstance(year, bool) or not isinstance(year, int):
            msg = f"year must be an integer such as 2027, got {year!r}."
            raise SettingsError(msg)
        if year not in self.years:
            base = f"{self.baseline_year} (baseline) and " if self.baseline_year else ""
            msg = (f"The plan {self.title!r} covers {base}"
                   f"{self.period[0]}–{self.period[-1]}; got {year!r}.")
            raise NoTargetError(msg)
        ind = self.indicators
        cols = ["domain", "name", "unit", "label", "direction"]
        table = ind[cols].copy()
        base_col = str(self.baseline_year) if self.baseline_year is not None else None
        table["baseline"] = ind[base_col] if base_col in ind.columns else ""
        table["text"] = ind[str(year)] if str(year) in ind.columns else ""
        table["op"] = ind[f"op_{year}"] if f"op_{year}" in ind.columns else ""
        table["value"] = ind[f"value_{year}"] if f"value_{year}" in ind.columns else math.nan
        return YearTargets(year=year, indicators=table,
                           spatial={k: s.years.get(year) for k, s in self.targets.items()},
                           spatial_targets=dict(self.targets))

    def summary(self) -> dict[str, Any]:
        """Title, publisher, date, region, period and file, for run records and reports."""
        return {"title": self.title, "publisher": self.publisher, "published": self.published,
                "region_code": self.region_code, "region_name": self.region_name,
                "period": list(self.period), "baseline_year": self.baseline_year,
                "path": None if self.path is None else str(self.path),
                "targets": list(self.targets)}


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


def default_plan_path() -> Path:
    """Return the embedded Cixi plan file, ``data/targets/plan.json``."""
    return data_dir() / "targets" / "plan.json"


# ----------------------------------------------------------------------------- indicators


def _indicator_csv(path: Path, years: tuple[int, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError as err:
        msg = (f"Plan indicator table {str(path)!r} not found; reinstall the package or set "
               "QYX_DATA_DIR to a folder holding targets/indicators.csv.")
        raise DataFileError(msg) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        msg = f"Plan indicator table {str(path)!r} is not a readable UTF-8 CSV: {err}"
        raise DataFileError(msg) from err
    required = ["number", *_INDICATOR_TEXT_COLUMNS, *(str(y) for y in years)]
    required += [f"{c}_{y}" for y in years for c in ("op", "value")]
    require_columns(frame.columns, required, source_name=repr(str(path)),
                    hint="See docs/targets.md.")
    out = frame[required].copy()
    for pos, record in enumerate(out.to_dict("records")):
        row = pos + 2  # 1-based line number in the file, after the header
        if not record["number"].isdigit():
            msg = f"{str(path)!r} row {row}: number {record['number']!r} is not an integer."
            raise DataFileError(msg)
        for year in years:
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
    return _finish_indicators(out, years, repr(str(path)))


def _indicator_list(items: list[Any], years: tuple[int, ...], where: str) -> pd.DataFrame:
    rows = []
    for pos, item in enumerate(items):
        label = f"{where}: indicators[{pos}]"
        try:
            number = item["number"]
            values = {str(k): str(v) for k, v in item["values"].items()}
            fields = {c: str(item.get(c, "")) for c in _INDICATOR_TEXT_COLUMNS}
            name = str(item["name"])
        except (KeyError, TypeError, AttributeError) as err:
            msg = (f"{label} is malformed ({err!r}); each indicator needs number, name, values "
                   "{year: printed text} and optionally domain, unit, label, direction.")
            raise DataFileError(msg) from err
        if isinstance(number, bool) or not isinstance(number, int):
            msg = f"{label}.number {number!r} is not an integer."
            raise DataFileError(msg)
        extra = sorted(set(values) - {str(y) for y in years})
        if extra:
            msg = f"{label}.values has year(s) {extra!r} outside the plan's years {list(years)!r}."
            raise DataFileError(msg)
        fields["name"] = name
        fields["label"] = fields["label"] or (f"{name}({fields['unit']})" if fields["unit"]
                                              else name)
        fields["direction"] = fields["direction"] or "up"
        row: dict[str, Any] = {"number": str(number), **fields}
        for year in years:
            text = values.get(str(year), "")
            op, value = parse_value(text) if text else ("", math.nan)
            row[str(year)] = text
            row[f"op_{year}"] = op
            row[f"value_{year}"] = "" if math.isnan(value) else repr(value)
        rows.append(row)
    columns = ["number", *_INDICATOR_TEXT_COLUMNS, *(str(y) for y in years)]
    columns += [f"{c}_{y}" for y in years for c in ("op", "value")]
    return _finish_indicators(pd.DataFrame(rows, columns=columns), years, where)


def _finish_indicators(out: pd.DataFrame, years: tuple[int, ...], where: str) -> pd.DataFrame:
    bad = sorted(set(out["direction"]) - {"up", "down"})
    if bad:
        msg = f"{where}: indicator direction(s) {bad!r} must be 'up' or 'down'."
        raise DataFileError(msg)
    out["number"] = out["number"].astype(int)
    if out["number"].duplicated().any():
        dup = out.loc[out["number"].duplicated(), "number"].tolist()
        msg = f"{where}: indicator number(s) {dup!r} appear more than once."
        raise DataFileError(msg)
    for year in years:
        out[f"value_{year}"] = pd.to_numeric(out[f"value_{year}"].replace("", None),
                                             errors="raise").astype(float)
    return out.set_index("number").sort_index()


# ----------------------------------------------------------------------------- targets


def _target_from_json(spec: SpatialTarget, year: int, entry: Mapping[str, Any],
                      where: str) -> Target:
    label = f"{where}: targets[{spec.key!r}].years[{str(year)!r}]"
    try:
        op, value, text = entry["op"], float(entry["value"]), str(entry["text"])
        clause = spec.clauses[int(entry.get("clause", 0))]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        msg = (f"{label} must be null or an object with op, value, text and optionally clause "
               f"(an index into the entry's clauses); got {entry!r}.")
        raise DataFileError(msg) from err
    if op not in _OPS:
        msg = f"{label}.op {op!r} is not one of {list(_OPS)!r}."
        raise DataFileError(msg)
    if spec.kind not in ("capacity", "per_1000") and not 0.0 <= value <= 1.0:
        msg = (f"{label}.value {value!r} must be a share in [0, 1] for a {spec.kind} target "
               "(write 0.95 for 95 %).")
        raise DataFileError(msg)
    return Target(key=spec.key, value=value, op=op, text=text, clause=clause.text, year=year,
                  location=clause.location, kind=spec.kind, reading=spec.reading,
                  all_clauses=spec.clauses)


_KIND_OPTIONS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "coverage": {"minutes": (int, float)},
    "capacity": {"minutes": (int, float)},
    "presence": {"level": str, "township_kinds": list},
    "attribute_share": {"attribute": str, "levels": list},
    "per_1000": {"population": str, "per": (int, float)},
}
_REQUIRED_OPTIONS = {"attribute_share": ("attribute",)}


def _options(item: Mapping[str, Any], key: str, kind: str, where: str) -> dict[str, Any]:
    allowed = _KIND_OPTIONS[kind]
    out: dict[str, Any] = {}
    for name, types in allowed.items():
        if name in item:
            value = item[name]
            if isinstance(value, bool) or not isinstance(value, types):
                msg = f"{where}: targets[{key!r}].{name} {value!r} has the wrong type."
                raise DataFileError(msg)
            out[name] = value
    for name in _REQUIRED_OPTIONS.get(kind, ()):
        if name not in out:
            msg = f"{where}: targets[{key!r}] ({kind}) needs the field {name!r}."
            raise DataFileError(msg)
    for name in ("township_kinds", "levels"):
        if name in out:
            out[name] = tuple(str(v) for v in out[name])
    if kind == "presence" and out.setdefault("level", "township") not in ("township", "unit"):
        msg = (f"{where}: targets[{key!r}].level must be 'township' or 'unit', got "
               f"{out['level']!r}.")
        raise DataFileError(msg)
    if kind == "per_1000":
        out.setdefault("population", "pop")
        out.setdefault("per", 1000)
    return out


def _spatial_target(item: Any, pos: int, period: tuple[int, ...], where: str) -> SpatialTarget:
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
    if not services:
        msg = f"{where}: targets[{key!r}] lists no service; name at least one service id."
        raise DataFileError(msg)
    outside = sorted(set(years_raw) - set(period))
    if outside:
        msg = (f"{where}: targets[{key!r}].years has year(s) {outside!r} outside the plan period "
               f"{period[0]}–{period[-1]}.")
        raise DataFileError(msg)
    kinds = item.get("unit_kinds")
    spec = SpatialTarget(key=key, kind=kind, services=services, clauses=clauses, years={},
                         unit_kinds=None if kinds is None else tuple(str(k) for k in kinds),
                         options=_options(item, key, kind, where), **fields)
    years = {y: None if years_raw.get(y) is None
             else _target_from_json(spec, y, years_raw[y], where) for y in period}
    return dataclasses.replace(spec, years=years)


def _squash(text: str) -> str:
    return _SPACE_RE.sub("", text)


def _check_quotes(plan_text: str, clauses: list[tuple[str, Clause]], where: str) -> None:
    body = _squash(plan_text)
    for label, clause in clauses:
        if _squash(clause.text) not in body:
            msg = (f"{where}: {label} quotes {clause.text[:40]!r}…, which is not in the plan text "
                   "verbatim; copy the clause exactly from the text_file.")
            raise DataFileError(msg)


# ----------------------------------------------------------------------------- loading


def _period(raw: Mapping[str, Any], where: str) -> tuple[tuple[int, ...], int | None]:
    try:
        first, last = (int(v) for v in raw["period"])
        base = raw.get("baseline_year")
        baseline = None if base is None else int(base)
    except (KeyError, TypeError, ValueError) as err:
        msg = (f"{where}: period must be [first_year, last_year] (e.g. [2023, 2027]) and "
               f"baseline_year an integer or null ({err!r}).")
        raise DataFileError(msg) from err
    if not 1900 <= first <= last <= 2200:
        msg = f"{where}: period {[first, last]!r} must be two years, first <= last."
        raise DataFileError(msg)
    if baseline is not None and baseline >= first:
        msg = f"{where}: baseline_year {baseline} must precede the period {first}–{last}."
        raise DataFileError(msg)
    return tuple(range(first, last + 1)), baseline


def _relative(base: Path, name: object, field: str, where: str) -> Path:
    if not isinstance(name, str) or not name:
        msg = f"{where}: {field} must be a file name relative to the plan file, got {name!r}."
        raise DataFileError(msg)
    return (base / name).resolve()


@functools.lru_cache(maxsize=8)
def _read_plan(path: Path, _stamp: tuple[int, int]) -> Plan:
    where = repr(str(path))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        msg = (f"Plan file {where} not found; give an existing plan file (format {PLAN_FORMAT}, "
               "see docs/targets.md) or leave --plan out for the embedded Cixi plan.")
        raise DataFileError(msg) from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        msg = f"Plan file {where} is not valid UTF-8 JSON: {err}"
        raise DataFileError(msg) from err
    if not isinstance(raw, dict) or not isinstance(raw.get("targets", []), list):
        msg = f"{where} must be a JSON object with a 'targets' list (format {PLAN_FORMAT})."
        raise DataFileError(msg)
    if raw.get("format") != PLAN_FORMAT:
        msg = (f"{where}: format {raw.get('format')!r} is not {PLAN_FORMAT!r}; add "
               f"\"format\": \"{PLAN_FORMAT}\" (see docs/targets.md).")
        raise DataFileError(msg)
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        msg = f"{where}: title is missing; give the plan's title as printed."
        raise DataFileError(msg)
    period, baseline = _period(raw, where)
    table_years = ((baseline,) if baseline is not None else ()) + period
    text = None
    if raw.get("text_file") is not None:
        text_path = _relative(path.parent, raw["text_file"], "text_file", where)
        try:
            text = text_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            msg = f"{where}: text_file {str(text_path)!r} cannot be read as UTF-8 text: {err}"
            raise DataFileError(msg) from err
    ind = raw.get("indicators")
    if ind is None:
        ind = []
    if isinstance(ind, str):
        indicators = _indicator_csv(_relative(path.parent, ind, "indicators", where),
                                    table_years)
    elif isinstance(ind, list):
        indicators = _indicator_list(ind, table_years, where)
    else:
        msg = f"{where}: indicators must be a CSV file name or a list of objects, got {ind!r}."
        raise DataFileError(msg)
    targets: dict[str, SpatialTarget] = {}
    for pos, item in enumerate(raw.get("targets", [])):
        spec = _spatial_target(item, pos, period, where)
        if spec.key in targets:
            msg = f"{where}: target key {spec.key!r} appears more than once."
            raise DataFileError(msg)
        targets[spec.key] = spec
    ranking, ranking_reading = None, ""
    if raw.get("ranking") is not None:
        try:
            ranking = Clause(str(raw["ranking"]["location"]), str(raw["ranking"]["text"]))
            ranking_reading = str(raw["ranking"].get("reading", ""))
        except (KeyError, TypeError, AttributeError) as err:
            msg = f"{where}: ranking must be an object with location, text and reading."
            raise DataFileError(msg) from err
    if text is not None:
        quotes = [(f"targets[{t.key!r}].clauses[{i}]", c) for t in targets.values()
                  for i, c in enumerate(t.clauses)]
        quotes += [(f"targets[{t.key!r}].years[{y}].text", Clause("", tg.text))
                   for t in targets.values() for y, tg in t.years.items() if tg is not None]
        if ranking is not None:
            quotes.append(("ranking", ranking))
        _check_quotes(text, quotes, where)
    region = raw.get("region") or {}
    return Plan(title=title.strip(), publisher=str(raw.get("publisher", "")),
                published=str(raw.get("published", "")), period=period, baseline_year=baseline,
                indicators=indicators, targets=targets,
                region_code=str(region.get("code", "")), region_name=str(region.get("name_zh", "")),
                ranking=ranking, ranking_reading=ranking_reading, path=path,
                text_file=raw.get("text_file"), text=text)


def load_plan(path: str | Path | None = None) -> Plan:
    """Load and validate a plan file (format ``qyx-plan/1``).

    Parameters
    ----------
    path
        The plan's JSON file; default the embedded Cixi plan (:func:`default_plan_path`).
        ``indicators`` and ``text_file`` named in it are read relative to its folder.

    Raises
    ------
    DataFileError, ColumnError
        If the file (or a file it names) is missing, malformed, or quotes a clause that is not
        in its text; the message names the field and the fix.

    Examples
    --------
    >>> plan = load_plan()
    >>> plan.period, plan.target_for("canteen", 2027).text
    ((2023, 2024, 2025, 2026, 2027), '95%以上')
    """
    target = Path(path) if path is not None else default_plan_path()
    resolved = target.resolve()
    try:
        stat = resolved.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = (0, 0)
    return _read_plan(resolved, stamp)
