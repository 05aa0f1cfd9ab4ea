"""The service registry: the one place that says what each facility layer serves and how.

The registry is data: ``qyx_geo/_data/services.json`` (format ``qyx-services/1``, docs/services.md).
Each entry names its facility layer, the demand group it serves (a population column of the
demand points), its default threshold and tiers in minutes, its capacity unit, its facility levels
and boolean attributes, the keys of the plan targets it prefers, and the plan/standard clauses
that apply to it. A new layer needs an entry there and a facility file, not code.

The file is read on first use (:func:`load_registry`), never at import.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from qyx_geo._errors import DataFileError, UnknownServiceError

__all__ = ["SERVICES", "Service", "default_service_ids", "get_service", "load_registry",
           "service_ids"]

REGISTRY_FORMAT = "qyx-services/1"
#: Service id -> :class:`Service`, in registry order (read on first access; see ``__getattr__``).
SERVICES: dict[str, Service]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Service:
    """One public service audited by qyx_geo.

    Attributes
    ----------
    id
        Short id used everywhere (``"nursery"``, ``"canteen"``, ...); also the facility layer name.
    label_zh, label_en
        Labels for maps, tables and reports (Chinese first).
    domain_zh
        The plan's domain (七优享) the service belongs to.
    demand_column
        Population column of the demand points that the service serves.
    threshold_minutes
        Default travel-time threshold of the 15-minute circle for this service.
    tiers_minutes
        Bands reported and drawn (e.g. 5/10/15).
    capacity_unit_zh
        Unit of the facilities' ``capacity`` column (托位, 座位, 床位) or ``None``.
    coverage_target
        Key of the plan's spatial target for the share of units covered, or ``None``.
    capacity_target
        Key of the plan's per-population capacity target (e.g. places per 1,000), or ``None``.
    unit_kinds
        Unit kinds the coverage target applies to (``None``: all units). Sports facilities are
        promised to every *administrative village* (行政村), so only 村委会 units are judged.
    levels
        Facility levels/types a layer may hold (``level`` column), township level first.
    attributes
        Boolean facility columns the layer carries (e.g. ``smart_terminal``).
    id_prefix
        Prefix of generated facility ids (``NUR-0001``).
    required
        Every dataset must hold this layer (the four original layers); others are optional.
    default
        Audited by ``qyx audit`` when ``--services`` is not given.
    clauses
        The plan/standard clauses that apply, for reports (e.g. ``七优享 二、(五)3``).
    colour
        Map colour of the layer's facilities and legend dots.
    """

    id: str
    label_zh: str
    label_en: str
    domain_zh: str
    demand_column: str
    threshold_minutes: float = 15.0
    tiers_minutes: tuple[float, ...] = (5.0, 10.0, 15.0)
    capacity_unit_zh: str | None = None
    coverage_target: str | None = None
    capacity_target: str | None = None
    unit_kinds: tuple[str, ...] | None = None
    levels: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    id_prefix: str = ""
    required: bool = False
    default: bool = True
    clauses: tuple[str, ...] = ()
    colour: str = "#333333"

    @property
    def target_keys(self) -> dict[str, str]:
        """Plan target keys this service prefers, by target kind (see :meth:`Plan.find`)."""
        keys = {"coverage": self.coverage_target, "capacity": self.capacity_target}
        return {k: v for k, v in keys.items() if v}

    @property
    def label(self) -> str:
        """Chinese label with the English one in brackets, for legends and headers."""
        return f"{self.label_zh} ({self.label_en})"


_TUPLES = ("tiers_minutes", "unit_kinds", "levels", "attributes", "clauses")
_FIELDS = {f.name for f in dataclasses.fields(Service)}


def _service(item: Any, pos: int, where: str) -> Service:
    if not isinstance(item, dict):
        msg = f"{where}: services[{pos}] must be an object, got {item!r}."
        raise DataFileError(msg)
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        msg = (f"{where}: services[{pos}] ({item.get('id')!r}) has unknown field(s) {unknown!r}; "
               f"known fields are {sorted(_FIELDS)!r}.")
        raise DataFileError(msg)
    fields: dict[str, Any] = {k: (tuple(v) if k in _TUPLES and v is not None else v)
                              for k, v in item.items()}
    for key in ("threshold_minutes",):
        if key in fields:
            fields[key] = float(fields[key])
    if "tiers_minutes" in fields:
        fields["tiers_minutes"] = tuple(float(t) for t in fields["tiers_minutes"])
    try:
        svc = Service(**fields)
    except TypeError as err:
        msg = (f"{where}: services[{pos}] lacks a required field ({err}); each service needs id, "
               "label_zh, label_en, domain_zh and demand_column.")
        raise DataFileError(msg) from err
    if not svc.id.isidentifier() or not svc.threshold_minutes > 0:
        msg = (f"{where}: services[{pos}] id {svc.id!r} must be a plain identifier and "
               f"threshold_minutes > 0 (got {svc.threshold_minutes!r}).")
        raise DataFileError(msg)
    return svc


@functools.cache
def _read(path: Path | None) -> dict[str, Service]:
    where = repr(str(path)) if path is not None else "qyx_geo/_data/services.json"
    try:
        text = (path.read_text(encoding="utf-8") if path is not None else
                resources.files("qyx_geo").joinpath("_data/services.json").read_text("utf-8"))
        raw = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        msg = f"Service registry {where} cannot be read as UTF-8 JSON: {err}"
        raise DataFileError(msg) from err
    if not isinstance(raw, dict) or raw.get("format") != REGISTRY_FORMAT:
        msg = f"{where} must be a JSON object with \"format\": \"{REGISTRY_FORMAT}\"."
        raise DataFileError(msg)
    out: dict[str, Service] = {}
    for pos, item in enumerate(raw.get("services", [])):
        svc = _service(item, pos, where)
        if svc.id in out:
            msg = f"{where}: service id {svc.id!r} appears more than once."
            raise DataFileError(msg)
        out[svc.id] = svc
    if not out:
        msg = f"{where} lists no service."
        raise DataFileError(msg)
    return out


def load_registry(path: str | Path | None = None) -> dict[str, Service]:
    """Read a service registry file (default: the package's ``_data/services.json``).

    Raises
    ------
    DataFileError
        If the file is unreadable or an entry is malformed (the message names it).

    Examples
    --------
    >>> reg = load_registry()
    >>> reg["canteen"].demand_column, reg["primary_school"].label_zh
    ('pop_60p', '小学')
    """
    return dict(_read(None if path is None else Path(path).resolve()))


def __getattr__(name: str) -> Any:
    # SERVICES is read on first access (PEP 562), so importing this module reads no file.
    if name == "SERVICES":
        return _read(None)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def service_ids() -> list[str]:
    """Return the registered service ids in registry order."""
    return list(_read(None))


def default_service_ids() -> list[str]:
    """Return the ids ``qyx audit`` audits by default (``default: true`` in the registry)."""
    return [s.id for s in _read(None).values() if s.default]


def get_service(service: str | Service) -> Service:
    """Return the registered :class:`Service` for ``service`` (an id or a Service)."""
    if isinstance(service, Service):
        return service
    registry = _read(None)
    try:
        return registry[service]
    except (KeyError, TypeError):
        msg = f"Unknown service {service!r}; registered services are {service_ids()!r}."
        raise UnknownServiceError(msg) from None
