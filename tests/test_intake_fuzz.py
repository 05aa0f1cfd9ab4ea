"""Fuzz tests of the register readers and the intake: whatever the bytes, the intake either
raises a qyx_geo error or returns a report that accounts for every row it was given."""

from __future__ import annotations

import csv
import functools
import io
import json
import tempfile
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qyx_geo import units as qunits
from qyx_geo._errors import QyxGeoError
from qyx_geo.intake import IntakeResult, import_register

REG = Path(__file__).parent / "fixtures" / "registers"
FIXTURES = sorted(p.name for p in REG.iterdir() if p.suffix in {".csv", ".xlsx", ".geojson",
                                                                 ".gpkg"})
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
HEADER = ["名称", "经度", "纬度", "村(社区)", "座位数"]

# Cell values of real-world registers and of careless exports: numbers of every size, special
# floats, coordinates as text, degree strings, Chinese text, control characters (no NUL: a NUL
# makes a CSV binary, refused as a whole).
cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=120.8, max_value=121.7), st.floats(min_value=29.9, max_value=30.5),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
            max_size=12),
    st.sampled_from(["121.2255", "30.1973", "121°15′30″", "曙光社区", "马家路", "30个", "", " ",
                     "nan", "inf", "1e400", "-0", "１２１．２", "村委会", "\r\n", '"', ",", ";"]),
)


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, object]:
    return {"units": qunits.load_units(), "townships": qunits.load_townships(),
            "outline": qunits.load_outline()}


def run(path: Path, **kwargs: object) -> IntakeResult | None:
    """Import ``path``; ``None`` for a qyx_geo error, any other exception fails the test."""
    try:
        result = import_register(path, layer="canteen", **{**reference(), **kwargs})  # type: ignore[arg-type]
    except QyxGeoError as err:
        assert str(err)  # every error says something
        return None
    c = result.counts
    assert c["accepted"] + c["accepted-with-changes"] + c["rejected"] == c["input"]
    assert len(result.report) == c["input"] == len(set(result.report["row"]))
    assert len(result.layer) == c["input"] - c["rejected"]
    assert result.layer.index.is_unique
    xy = result.layer.geometry
    assert xy.x.between(120.5, 122.0).all() and xy.y.between(29.5, 30.8).all()
    return result


def _blank_row(row: list[object]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def _csv_cell(value: object) -> str:
    return "" if value is None else str(value)


@FUZZ
@given(data=st.binary(max_size=3000),
       suffix=st.sampled_from([".csv", ".xlsx", ".geojson", ".gpkg", ".txt"]))
def test_arbitrary_bytes(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"register{suffix}"
        path.write_bytes(data)
        run(path)


@FUZZ
@given(name=st.sampled_from(FIXTURES), cut=st.floats(min_value=0.0, max_value=1.0))
def test_truncated_fixtures(name: str, cut: float) -> None:
    data = (REG / name).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data[: int(len(data) * cut)])
        run(path)


@FUZZ
@given(name=st.sampled_from(FIXTURES), flips=st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=1.0), st.integers(0, 255)), min_size=1,
    max_size=8))
def test_corrupted_fixtures(name: str, flips: list[tuple[float, int]]) -> None:
    data = bytearray((REG / name).read_bytes()) or bytearray(b" ")
    for where, byte in flips:
        data[min(int(where * len(data)), len(data) - 1)] = byte
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(bytes(data))
        run(path)


@FUZZ
@given(encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16", "big5",
                                 "shift_jis", "euc_kr", "latin-1", "cp1252"]))
def test_wrong_encodings_keep_every_row(encoding: str) -> None:
    text = (REG / "canteen_mixed_gbk_gcj02.csv").read_bytes().decode("gbk")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mixed.csv"
        path.write_bytes(text.encode(encoding, errors="replace"))
        result = run(path, crs="gcj02")
    if result is not None:
        assert result.counts["input"] == 12  # garbled text, but no row lost
    if encoding in {"utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"}:
        assert result is not None and result.counts["accepted"] == 8


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=7), min_size=1, max_size=25),
       delimiter=st.sampled_from([",", "\t", ";"]), encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_generated_csv_keeps_every_row(rows: list[list[object]], delimiter: str,
                                       encoding: str) -> None:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(HEADER)
    writer.writerows([[_csv_cell(v) for v in r] for r in rows])
    expected = sum(not _blank_row([_csv_cell(v) for v in r]) for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.csv"
        path.write_bytes(buf.getvalue().encode(encoding))
        result = run(path, fallback="village_centre")
    if expected:
        assert result is not None, "a CSV with a header and data rows must import"
        assert result.counts["input"] == expected


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=6), min_size=1, max_size=20))
def test_generated_xlsx_keeps_every_row(rows: list[list[object]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    written = 0
    for r in rows:
        clean = [v if not isinstance(v, str) else "".join(ch for ch in v if ch >= " " or
                                                           ch in "\t\n\r") for v in r]
        clean = [None if isinstance(v, float) and v != v else v for v in clean]  # NaN: no cell
        clean = [None if isinstance(v, float) and abs(v) == float("inf") else v for v in clean]
        clean = [str(v) if isinstance(v, int) and abs(v) >= 2**53 else v for v in clean]
        sheet.append(clean)
        written += not _blank_row(clean)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.xlsx"
        book.save(path)
        result = run(path)
    if written:
        assert result is not None and result.counts["input"] == written


@FUZZ
@given(features=st.lists(st.tuples(
    st.one_of(st.none(), st.tuples(st.floats(allow_nan=False, allow_infinity=False),
                                   st.floats(allow_nan=False, allow_infinity=False)),
              st.tuples(st.floats(120.9, 121.6), st.floats(29.95, 30.45))),
    st.one_of(st.none(), st.text(max_size=8), st.integers(), st.floats(allow_nan=False))),
    min_size=1, max_size=15))
def test_generated_geojson_keeps_every_feature(features: list[tuple[object, object]]) -> None:
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"名称": name, "座位数": 10},
         "geometry": None if xy is None else {"type": "Point", "coordinates": list(xy)}}
        for xy, name in features]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.geojson"
        path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
        result = run(path)
    assert result is not None and result.counts["input"] == len(features)
