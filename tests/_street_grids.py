"""Small street networks in metres for isochrone and surface tests (EPSG:4549, near Cixi).

Coordinates are given relative to ``(X0, Y0)`` so that expected lengths, areas and times can
be computed by hand in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping

import geopandas as gpd
import networkx as nx
import pandas as pd
import shapely

from qyx_geo.engine import NetworkArrays, build_arrays

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_350_000.0


def net_of(nodes: Mapping[Hashable, tuple[float, float]],
           edges: Iterable[tuple[Hashable, Hashable]]) -> NetworkArrays:
    """Engine arrays of straight streets between ``nodes`` (metres from ``(X0, Y0)``)."""
    G = nx.MultiDiGraph(crs=CRS)
    for n, (x, y) in nodes.items():
        G.add_node(n, x=X0 + x, y=Y0 + y)
    for a, b in edges:
        (xa, ya), (xb, yb) = nodes[a], nodes[b]
        # both directions, as a walking graph has them (the arrays keep one row per street)
        G.add_edge(a, b, length=math.hypot(xb - xa, yb - ya))
        G.add_edge(b, a, length=math.hypot(xb - xa, yb - ya))
    return build_arrays(G)


def fac(xy: dict[str, tuple[float, float]], crs: str = CRS) -> gpd.GeoDataFrame:
    """Facilities at ``xy`` (metres from ``(X0, Y0)``), indexed by their ids."""
    return gpd.GeoDataFrame(geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy.values()],
                            index=pd.Index(list(xy), name="id"), crs=crs)


def city_net() -> NetworkArrays:
    """A 12 x 12 grid of 100 m blocks with a few streets missing and a diagonal avenue."""
    nodes = {(i, j): (100.0 * i, 100.0 * j) for i in range(12) for j in range(12)}
    edges = [((i, j), (i + 1, j)) for i in range(11) for j in range(12) if (i * 7 + j) % 5]
    edges += [((i, j), (i, j + 1)) for i in range(12) for j in range(11) if (i + 3 * j) % 6]
    edges += [((i, i), (i + 1, i + 1)) for i in range(11)]
    return net_of(nodes, edges)
