"""demand_from_buildings on real OSM extracts, checked against GDAL's own OSM reader."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo.demand import demand_from_buildings, write_demand

OSM = Path(__file__).parent / "fixtures" / "osm"
KYMENLAAKSO = OSM / "kymenlaakso_pyrosm.osm.pbf"


@pytest.fixture(scope="module")
def gdal_buildings() -> gpd.GeoDataFrame:
    """Buildings as GDAL's OSM driver reads them (independent of pyosmium), in UTM 35N."""
    with warnings.catch_warnings():  # GDAL notes about the rings cut at the extract's edge
        warnings.simplefilter("ignore")
        df = pyogrio.read_dataframe(KYMENLAAKSO, layer="multipolygons", on_invalid="ignore")
    df = df[df["building"].notna() & df["osm_way_id"].notna() & df.geometry.notna()]
    levels = df["other_tags"].fillna("").map(
        lambda t: float(m.group(1)) if (m := re.search(r'"building:levels"=>"(\d+(?:\.\d+)?)"', t))
        else 1.0)
    floor = (df.geometry.set_crs(4326).to_crs(32635).area * levels).to_numpy()
    return gpd.GeoDataFrame({"floor": floor},
                            geometry=df.geometry.to_numpy(), crs=4326,
                            index="w" + df["osm_way_id"].astype(str))


def test_total_kept_and_spread_by_floor_area(gdal_buildings: gpd.GeoDataFrame) -> None:
    result = demand_from_buildings(KYMENLAAKSO, population=5000)
    pts = result.points
    assert int(pts["pop"].sum()) == 5000
    assert result.crs == "EPSG:32635"  # Finland, 26.95E: UTM 35N
    assert set(pts["method"]) == {"building"}
    assert (pts["pop_0_3"] + pts["pop_60p"] <= pts["pop"]).all()
    # every home's floor area equals GDAL's footprint x levels for the same way
    ref = gdal_buildings.loc[pts["osm_id"], "floor"].to_numpy()
    np.testing.assert_allclose(pts["floor_area_m2"].to_numpy(), ref, rtol=1e-3, atol=0.1)
    # residents follow floor area: within one person of the exact share (rounding)
    homes = result.units.loc["all", "floor_area_m2"]
    exact = 5000 * pts["floor_area_m2"].to_numpy() / homes
    assert np.abs(pts["pop"].to_numpy() - exact).max() <= 1.0
    c = result.counts
    assert c["buildings"] == c["homes"] + c["excluded_by_tag"] + \
        c["excluded_yes_outside_residential_land"] + c["excluded_broken_geometry"]
    assert c["excluded_broken_geometry"] > 0  # the extract is clipped: some outlines are cut


def test_population_per_unit_and_street_fallback(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    units = gpd.GeoDataFrame(
        {"name": ["A", "B", "C"], "township_code": ["t1", "t1", "t2"]},
        geometry=[shapely.box(26.93, 60.52, 26.95, 60.53), shapely.box(26.95, 60.52, 26.97, 60.53),
                  shapely.box(26.90, 60.50, 26.91, 60.51)],  # C: outside the extract
        index=pd.Index(["a", "b", "c"], name="code"), crs=4326)
    result = demand_from_buildings(KYMENLAAKSO, population={"a": 1000, "b": 2000, "c": 30},
                                   units=units)
    by_unit = result.points.groupby("unit_code")["pop"].sum().to_dict()
    assert by_unit == {"a": 1000, "b": 2000, "c": 30}
    assert result.units.loc["c", "method"] == "centre"
    assert set(result.points.loc[result.points["unit_code"] == "a", "township_code"]) == {"t1"}
    inside = shapely.contains(units.loc["a"].geometry,
                              result.points[result.points["unit_code"] == "a"].geometry.to_numpy())
    assert inside.all()
    paths = write_demand(result, tmp_path / "out")
    table = pd.read_csv(paths["demand"], dtype={"unit_code": str})
    assert int(table["pop"].sum()) == 3030 and {"lon", "lat", "method"} <= set(table.columns)
    # the per-unit report is for spreadsheets: a code that looks like a formula stays text
    import dataclasses

    from _spreadsheets import assert_csv_safe

    evil = dataclasses.replace(result, units=result.units.rename(index={"a": "=a"}))
    assert_csv_safe(write_demand(evil, tmp_path / "evil")["units"], expect=("=a",))
    # the three files are one set: a failure after demand.csv leaves the previous three
    before = {p.name: p.read_bytes() for p in paths.values()}
    import qyx_geo.demand

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(qyx_geo.demand, "write_csv", full)
    with pytest.raises(OSError, match="No space"):
        write_demand(evil, tmp_path / "out")
    assert {p.name: p.read_bytes() for p in paths.values()} == before


def test_streets_where_no_buildings(tmp_path: Path) -> None:
    xml = tmp_path / "village.osm"
    xml.write_text(
        '<osm version="0.6"><node id="1" lat="30.0" lon="121.0"/><node id="2" lat="30.0" '
        'lon="121.01"/><node id="3" lat="30.005" lon="121.01"/>'
        '<way id="10"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>'
        '<way id="11"><nd ref="2"/><nd ref="3"/><tag k="highway" v="primary"/></way></osm>',
        encoding="utf-8")
    result = demand_from_buildings(xml, population=200, street_spacing_m=100)
    pts = result.points
    assert result.crs == "EPSG:4549" and set(pts["method"]) == {"street"}
    # the residential street is ~963 m long: 9 points of 100 m spacing, none on the primary road
    assert len(pts) == 9 and int(pts["pop"].sum()) == 200
    assert np.allclose(pts.geometry.y, 30.0)


@pytest.mark.parametrize("kwargs", [{"population": -1}, {"population": 1.5},
                                    {"population": 10, "share_60p": 1.2},
                                    {"population": {"a": 10}}])
def test_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        demand_from_buildings(KYMENLAAKSO, **kwargs)  # type: ignore[arg-type]


def test_not_osm(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataFileError, match=r"x\.csv"):
        demand_from_buildings(bad, population=10)


def test_cli_from_buildings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qyx_geo.cli import main

    out = tmp_path / "out"
    assert main(["demand", "from-buildings", str(KYMENLAAKSO), "--population", "4000",
                 "--out", str(out)]) == 0
    assert "4,000" in capsys.readouterr().out
    assert int(pd.read_csv(out / "demand.csv")["pop"].sum()) == 4000
    assert main(["demand", "from-buildings", str(KYMENLAAKSO), "--population", "-5",
                 "--out", str(out)]) == 2
