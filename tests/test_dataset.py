from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from qyx_geo import _paths
from qyx_geo._errors import NetworkError
from qyx_geo.dataset import Dataset, load_dataset
from qyx_geo.schema import FACILITY_LAYERS
from qyx_geo.synth.__main__ import generate
from qyx_geo.units import CENSUS_2020_POPULATION

#: Every file the generator writes (besides the street network), relative to the data folder.
GENERATED = (
    "boundaries/county_outline.geojson", "boundaries/townships.geojson",
    "boundaries/villages.geojson", "boundaries/demand.csv", "facilities/nursery.geojson",
    "facilities/canteen.geojson", "facilities/clinic.geojson", "facilities/sports.geojson",
    "facilities/kindergarten.geojson", "facilities/primary_school.geojson",
    "facilities/junior_school.geojson", "facilities/home_care_station.geojson",
    "facilities/disability_home.geojson", "facilities/elder_school.geojson",
    "facilities/sources/osm/cixi_osm_school_classified.csv",
)


def _digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in GENERATED}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_dataset()


def test_load_dataset_everything_but_the_network(dataset):
    assert len(dataset.townships) == 24
    assert len(dataset.units) == 406
    assert dataset.population == CENSUS_2020_POPULATION
    # the four core layers first, then the registry's optional layers the dataset holds
    assert list(dataset.facilities) == [*FACILITY_LAYERS, "kindergarten", "primary_school",
                                        "junior_school", "home_care_station",
                                        "disability_home", "elder_school"]
    assert dataset.network is None
    assert dataset.data_dir == _paths.data_dir()
    with pytest.raises(TypeError):
        dataset.facilities["nursery"] = dataset.facilities["canteen"]  # read-only mapping
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.units = dataset.units  # type: ignore[misc]


def test_provenance_names_real_and_synthetic_parts(dataset):
    prov = dataset.provenance
    assert prov["codes"]["status"] == "real"
    assert prov["outline"]["status"] == "real"
    assert "no open-data licence" in prov["outline"]["licence"]
    assert prov["seats"]["status"] == "mixed"
    assert prov["seats"]["real_rows"] == 15 and prov["seats"]["synthetic_rows"] == 9
    assert prov["areas"]["status"] == "synthetic"
    assert prov["demand"]["status"] == "synthetic"
    assert prov["facilities.clinic"]["status"] == "mixed"
    assert prov["facilities.clinic"]["real_rows"] == 11
    assert "ODbL" in prov["facilities.clinic"]["licence"]
    for layer in ("nursery", "canteen", "sports"):
        assert prov[f"facilities.{layer}"]["status"] == "synthetic"
    assert prov["network"]["status"] in {"synthetic", "missing"}


def test_with_network_returns_a_copy(dataset):
    graph = object()
    carried = dataset.with_network(graph)
    assert carried.network is graph and dataset.network is None
    assert carried.load_network() is graph  # no reload once attached


def test_load_network_without_a_file_says_how_to_fix(dataset):
    bare = dataclasses.replace(dataset, network_path=None)
    with pytest.raises(NetworkError, match=r"no street network file.*python -m qyx_geo\.synth"):
        bare.load_network()


def test_load_network_delegates_to_network_module(dataset, monkeypatch, tmp_path):
    network = pytest.importorskip("qyx_geo.network")
    calls = []
    monkeypatch.setattr(network, "load_network", lambda src, **kw: calls.append((src, kw)) or 1)
    embedded = dataclasses.replace(dataset, network_path=dataset.data_dir / "network" / "x.osm")
    assert embedded.load_network() == 1
    other = dataclasses.replace(dataset, data_dir=tmp_path, network_path=tmp_path / "n.osm.bz2")
    other.load_network(cache=False)
    assert calls == [("default", {}), (tmp_path / "n.osm.bz2", {"cache": False})]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("regen")
    generate(out, network=False)
    return out


def test_generator_reproduces_the_committed_data(regenerated):
    assert _digests(regenerated) == _digests(_paths.data_dir())


def test_generator_is_deterministic_and_seeded(regenerated, tmp_path):
    generate(tmp_path / "again", network=False)
    assert _digests(tmp_path / "again") == _digests(regenerated)
    generate(tmp_path / "other", seed=7, network=False)
    other = _digests(tmp_path / "other")
    name = "boundaries/villages.geojson"
    assert other[name] != _digests(regenerated)[name]
    ds = load_dataset(data_dir=tmp_path / "other")  # another seed still validates and sums up
    assert ds.population == CENSUS_2020_POPULATION
    assert ds.network_path is None
    assert ds.provenance["network"]["status"] == "missing"


def test_generator_calls_the_network_builder(tmp_path, monkeypatch):
    net = pytest.importorskip("qyx_geo.synth.network")
    seen = {}

    def fake(outline, seats, centres, *, seed, out_path):
        seen.update(outline=outline, seats=seats, centres=centres, seed=seed, out_path=out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_bytes(b"")
        return dataclasses.make_dataclass("B", ["path"])(out_path)

    monkeypatch.setattr(net, "build_default_network", fake)
    written = generate(tmp_path, network=True)
    assert written["network"] == seen["out_path"]
    assert seen["out_path"].parent == tmp_path / "network"
    assert len(seen["seats"]) == 24 and {"seat_lon", "seat_lat", "kind"} <= set(seen["seats"])
    assert len(seen["centres"]) == 406 and {"centre_lon", "centre_lat"} <= set(seen["centres"])


@pytest.mark.slow
def test_synth_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "qyx_geo.synth", "--no-network", "--out", str(tmp_path), "-q"],
        capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _digests(tmp_path) == _digests(_paths.data_dir())
