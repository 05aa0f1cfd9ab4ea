from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qyx_geo import _paths
from qyx_geo._errors import NetworkError
from qyx_geo.cli import main
from qyx_geo.dataset import Dataset


def test_info_text_summary(capsys):
    assert main(["info", "--no-network"]) == 0
    out = capsys.readouterr().out
    assert "镇街 townships: 24 (街道 5, 镇 14, 开发区 5)" in out
    assert "村社区 units:   406 (社区/居委会 106, 村委会 294, 虚拟社区 6)" in out
    assert "1,829,488" in out
    for layer in ("nursery", "canteen", "clinic", "sports"):
        assert layer in out
    assert "osm 11" in out
    assert "合成 synthetic" in out and "真实 real" in out
    assert "--no-network" in out  # says why the network was not loaded


def test_info_json(capsys):
    assert main(["info", "--json", "--no-network"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["townships"]["count"] == 24
    assert data["units"]["count"] == 406
    assert data["units"]["by_kind"] == {"社区/居委会": 106, "村委会": 294, "虚拟社区": 6}
    assert data["population"]["total"] == 1_829_488
    assert 0.22 <= data["population"]["share_60p"] <= 0.25
    assert set(data["facilities"]) == {"nursery", "canteen", "clinic", "sports"}
    assert data["facilities"]["clinic"]["by_source"]["osm"] == 11
    assert data["facilities"]["nursery"]["capacity_unit"] == "托位"
    assert data["network"]["status"] == "skipped"
    assert data["provenance"]["demand"]["status"] == "synthetic"


def test_info_reports_network_nodes_and_edges(capsys, monkeypatch):
    nx = pytest.importorskip("networkx")
    graph = nx.MultiDiGraph(crs="EPSG:4549")
    graph.add_edges_from([(1, 2), (2, 1), (2, 3)])
    monkeypatch.setattr(Dataset, "load_network", lambda self, **kw: graph)
    monkeypatch.setattr("qyx_geo.dataset._find_network", lambda base: base / "network" / "x.osm")
    assert main(["info", "--json"]) == 0
    net = json.loads(capsys.readouterr().out)["network"]
    assert (net["status"], net["nodes"], net["edges"], net["crs"]) == ("loaded", 3, 3, "EPSG:4549")


def test_info_survives_an_unloadable_network(capsys, monkeypatch):
    def broken(self, **kw):
        raise NetworkError("network file 'x.osm' has no walkable edges")

    monkeypatch.setattr(Dataset, "load_network", broken)
    monkeypatch.setattr("qyx_geo.dataset._find_network", lambda base: base / "network" / "x.osm")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "路网 network: unavailable" in out and "no walkable edges" in out
    assert "1,829,488" in out


def test_info_on_a_dataset_without_network(tmp_path, capsys):
    for part in ("boundaries", "facilities"):
        shutil.copytree(_paths.data_dir() / part, tmp_path / part)
    assert main(["info", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "路网 network: missing" in out and "python -m qyx_geo.synth" in out


def test_info_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["info", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "is not a folder" in err and "qyx region init" in err


def test_info_registered_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    assert "--no-network" in capsys.readouterr().out


def test_paths_are_repo_data():
    assert (Path(_paths.data_dir()) / "boundaries" / "villages.geojson").exists()
