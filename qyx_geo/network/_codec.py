"""A processed street graph as plain arrays for the cache (:mod:`qyx_geo._cache`), and back.

No pickle: node ids and the edge table are integer arrays; every node or edge attribute is a
column stored by value type — floats, booleans and integers as numpy arrays, strings as codes
into a table of distinct values (so a loaded graph shares one object per distinct tag value,
as :func:`qyx_geo.network.load_network` leaves it), geometries as WKB, and the rare remaining
values (osmnx's lists after simplification) as JSON text. Every part carries the positions of
the rows that have it, so a missing attribute stays missing. Only graphs whose ids are integers
and whose attributes are such values are encoded; anything else returns ``None`` and is simply
not cached.
"""

# ruff: noqa: N803, N806  (G for a graph, as in osmnx and networkx)
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from qyx_geo._cache import from_text, pack_bytes, to_text, unpack_bytes

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["graph_from_arrays", "graph_to_arrays"]

Arrays = dict[str, npt.NDArray[Any]]
_SCALARS = (str, int, float, bool, type(None))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _kind(value: object) -> str | None:
    """Return the storage kind of one value, or ``None`` if it cannot be stored exactly."""
    if value is None:
        return "z"
    if isinstance(value, bool):
        return "b"
    if _is_int(value):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, BaseGeometry):
        return "g"
    if isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
        return "j"
    return None


def _encode_table(prefix: str, rows: Sequence[dict[str, Any]], out: Arrays) -> bool:
    """Store the attribute dicts ``rows`` as typed columns under ``prefix``; False if impossible."""
    parts: dict[tuple[str, str], tuple[list[int], list[Any]]] = {}
    for i, row in enumerate(rows):
        for name, value in row.items():
            kind = _kind(value)
            if kind is None or not isinstance(name, str):
                return False
            idx, vals = parts.setdefault((name, kind), ([], []))
            idx.append(i)
            vals.append(value)
    names: list[list[str]] = []
    for n, ((name, kind), (idx, vals)) in enumerate(sorted(parts.items())):
        key = f"{prefix}{n}"
        names.append([name, kind])
        out[f"{key}_rows"] = np.array(idx, dtype=np.int64)
        if kind == "s":
            table: dict[str, int] = {}
            out[f"{key}_codes"] = np.array([table.setdefault(s, len(table)) for s in vals],
                                           dtype=np.int64)
            out[f"{key}_values"] = to_text(json.dumps(list(table), ensure_ascii=False))
        elif kind == "g":
            out[f"{key}_wkb"], out[f"{key}_offsets"] = pack_bytes(
                shapely.to_wkb(np.array(vals, dtype=object)).tolist())
        elif kind == "j":
            out[f"{key}_values"] = to_text(json.dumps(vals, ensure_ascii=False))
        elif kind != "z":  # None needs no values, only its rows
            out[f"{key}_values"] = np.array(vals, dtype={"b": bool, "i": np.int64,
                                                         "f": np.float64}[kind])
    out[f"{prefix}columns"] = to_text(json.dumps(names, ensure_ascii=False))
    return True


def _decode_table(prefix: str, n_rows: int, a: Arrays) -> list[dict[str, Any]]:
    """Inverse of :func:`_encode_table`."""
    rows: list[dict[str, Any]] = [{} for _ in range(n_rows)]
    for n, (name, kind) in enumerate(json.loads(from_text(a[f"{prefix}columns"]))):
        key = f"{prefix}{n}"
        idx = a[f"{key}_rows"].tolist()
        if kind == "s":
            uniques = json.loads(from_text(a[f"{key}_values"]))
            vals = [uniques[c] for c in a[f"{key}_codes"].tolist()]
        elif kind == "g":
            vals = shapely.from_wkb(unpack_bytes(a[f"{key}_wkb"], a[f"{key}_offsets"])).tolist()
        elif kind == "j":
            vals = json.loads(from_text(a[f"{key}_values"]))
        elif kind in ("b", "i", "f"):
            vals = a[f"{key}_values"].tolist()
        elif kind == "z":
            vals = [None] * len(idx)
        else:
            msg = f"unknown column kind {kind!r}"
            raise ValueError(msg)
        if len(idx) != len(vals):
            msg = f"column {name!r}: {len(idx)} rows but {len(vals)} values"
            raise ValueError(msg)
        for i, value in zip(idx, vals, strict=True):
            rows[i][name] = value
    return rows


def graph_to_arrays(G: nx.MultiDiGraph) -> Arrays | None:
    """Return the arrays of ``G``, or ``None`` if an id or attribute cannot be stored exactly."""
    nodes = list(G.nodes)
    edges = list(G.edges(keys=True, data=True))
    if not all(_is_int(n) for n in nodes) or not all(_is_int(k) for _, _, k, _ in edges):
        return None
    if not all(_kind(v) in ("z", "b", "i", "f", "s", "j") for v in G.graph.values()):
        return None
    pos = {n: i for i, n in enumerate(nodes)}
    out: Arrays = {
        "graph": to_text(json.dumps(G.graph, ensure_ascii=False)),
        "node_ids": np.array(nodes, dtype=np.int64),
        "edge_u": np.array([pos[u] for u, _, _, _ in edges], dtype=np.int64),
        "edge_v": np.array([pos[v] for _, v, _, _ in edges], dtype=np.int64),
        "edge_k": np.array([k for _, _, k, _ in edges], dtype=np.int64),
    }
    if not _encode_table("n", [d for _, d in G.nodes(data=True)], out):
        return None
    if not _encode_table("e", [d for *_, d in edges], out):
        return None
    return out


def graph_from_arrays(a: Arrays) -> nx.MultiDiGraph:
    """Rebuild the graph written by :func:`graph_to_arrays` (raises on inconsistent arrays)."""
    node_ids = a["node_ids"].tolist()
    u, v, k = (a[f"edge_{c}"].tolist() for c in "uvk")
    if not len(u) == len(v) == len(k):
        msg = "edge arrays of different lengths"
        raise ValueError(msg)
    import networkx as nx

    G = nx.MultiDiGraph(**json.loads(from_text(a["graph"])))
    G.add_nodes_from(zip(node_ids, _decode_table("n", len(node_ids), a), strict=True))
    G.add_edges_from((node_ids[i], node_ids[j], key, d)
                     for i, j, key, d in zip(u, v, k, _decode_table("e", len(u), a),
                                             strict=True))
    return G
