"""The service registry: the one place that says what each facility layer serves and how.

Each service names its facility layer, the demand group it serves (a population column of the
demand points), its default threshold and tiers in minutes, its capacity field and unit, and the
keys of the plan targets it is judged against (see :mod:`qyx_geo.targets`).
"""

from __future__ import annotations

import dataclasses

from qyx_geo._errors import UnknownServiceError

__all__ = ["SERVICES", "Service", "get_service", "service_ids"]


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

    @property
    def target_keys(self) -> dict[str, str]:
        """Plan target keys this service prefers, by target kind (see :meth:`Plan.find`)."""
        keys = {"coverage": self.coverage_target, "capacity": self.capacity_target}
        return {k: v for k, v in keys.items() if v}

    @property
    def label(self) -> str:
        """Chinese label with the English one in brackets, for legends and headers."""
        return f"{self.label_zh} ({self.label_en})"


SERVICES: dict[str, Service] = {
    s.id: s
    for s in (
        Service(id="nursery", label_zh="托育", label_en="Nursery", domain_zh="幼有善育",
                demand_column="pop_0_3", capacity_unit_zh="托位",
                coverage_target="nursery_circle", capacity_target="nursery_places_per_1000"),
        Service(id="canteen", label_zh="老年助餐", label_en="Elderly canteen",
                domain_zh="老有康养", demand_column="pop_60p", capacity_unit_zh="座位",
                coverage_target="meal_aid_coverage"),
        Service(id="clinic", label_zh="医疗卫生", label_en="Clinic", domain_zh="病有良医",
                demand_column="pop", capacity_unit_zh="床位", coverage_target="clinic_circle"),
        Service(id="sports", label_zh="体育健身", label_en="Sports ground",
                domain_zh="病有良医", demand_column="pop", coverage_target="village_sports",
                unit_kinds=("村委会",)),
    )
}


def service_ids() -> list[str]:
    """Return the registered service ids in registry order."""
    return list(SERVICES)


def get_service(service: str | Service) -> Service:
    """Return the registered :class:`Service` for ``service`` (an id or a Service)."""
    if isinstance(service, Service):
        return service
    try:
        return SERVICES[service]
    except (KeyError, TypeError):
        msg = f"Unknown service {service!r}; registered services are {service_ids()!r}."
        raise UnknownServiceError(msg) from None
