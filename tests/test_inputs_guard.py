"""A network that does not serve the region is an error; run records name the inputs used."""

# ruff: noqa: N803  (G for graphs)
from __future__ import annotations

import hashlib
from pathlib import Path

import networkx as nx
import pytest
from _audit_fixtures import STEP, grid_graph, tiny_dataset

from qyx_geo._errors import NetworkError
from qyx_geo.audit import run_audit
from qyx_geo.engine import build_arrays
from qyx_geo.maps._parts import synthetic_layers
from qyx_geo.network import load_network
from qyx_geo.report import inputs_used, synthetic_notice

TINY = Path(__file__).parent / "fixtures" / "network" / "tiny.osm"


def _shifted_grid(dx_m: float) -> nx.MultiDiGraph:
    G = grid_graph()
    for _, d in G.nodes(data=True):
        d["x"] += dx_m
    return G


def test_network_elsewhere_is_an_error_with_counts_and_boxes() -> None:
    ds = tiny_dataset()
    with pytest.raises(NetworkError) as info:
        run_audit(ds, year=2027, network=_shifted_grid(50_000.0))
    text = str(info.value)
    total = int(ds.demand["pop"].sum())
    assert f"{total:,} of {total:,} residents" in text
    assert "network bbox (" in text and "region bbox (" in text
    assert "300 m" in text


def test_partly_served_region_still_audits() -> None:
    # shift the 2 km grid by 400 m: residents near one edge fall off it, far fewer than half
    ds = tiny_dataset()
    result = run_audit(ds, year=2027, network=_shifted_grid(0.2 * 10 * STEP))
    assert result.services


def test_facilities_beyond_the_network_are_an_error() -> None:
    ds = tiny_dataset()
    far = {sid: layer.to_crs("EPSG:4549").translate(xoff=30_000.0).to_crs(4326)
           for sid, layer in ds.facilities.items()}
    layers = {sid: layer.set_geometry(far[sid].geometry) for sid, layer in ds.facilities.items()}
    with pytest.raises(NetworkError, match="facilities lie more than"):
        run_audit(ds, year=2027, network=grid_graph(), facilities=layers)


def test_inputs_used_name_the_network_file() -> None:
    G = load_network(TINY, cache=False)
    net = build_arrays(G)
    assert net.info["source_sha256"] == G.graph["source_sha256"]
    assert net.info["synthetic"] is False
    ds = tiny_dataset()
    # the tiny grid (synthetic test data) carries no provenance: the network record is real
    result = run_audit(ds, year=2027, network=build_arrays(grid_graph()))
    used = inputs_used(result)
    assert used["network"]["crs"] == "EPSG:4549" and used["network"]["sha256"] is None

    real = run_audit(ds, year=2027, network=build_arrays(_as_real(grid_graph(), TINY)))
    used = inputs_used(real)["network"]
    assert used["status"] == "real"
    assert used["sha256"] == hashlib.sha256(TINY.read_bytes()).hexdigest()
    assert used["osm_timestamp"] == "2024-01-01T00:00:00Z"
    assert "network" not in (synthetic_notice(real) or "")
    # the dataset the result carries names that network too (run.json provenance, map notice)
    assert real.dataset.provenance["network"]["status"] == "real"
    assert "tiny.osm" in real.dataset.provenance["network"]["detail"]
    assert "路网 street network" not in synthetic_layers(real.dataset, facilities=None, gaps=None)
    fake = run_audit(ds, year=2027, network=build_arrays(_as_real(grid_graph(), TINY,
                                                                  synthetic=True)))
    assert inputs_used(fake)["network"]["status"] == "synthetic"
    assert "network" in (synthetic_notice(fake) or "")
    assert "路网 street network" in synthetic_layers(fake.dataset, facilities=None, gaps=None)


def _as_real(G: nx.MultiDiGraph, path: Path, *, synthetic: bool = False) -> nx.MultiDiGraph:
    G.graph.update({"qyx_source": str(path), "synthetic": synthetic,
                    "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "osm_timestamp": "2024-01-01T00:00:00Z", "ways_cut": 0})
    return G


def test_crs_override_and_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qyx_geo.network import file_cache_key

    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    local = load_network(TINY)
    assert local.graph["crs"] == "EPSG:4549"
    utm = load_network(TINY, crs="EPSG:32651")
    assert utm.graph["crs"] == "EPSG:32651"
    # same streets, other plane: lengths agree (they are geodesic), coordinates do not
    assert set(utm.nodes) == set(local.nodes)
    assert utm.nodes[5]["x"] != pytest.approx(local.nodes[5]["x"], abs=1.0)
    # asking for the CRS the network gets anyway shares its cache entry
    assert file_cache_key(TINY, crs="EPSG:4549") == file_cache_key(TINY)
    assert file_cache_key(TINY, crs="EPSG:32651") != file_cache_key(TINY)


def test_cli_clip_polygon_file_and_crs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import geopandas as gpd
    import shapely

    from qyx_geo.cli import main

    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path / "cache"))
    box = (121.2495, 30.1695, 121.2512, 30.1735)
    area = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(*box)], crs="EPSG:4326").to_file(area)
    assert main(["network", "load", str(TINY), "--json", "--no-cache", "--clip", str(area)]) == 0
    by_file = json.loads(capsys.readouterr().out)
    assert main(["network", "load", str(TINY), "--json", "--no-cache", "--clip",
                 *map(str, box)]) == 0
    by_box = json.loads(capsys.readouterr().out)
    assert (by_file["nodes"], by_file["edges"]) == (by_box["nodes"], by_box["edges"])
    assert main(["network", "load", str(TINY), "--json", "--no-cache", "--crs",
                 "EPSG:32651"]) == 0
    assert json.loads(capsys.readouterr().out)["crs"] == "EPSG:32651"
    with pytest.raises(SystemExit) as info:  # argparse: exit 2 with the reason
        main(["audit", "--crs", "EPSG:4326", "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "not a projected CRS in metres" in capsys.readouterr().err


def test_dataset_crs_of_the_embedded_pack_is_the_local_one() -> None:
    from qyx_geo.crs import metric_crs_for
    from qyx_geo.dataset import load_dataset
    from qyx_geo.pipeline import dataset_crs

    ds = load_dataset()
    # the embedded pack names the CRS its network gets anyway: no override, shared caches
    assert ds.region.crs == metric_crs_for(tuple(ds.outline.total_bounds)) == "EPSG:4549"
    assert dataset_crs(ds) is None
    assert dataset_crs(ds, "EPSG:32651") == "EPSG:32651"
    assert dataset_crs(tiny_dataset()) is None  # no pack: the network's local CRS
