"""Cache formats: the data-only ``.npz`` graph cache against pickle, in one process.

Loads the embedded network once (from the cache if warm), then times, on the same graph:

npz_store / npz_load   ``qyx_geo._cache`` entry of the graph (``network._codec``), digest checked
pickle_dump / load     ``pickle`` at the highest protocol, cyclic GC paused (the former cache)
engine_arrays          ``qyx_geo.audit.network_arrays("default")`` from its cache

Run: ``python benchmarks/bench_cache.py`` (uses ``QYX_CACHE_DIR``).
"""

# ruff: noqa: N806
from __future__ import annotations

import gc
import pickle
import tempfile
import time
from pathlib import Path

from qyx_geo import _cache
from qyx_geo import network as qn
from qyx_geo.audit import network_arrays
from qyx_geo.network._codec import graph_from_arrays, graph_to_arrays


def _best(fn, repeat=2):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    G = qn.load_network("default")
    print(f"graph: {len(G):,} nodes, {G.number_of_edges():,} edges")
    with tempfile.TemporaryDirectory() as tmp:
        npz, pkl = Path(tmp) / "g.npz", Path(tmp) / "g.pickle"

        def npz_store():
            return _cache.store(npz, "k", graph_to_arrays(G))

        def npz_load():
            return qn._decode(_cache.load(npz, "k"))

        def pickle_dump():
            with pkl.open("wb") as fh:
                pickle.dump(G, fh, protocol=pickle.HIGHEST_PROTOCOL)

        def pickle_load():
            gc.disable()
            try:
                with pkl.open("rb") as fh:
                    return pickle.load(fh)
            finally:
                gc.enable()

        rows = [("npz store", _best(npz_store)[0]), ("pickle dump", _best(pickle_dump)[0])]
        t_npz, H = _best(npz_load)
        t_pkl, _ = _best(pickle_load)
        rows += [("npz load", t_npz), ("pickle load", t_pkl)]
        assert H.number_of_edges() == G.number_of_edges()
        assert graph_from_arrays(graph_to_arrays(G)).graph == G.graph
        sizes = npz.stat().st_size / 1e6, pkl.stat().st_size / 1e6
    network_arrays("default")
    rows.append(("engine arrays from cache", _best(lambda: network_arrays("default"))[0]))
    for name, t in rows:
        print(f"{name:28s} {t:7.2f} s")
    print(f"file size: npz {sizes[0]:.0f} MB, pickle {sizes[1]:.0f} MB; "
          f"npz load / pickle load = {t_npz / t_pkl:.1f}")


if __name__ == "__main__":
    main()
