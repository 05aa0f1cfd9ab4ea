"""qyx_geo: audits of Cixi's 15-minute public service circle (15分钟公共服务圈).

Facility layers are snapped to a walking street network, network travel times give 15-minute
catchments, and every village/community is scored against the 七优享 plan's targets.

The public surface is re-exported here lazily (PEP 562): ``import qyx_geo`` stays cheap and has
no side effects; ``qyx_geo.run_audit`` imports :mod:`qyx_geo.audit` on first use.

Examples
--------
>>> import qyx_geo
>>> ds = qyx_geo.load_dataset()
>>> len(ds.units), int(ds.demand["pop"].sum())
(406, 1829488)
>>> qyx_geo.target_for("canteen", 2027).value
0.95
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Settings": "settings",
    "SERVICES": "services",
    "get_service": "services",
    "load_dataset": "dataset",
    "Dataset": "dataset",
    "load_units": "units",
    "load_townships": "units",
    "load_demand": "units",
    "load_outline": "units",
    "load_facilities": "facilities",
    "validate_facilities": "facilities",
    "load_network": "network",
    "fetch_network": "network",
    "network_summary": "network",
    "build_arrays": "engine",
    "snap_points": "engine",
    "nearest_facility": "engine",
    "catchment_matrix": "engine",
    "two_step_fca": "engine",
    "isochrones": "isochrones",
    "load_plan": "plan",
    "load_standard": "standards",
    "score_standard": "standards",
    "Plan": "plan",
    "target_for": "targets",
    "targets_for_year": "targets",
    "load_indicators": "targets",
    "run_audit": "audit",
    "AuditResult": "audit",
    "ServiceAudit": "audit",
    "write_report": "report",
    "service_map": "maps",
    "overview_map": "maps",
    "write_audit_maps": "maps",
    "save_map": "maps",
    "import_register": "intake",
    "write_intake": "intake",
    "to_wgs84": "crs",
    "propose_sites": "siting",
    "add_facilities": "scenario",
    "close_facilities": "scenario",
    "compare_audits": "scenario",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        msg = f"module 'qyx_geo' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"qyx_geo.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
