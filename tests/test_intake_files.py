"""Register files that used to lose or invent rows: run-away quotes, a styled cell at XFD1048576,
thousands of repeated headers, several GeoPackage layers or worksheets, all rows rejected."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import shapely

from qyx_geo._errors import DataFileError
from qyx_geo.intake import import_register
from qyx_geo.intake._readers import MAX_COLUMNS, read_table, unique_headers

#: Three facilities in Cixi (WGS84) and a header the intake recognises.
ROWS = [("站1", 121.226589, 30.197289), ("站2", 121.238715, 30.266882),
        ("站3", 121.408852, 30.161405)]
HEADER = "名称,经度,纬度"


def _csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- CSV: every physical line accounted for -----------------------------------------------------

def test_unclosed_quote_is_refused_with_its_line(tmp_path):
    # before: strict=False folded lines 3-5 into one cell of row 3: 4 rows read as 2, no warning
    path = _csv(tmp_path / "r.csv", [HEADER, "站1,121.226589,30.197289",
                                     '"站2,121.238715,30.266882', "站3,121.408852,30.161405",
                                     "站4,121.3,30.2"])
    with pytest.raises(DataFileError, match=r"line 3: a quote .* not closed .*line 4"):
        read_table(path)


def test_quoted_line_breaks_are_one_row_at_its_first_line(tmp_path):
    path = _csv(tmp_path / "r.csv", [f"{HEADER},地址", '站1,121.226589,30.197289,"浒山街道',
                                     '某路1号"', "站2,121.238715,30.266882,"])
    raw = read_table(path)
    assert list(raw.frame.index) == [2, 4]  # source line numbers, the address spans 2-3
    assert raw.frame.loc[2, "地址"] == "浒山街道\n某路1号"
    assert any("2–3" in n for n in raw.notes)


# -- XLSX: work bounded by the cells that hold data --------------------------------------------

def _far_styled_cell_xlsx(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    for row in ROWS:
        ws.append(list(row))
    ws.cell(row=1_048_576, column=16_384).font = openpyxl.styles.Font(bold=True)  # XFD1048576
    wb.save(path)
    return path


_CHILD = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 3 GiB: the old reader needed ~24
    from qyx_geo.intake._readers import read_table
    tracemalloc.start()
    raw = read_table(sys.argv[1])
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"shape": list(raw.frame.shape), "rows": [int(i) for i in raw.frame.index],
                      "peak_mb": peak / 2**20}))
""")


def test_styled_cell_at_xfd1048576_reads_only_the_data(tmp_path):
    """Before: the reader padded every row to the used range A1:XFD1048576 (about 24 GB).

    Read in a child process with its address space capped, so a regression fails fast instead
    of exhausting the machine; memory and cell counts are asserted, not time.
    """
    path = _far_styled_cell_xlsx(tmp_path / "far.xlsx")
    assert path.stat().st_size < 10_000  # a 5 KB file ...
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.active.calculate_dimension() == "A1:XFD1048576"  # ... claiming the whole grid
    book.close()
    run = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                         text=True, timeout=600, check=False,
                         cwd=Path(__file__).parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout)
    assert got["shape"] == [3, 4]  # 3 rows x (3 columns + __extra__): no padding
    assert got["rows"] == [2, 3, 4]
    assert got["peak_mb"] < 64


def test_a_row_wider_than_the_column_limit_is_refused(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    ws.append([*ROWS[0], *(["x"] * MAX_COLUMNS)])
    wb.save(tmp_path / "wide.xlsx")
    with pytest.raises(DataFileError, match=r"row 2 fills 1,003 columns; .* at most 1,000"):
        read_table(tmp_path / "wide.xlsx")


# -- headers: linear de-duplication, a column limit ---------------------------------------------

def test_repeated_headers_are_numbered():
    names = unique_headers(["名称"] * 999)
    assert names == ["名称", *(f"名称.{k}" for k in range(2, 1000))]
    assert len(set(unique_headers(["a", "a.2", "a", "a", None, ""]))) == 6


def test_two_thousand_repeated_headers_are_refused(tmp_path):
    # before: the quadratic-per-header loop took 18 s here (and > 400 s on a 1 MB line)
    path = _csv(tmp_path / "r.csv", [",".join(["名称"] * 2000), ",".join(["站"] * 2000)])
    with pytest.raises(DataFileError, match=r"row 1 fills 2,000 columns"):
        read_table(path)
    long_line = _csv(tmp_path / "long.csv", ["名称,经度,纬度," + "," * 500_000])
    raw = read_table(long_line)  # trailing empty cells are no columns
    assert list(raw.frame.columns) == ["名称", "经度", "纬度", "__extra__"]
    wide = _csv(tmp_path / "wide.csv", ["名称,经度,纬度," + ",".join(["x"] * 500_000)])
    with pytest.raises(DataFileError, match=r"row 1 fills 500,003 columns"):
        read_table(wide)


# -- several layers or sheets: ask, and list them -----------------------------------------------

def _points(crs: str = "EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"名称": [r[0] for r in ROWS]},
                            geometry=[shapely.Point(r[1], r[2]) for r in ROWS], crs=crs)


def test_gpkg_with_several_layers_asks_for_one(tmp_path):
    path = tmp_path / "two.gpkg"
    boundary = gpd.GeoDataFrame({"名称": ["县界"]},
                                geometry=[shapely.box(121.0, 30.0, 121.5, 30.4)], crs=4326)
    boundary.to_file(path, layer="boundary", driver="GPKG")
    _points().to_file(path, layer="canteens", driver="GPKG")
    with pytest.raises(DataFileError, match=r"2 layers: 'boundary' \(Polygon, 1 要素 features\), "
                                            r"'canteens' \(Point, 3 要素 features\).*--layer-name"):
        read_table(path)
    assert len(read_table(path, layer_name="canteens").frame) == 3
    with pytest.raises(DataFileError, match="no layer named 'x'"):
        read_table(path, layer_name="x")
    with pytest.raises(DataFileError, match=r"only applies to \.gpkg"):
        read_table(_csv(tmp_path / "r.csv", [HEADER]), layer_name="canteens")


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_data_on_the_second_sheet_is_found_and_named(tmp_path):
    # before: sheet 1 (a notes sheet) was read and the register got "no data rows", no hint
    path = _workbook(tmp_path / "b.xlsx", {"说明": [["本表由民政局提供"]],
                                           "助餐点": [HEADER.split(","), *map(list, ROWS)]})
    raw = read_table(path)
    assert len(raw.frame) == 3 and any("'助餐点'" in n for n in raw.notes)


def test_several_register_sheets_ask_for_one(tmp_path):
    table = [HEADER.split(","), *map(list, ROWS)]
    path = _workbook(tmp_path / "c.xlsx", {"2023": table, "2024": table[:2]})
    with pytest.raises(DataFileError, match=r"2 sheets look like registers: '2023' \(4 行 rows\), "
                                            r"'2024' \(2 行 rows\).*--sheet"):
        read_table(path)
    assert len(read_table(path, sheet="2024").frame) == 1


def test_cli_layer_name_and_sheet(tmp_path, capsys):
    from qyx_geo.cli import main

    path = tmp_path / "two.gpkg"
    _points().to_file(path, layer="a", driver="GPKG")
    _points().to_file(path, layer="b", driver="GPKG")
    out = tmp_path / "out"
    assert main(["facilities", "import", str(path), "--layer", "canteen", "--out", str(out)]) == 2
    assert "--layer-name" in capsys.readouterr().err
    assert main(["facilities", "import", str(path), "--layer", "canteen", "--layer-name", "b",
                 "--out", str(out)]) == 0
    assert "3 行 rows" in capsys.readouterr().out


def test_import_register_passes_layer_name(tmp_path):
    path = tmp_path / "two.gpkg"
    _points().to_file(path, layer="a", driver="GPKG")
    _points().to_file(path, layer="b", driver="GPKG")
    result = import_register(path, layer="canteen", layer_name="b")
    assert result.counts["input"] == 3


# -- qyx audit --facilities: choose the layer/sheet; refuse a register with no usable row -------

@pytest.fixture
def tiny(monkeypatch):
    from _audit_fixtures import use_tiny_dataset

    return use_tiny_dataset(monkeypatch)


def test_audit_refuses_a_register_with_no_usable_row(tiny, tmp_path, capsys):
    from qyx_geo.cli import main

    # before: every row rejected, the audit ran on an empty layer: 0 units pass, exit 0
    reg = Path(__file__).parent / "fixtures" / "registers" / "address_only.csv"
    out = tmp_path / "o"
    code = main(["audit", "--out", str(out), "--no-maps", "--services", "canteen",
                 "--facilities", f"canteen={reg}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("qyx audit:") and "none of the 3 rows" in err[-1]
    assert "rejected 3" in err[-1] and "qyx facilities import" in err[-1]
    assert not out.exists() or not any(out.iterdir())


def test_audit_facilities_layer_name(tiny, tmp_path, capsys):
    from qyx_geo.cli import main

    near = gpd.GeoDataFrame({"名称": ["甲", "乙"]}, geometry=[shapely.Point(121.252, 30.172),
                                                           shapely.Point(121.262, 30.182)],
                            crs=4326)
    path = tmp_path / "two.gpkg"
    near.to_file(path, layer="old", driver="GPKG")
    near.to_file(path, layer="new", driver="GPKG")
    argv = ["audit", "--no-maps", "--services", "canteen", "--facilities", f"canteen={path}"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    assert "--layer-name" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--facilities-layer-name", "new"]) == 0
    run = json.loads((tmp_path / "b" / "run.json").read_text(encoding="utf-8"))
    assert run["data"]["facility_layers_used"]["canteen"]["rows"] == 2
