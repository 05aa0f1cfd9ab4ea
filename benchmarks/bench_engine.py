"""Benchmark: qyx_geo's engine against the usual ways of finding the nearest facility.

Same graph, same facilities, same question for every method: the walking distance from every
network node to its nearest facility within the cutoff (15 minutes at 4 km/h = 1,000 m).

Methods
-------
engine      qyx_geo.engine: build_arrays (graph -> CSR, once), edge snapping, one multi-source
            scipy Dijkstra pass (``nearest_facility_nodes``); plus demand points
            (``nearest_facility``) for the engine alone.
ego_graph   the osmnx example method: ``nx.ego_graph(G, node, radius=cutoff, distance="length")``
            per facility, uniting the covered nodes (it yields no distances and no nearest
            facility, so its time is a lower bound). Timed on a sample of facilities and
            extrapolated linearly to all of them.
networkx    ``nx.multi_source_dijkstra_path_length(graph, facility_nodes, cutoff=cutoff)``.
pandana     ``pandana.Network`` (contraction-hierarchy preprocessing) + ``precompute`` +
            ``set_pois`` + ``nearest_pois`` (query), i.e. preprocessing included.

Cases: the embedded Cixi network (``qyx_geo.network.load_network("default")``, skipped with a note
while it is missing) and a synthetic jittered grid of ``--grid-side``² nodes (1,000,000 by default).

Peak memory is the process's resident high-water mark, reset before each phase through
``/proc/self/clear_refs`` (Linux) so that the engine's figure does not include networkx's graph.

Run: ``.venv/bin/python benchmarks/bench_engine.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import gc
import platform
import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from qyx_geo.engine import NetworkArrays, build_arrays, nearest_facility, nearest_facility_nodes
from qyx_geo.schema import METRIC_CRS

CUTOFF_M = 1000.0  # 15 minutes at 4 km/h (GB 50180-2018)


# ------------------------------------------------------------------------------ measurement

def _peak_mib() -> float:
    """Resident high-water mark of this process (since the last reset), MiB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mib() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Any:
        t0 = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t0
        print(f"  {name:<46s} {self.seconds[name]:9.3f} s", flush=True)


# ------------------------------------------------------------------------------ inputs

def synthetic_grid(side: int, *, spacing_m: float = 80.0, drop: float = 0.12,
                   seed: int = 7) -> dict[str, np.ndarray]:
    """Jittered grid street network: ``side``² nodes, ~12 % of streets missing, bent lengths."""
    rng = np.random.default_rng(seed)
    i, j = np.divmod(np.arange(side * side), side)
    x = 500_000.0 + i * spacing_m + rng.uniform(-15, 15, i.size)
    y = 3_300_000.0 + j * spacing_m + rng.uniform(-15, 15, i.size)
    node = np.arange(side * side).reshape(side, side)
    u = np.concatenate([node[:-1, :].ravel(), node[:, :-1].ravel()])
    v = np.concatenate([node[1:, :].ravel(), node[:, 1:].ravel()])
    keep = rng.random(u.size) >= drop
    u, v = u[keep], v[keep]
    length = np.hypot(x[u] - x[v], y[u] - y[v]) * rng.uniform(1.0, 1.15, u.size)
    return {"x": x, "y": y, "u": u, "v": v, "length": length}


def grid_graph(arrays: dict[str, np.ndarray]) -> nx.MultiDiGraph:
    """The grid as an osmnx-style MultiDiGraph (both directions), for the graph-based methods."""
    graph = nx.MultiDiGraph(crs=METRIC_CRS)
    graph.add_nodes_from((int(k), {"x": float(a), "y": float(b)})
                     for k, (a, b) in enumerate(zip(arrays["x"], arrays["y"], strict=True)))
    u, v, length = arrays["u"].tolist(), arrays["v"].tolist(), arrays["length"].tolist()
    graph.add_edges_from((a, b, {"length": w}) for a, b, w in zip(u, v, length, strict=True))
    graph.add_edges_from((b, a, {"length": w}) for a, b, w in zip(u, v, length, strict=True))
    return graph


def facility_nodes(net: NetworkArrays, count: int, seed: int = 11) -> np.ndarray:
    """Facilities placed on connected network nodes: every method starts from the same places.

    (A facility on an isolated node would walk to the nearest street in the engine but reach
    nothing in the node-based methods.)
    """
    rng = np.random.default_rng(seed)
    connected = np.flatnonzero(np.diff(net.adjacency.indptr) > 0)
    return np.sort(rng.choice(connected, size=min(count, connected.size), replace=False))


def as_points(net: NetworkArrays, positions: np.ndarray, prefix: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        geometry=shapely.points(net.x[positions], net.y[positions]),
        index=pd.Index([f"{prefix}{k}" for k in range(positions.size)], name="id"), crs=net.crs)


def demand_points(net: NetworkArrays, count: int, seed: int = 13) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    at = rng.integers(0, net.n_nodes, count)
    return gpd.GeoDataFrame(
        geometry=shapely.points(net.x[at] + rng.uniform(-60, 60, count),
                                net.y[at] + rng.uniform(-60, 60, count)),
        index=pd.Index([f"d{k}" for k in range(count)], name="id"), crs=net.crs)


# ------------------------------------------------------------------------------ methods

def run_engine(net: NetworkArrays, fac: gpd.GeoDataFrame, demand: gpd.GeoDataFrame,
               timer: Timer, repeat: int = 1) -> pd.Series:
    with timer("engine: spatial index of edges (once)"):
        net.edge_tree  # noqa: B018 - built lazily, cached with the arrays
    with timer("engine: snap + multi-source dijkstra (nodes)"):
        nodes = nearest_facility_nodes(net, fac, cutoff_m=CUTOFF_M)
    if repeat > 1:  # the same query again, as a planner's what-if variants run it
        spent = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            nearest_facility_nodes(net, fac, cutoff_m=CUTOFF_M)
            spent.append(time.perf_counter() - t0)
        timer.seconds["engine: query, median of repeats"] = float(np.median(spent))
        print(f"  {'engine: query again ×' + str(repeat) + ' (median / best)':<46s} "
              f"{np.median(spent):9.3f} s / {min(spent):.3f} s", flush=True)
    with timer(f"engine: nearest_facility, {len(demand):,} demand points"):
        nearest_facility(net, fac, demand, cutoff_minutes=15)
    return nodes["dist_m"]


def run_networkx(graph: nx.MultiDiGraph, sources: list[Any], timer: Timer) -> dict[Any, float]:
    with timer("networkx: multi_source_dijkstra_path_length"):
        return nx.multi_source_dijkstra_path_length(graph, set(sources), cutoff=CUTOFF_M,
                                                    weight="length")


def run_ego(graph: nx.MultiDiGraph, sources: list[Any], sample: int, timer: Timer,
            repeat: int = 1) -> float:
    """Time ego_graph on ``sample`` facilities; return the extrapolated time for all of them.

    With ``repeat`` > 1 the sample is timed that many times and the median taken.
    """
    rng = np.random.default_rng(3)
    picked = rng.choice(len(sources), size=min(sample, len(sources)), replace=False)
    covered: set[Any] = set()
    runs = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        for k in picked:
            # as in the osmnx isochrone example: the subgraph within the radius, per facility.
            # It gives the covered nodes only (no distances, no nearest facility): a lower bound.
            sub = nx.ego_graph(graph, sources[int(k)], radius=CUTOFF_M, distance="length")
            covered.update(sub.nodes)
        runs.append(time.perf_counter() - t0)
    spent = float(np.median(runs))
    total = spent * len(sources) / len(picked)
    print(f"  {'ego_graph: ' + str(len(picked)) + ' facilities timed':<46s} {spent:9.3f} s"
          f"  -> {total:.1f} s extrapolated to {len(sources):,}", flush=True)
    timer.seconds["ego_graph (extrapolated)"] = total
    return total


def run_pandana(net: NetworkArrays, fac_pos: np.ndarray, timer: Timer) -> pd.Series | None:
    try:
        import pandana
    except ImportError:
        print("  pandana: not installed, skipped")
        return None
    nodes = pd.DataFrame({"x": net.x, "y": net.y}, index=np.arange(net.n_nodes))
    edges = pd.DataFrame({"from": net.edge_u, "to": net.edge_v, "length": net.edge_length_m})
    edges = edges[edges["from"] != edges["to"]]
    with timer("pandana: Network() preprocessing (CH)"):
        pnet = pandana.Network(nodes["x"], nodes["y"], edges["from"], edges["to"],
                               edges[["length"]], twoway=True)
    with timer("pandana: precompute(cutoff)"):
        pnet.precompute(CUTOFF_M)
    with timer("pandana: set_pois + nearest_pois (query)"):
        pnet.set_pois("fac", CUTOFF_M, 1, pd.Series(net.x[fac_pos]), pd.Series(net.y[fac_pos]))
        out = pnet.nearest_pois(CUTOFF_M, "fac", num_pois=1)
    return out[1]


# ------------------------------------------------------------------------------ cases

def ratios(sec: dict[str, float]) -> None:
    eng_query = sec["engine: snap + multi-source dijkstra (nodes)"]
    eng_total = eng_query + sec.get("engine: build arrays", 0.0) + \
        sec["engine: spatial index of edges (once)"]
    print(f"  engine, query: {eng_query:.3f} s; with preprocessing (arrays + index): "
          f"{eng_total:.3f} s")
    pairs: list[tuple[str, float, float]] = []
    if "ego_graph (extrapolated)" in sec:
        pairs.append(("ego_graph per facility / engine query", sec["ego_graph (extrapolated)"],
                      eng_query))
    if "networkx: multi_source_dijkstra_path_length" in sec:
        pairs.append(("networkx multi-source / engine query",
                      sec["networkx: multi_source_dijkstra_path_length"], eng_query))
    pre = [k for k in sec if k.startswith("pandana")]
    if pre:
        pan = sum(sec[k] for k in pre)
        pairs.append(("pandana preprocessing+query / engine with preprocessing", pan, eng_total))
        pairs.append(("pandana query only / engine query",
                      sec["pandana: set_pois + nearest_pois (query)"], eng_query))
    if "engine: query, median of repeats" in sec and "ego_graph (extrapolated)" in sec:
        pairs.append(("ego_graph / engine query, median of repeats",
                      sec["ego_graph (extrapolated)"], sec["engine: query, median of repeats"]))
    for name, a, b in pairs:
        print(f"  ratio {name:<56s} {a / b:8.1f}x")


def compare(engine: pd.Series, other: dict[Any, float] | pd.Series, name: str,
            ids: np.ndarray) -> None:
    if isinstance(other, pd.Series):
        ref = other.to_numpy(dtype=float)
        ref = np.where(ref >= CUTOFF_M, np.inf, ref)
        # pandana stores distances as float32 and reports "none" as the search radius
        got = engine.to_numpy()
        both = np.isfinite(ref) & np.isfinite(got)
        diff = float(np.max(np.abs(ref[both] - got[both]))) if both.any() else 0.0
        print(f"  check vs {name}: max |diff| {diff:.3g} m on {int(both.sum()):,} nodes")
        return
    pos = pd.Index(ids).get_indexer(list(other))
    ref = np.fromiter(other.values(), float, len(other))
    got = engine.to_numpy()[pos]
    reached = int(np.isfinite(engine.to_numpy()).sum())
    diff = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    print(f"  check vs {name}: max |diff| {diff:.3g} m; nodes reached {reached:,} "
          f"vs {len(other):,}")


def case_grid(args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== synthetic grid {args.grid_side}x{args.grid_side} "
          f"({args.grid_side**2:,} nodes), {args.grid_facilities:,} facilities ==")
    timer = Timer()
    _reset_peak()
    arrays = synthetic_grid(args.grid_side)
    with timer("engine: build arrays"):
        net = NetworkArrays.from_edges(arrays["x"], arrays["y"], arrays["u"], arrays["v"],
                                       arrays["length"], crs=METRIC_CRS)
    fac_pos = facility_nodes(net, args.grid_facilities)
    fac = as_points(net, fac_pos, "f")
    demand = demand_points(net, args.demand)
    dist = run_engine(net, fac, demand, timer, repeat=args.repeat)
    engine_peak = _peak_mib()
    print(f"  engine peak resident memory (whole process): {engine_peak:,.0f} MiB "
          f"({net.n_nodes:,} nodes, {net.n_edges:,} edges)")
    result: dict[str, Any] = {"case": "grid", "nodes": net.n_nodes, "edges": net.n_edges,
                              "facilities": len(fac), "engine_peak_mib": engine_peak}
    if not args.engine_only:
        t0 = time.perf_counter()
        graph = grid_graph(arrays)
        print(f"  (networkx graph built in {time.perf_counter() - t0:.1f} s, "
              f"RSS now {_rss_mib():,.0f} MiB)")
        del arrays
        with timer("engine: build_arrays(graph) from the nx graph"):
            build_arrays(graph)
        sources = [int(k) for k in fac_pos]
        ref = run_networkx(graph, sources, timer)
        compare(dist, ref, "networkx", net.node_ids)
        del ref
        run_ego(graph, sources, args.ego_sample, timer, repeat=args.repeat)
        del graph
        gc.collect()
        if not args.skip_pandana:
            pan = run_pandana(net, fac_pos, timer)
            if pan is not None:
                compare(dist, pan, "pandana", net.node_ids)
    ratios(timer.seconds)
    result["seconds"] = dict(timer.seconds)
    return result


def case_cixi(args: argparse.Namespace) -> dict[str, Any] | None:
    print("\n== embedded Cixi network (load_network('default')) ==")
    try:
        from qyx_geo.network import load_network
        graph = load_network("default")
    except Exception as err:  # report any reason the case cannot run
        print(f"  skipped: the embedded network is not available ({type(err).__name__}: {err})")
        return None
    timer = Timer()
    _reset_peak()
    with timer("engine: build arrays"):
        net = build_arrays(graph)
    fac_pos = facility_nodes(net, args.cixi_facilities)
    fac = as_points(net, fac_pos, "f")
    demand = demand_points(net, args.demand)
    dist = run_engine(net, fac, demand, timer, repeat=args.repeat)
    print(f"  {net.n_nodes:,} nodes, {net.n_edges:,} edges, {len(fac):,} facilities; "
          f"peak resident memory {_peak_mib():,.0f} MiB")
    if not args.engine_only:
        sources = [net.node_ids[k] for k in fac_pos]
        ref = run_networkx(graph, sources, timer)
        compare(dist, ref, "networkx", net.node_ids)
        run_ego(graph, sources, args.ego_sample, timer, repeat=args.repeat)
        if not args.skip_pandana:
            pan = run_pandana(net, fac_pos, timer)
            if pan is not None:
                compare(dist, pan, "pandana", net.node_ids)
    ratios(timer.seconds)
    return {"case": "cixi", "nodes": net.n_nodes, "edges": net.n_edges,
            "seconds": dict(timer.seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="cixi,grid", help="comma-separated: cixi, grid")
    parser.add_argument("--grid-side", type=int, default=1000, help="grid side (nodes = side²)")
    parser.add_argument("--grid-facilities", type=int, default=2000)
    parser.add_argument("--cixi-facilities", type=int, default=300)
    parser.add_argument("--demand", type=int, default=100_000, help="demand points (engine)")
    parser.add_argument("--ego-sample", type=int, default=40,
                        help="facilities timed with ego_graph (then extrapolated)")
    parser.add_argument("--skip-pandana", action="store_true")
    parser.add_argument("--repeat", type=int, default=1,
                        help="also time the engine query and the ego_graph sample N more "
                             "times and report the medians (default 1: first run only)")
    parser.add_argument("--engine-only", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"python {sys.version.split()[0]}; cutoff {CUTOFF_M:g} m")
    runners: dict[str, Callable[[argparse.Namespace], Any]] = {"cixi": case_cixi,
                                                               "grid": case_grid}
    for name in args.cases.split(","):
        runners[name.strip()](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
