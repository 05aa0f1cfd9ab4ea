"""qyx_geo: audits of Cixi's 15-minute public service circle (15分钟公共服务圈).

Facility layers are snapped to a walking street network, network travel times give 15-minute
catchments, and every village/community is scored against the 七优享 plan's targets.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
