"""The plan's targets: the embedded Cixi plan, or any plan file, asked by service and year.

Source: the embedded pack's 七优享 implementation plan (2023—2027), kept verbatim in
``data/targets/plan_2023-2027.txt`` and expressed as the plan file ``data/targets/plan.json``
(format ``qyx-plan/1``, read by :func:`qyx_geo.plan.load_plan`; docs/targets.md describes it).
The plan file names the indicator table ``indicators.csv``: number, domain (七优享 area), name,
unit, the 2022 baseline and the 2023–2027 values exactly as printed (``<3.5``, ``≥32``,
``全覆盖``, ``82%``), and parsed ``op_YYYY`` / ``value_YYYY`` columns.

The functions here answer for the embedded plan unless ``plan=`` gives another
:class:`~qyx_geo.plan.Plan`; :func:`target_for` answers "what is the target for service S in
year Y" and raises :class:`~qyx_geo._errors.NoTargetError` where the plan sets none.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qyx_geo.plan import (
    TARGET_KINDS,
    Clause,
    Plan,
    SpatialTarget,
    Target,
    TargetKind,
    YearTargets,
    load_plan,
    parse_value,
)
from qyx_geo.services import Service

__all__ = [
    "BASELINE_YEAR",
    "PLAN_YEARS",
    "TARGET_KINDS",
    "Clause",
    "Plan",
    "SpatialTarget",
    "Target",
    "TargetKind",
    "YearTargets",
    "load_indicators",
    "load_plan",
    "load_spatial_targets",
    "parse_value",
    "target_for",
    "targets_for_year",
]

#: Years of the embedded plan's period and the baseline year of its table.
PLAN_YEARS: tuple[int, ...] = (2023, 2024, 2025, 2026, 2027)
BASELINE_YEAR = 2022


def __getattr__(name: str) -> str:
    # PLAN_TITLE / PLAN_PUBLISHED: the embedded plan's title and date, read from its plan file
    # (no county is named in the code)
    if name in ("PLAN_TITLE", "PLAN_PUBLISHED"):
        from qyx_geo.plan import load_plan

        plan = load_plan()
        return str(plan.title if name == "PLAN_TITLE" else plan.published)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def _plan(plan: Plan | str | Path | None) -> Plan:
    return plan if isinstance(plan, Plan) else load_plan(plan)


def load_indicators(path: str | Path | None = None) -> pd.DataFrame:
    """Load a plan's indicator table (default: the embedded plan's 21 indicators).

    Parameters
    ----------
    path
        A plan file (``.json``), or an indicator CSV in the ``indicators.csv`` layout of the
        embedded plan's years (2022–2027).

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
    if path is not None and Path(path).suffix.lower() == ".csv":
        from qyx_geo.plan import _indicator_csv

        return _indicator_csv(Path(path).resolve(), (BASELINE_YEAR, *PLAN_YEARS)).copy()
    return load_plan(path).indicators.copy()


def load_spatial_targets(path: str | Path | None = None) -> dict[str, SpatialTarget]:
    """Load the spatial targets of a plan file (default: the embedded plan), keyed by target key.

    Examples
    --------
    >>> t = load_spatial_targets()["meal_aid_coverage"]
    >>> t.clauses[0].location, t.years[2027].value, t.years[2025]
    ('二、(五)3', 0.95, None)
    """
    return dict(load_plan(path).targets)


def target_for(service: str | Service, year: int, *, kind: TargetKind = "coverage",
               plan: Plan | str | Path | None = None) -> Target:
    """Return the plan's target for ``service`` in ``year``.

    Parameters
    ----------
    service
        Service id (``nursery``, ``canteen``, ``clinic``, ``sports``, ...) or a :class:`Service`.
    year
        A year of the plan period (2023–2027 for the embedded plan).
    kind
        ``coverage`` (share of villages/communities), ``capacity`` (places per 1,000 within
        reach) or one of the facility kinds (``presence``, ``attribute_share``, ``per_1000``).
    plan
        A loaded :class:`~qyx_geo.plan.Plan` or a plan file (default: the embedded plan).

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
    return _plan(plan).target_for(service, year, kind=kind)


def targets_for_year(year: int, *, plan: Plan | str | Path | None = None) -> YearTargets:
    """Return the indicator table and every spatial target of a plan for ``year``.

    ``year`` may also be the baseline year (indicators only; spatial targets are all ``None``).

    Raises
    ------
    NoTargetError
        If ``year`` is outside the plan's baseline and period (2022–2027 for the embedded plan).
    """
    return _plan(plan).for_year(year)
