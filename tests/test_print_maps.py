"""Print maps (PNG + PDF): page size, what is on the page, embedded Chinese font."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image

from qyx_geo.maps.printing import PAPERS, write_print_maps

FIXTURES = Path(__file__).parent / "fixtures" / "maps"


def _toy():
    spec = importlib.util.spec_from_file_location("qyx_maps_toy_print", FIXTURES / "toy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    from qyx_geo.audit import run_audit
    from qyx_geo.maps import main_roads
    from qyx_geo.surfaces import travel_time_surface

    toy = _toy()
    graph = toy.toy_grid_graph()
    result = run_audit(toy.toy_audit_dataset(), year=2027, services=["canteen"], network=graph)
    surface = travel_time_surface(result.net, result.services["canteen"].facilities,
                                  cutoff_minutes=15)
    out = tmp_path_factory.mktemp("print")
    files = write_print_maps(result, out, crs=result.net.crs, surfaces={"canteen": surface},
                             roads=main_roads(graph), paper="A4")
    return {p.name: p for p in files}


def test_png_and_pdf_of_every_map_at_a4(printed):
    assert sorted(printed) == ["canteen_A4.pdf", "canteen_A4.png", "overview_A4.pdf",
                               "overview_A4.png"]
    w_in, h_in = PAPERS["A4"]
    with Image.open(printed["canteen_A4.png"]) as im:
        assert im.size == (round(w_in * 200), round(h_in * 200))  # 200 dpi landscape A4
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    # the synthetic notice's background and the nearest band's colour (#08519c at 70 % on the
    # map) are on the page
    assert np.sum(np.all(pixels == (0xFF, 0xF3, 0xCD), axis=1)) > 2_000
    blue = np.abs(pixels.astype(int) - (0x4B, 0x80, 0xB9)).sum(axis=1) < 60
    assert blue.sum() > 200
    pdf = printed["canteen_A4.pdf"].read_bytes()
    box = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf)
    assert pdf.startswith(b"%PDF") and box
    assert (float(box.group(1)), float(box.group(2))) == pytest.approx((w_in * 72, h_in * 72))


def test_pdf_embeds_the_chinese_font(printed):
    pdffonts = shutil.which("pdffonts")
    if pdffonts is None:
        pytest.skip("pdffonts (poppler-utils) is not installed")
    table = subprocess.run([pdffonts, str(printed["canteen_A4.pdf"])], capture_output=True,
                           text=True, check=True).stdout
    rows = [line.split() for line in table.splitlines()[2:]]
    cjk = [r for r in rows if "WenQuanYi" in r[0] or "Noto" in r[0] or "CJK" in r[0]]
    assert cjk, table
    assert all("yes" in r[-5:-3] for r in cjk), table  # emb = yes (and subset)


def test_bad_paper_is_refused(tmp_path):
    from qyx_geo._errors import SettingsError

    with pytest.raises(SettingsError, match="paper"):
        write_print_maps(None, tmp_path, crs="EPSG:4549", paper="Letter")  # type: ignore[arg-type]


def test_parts_choose_the_maps(tmp_path):
    from qyx_geo._errors import SettingsError
    from qyx_geo.audit import run_audit

    toy = _toy()
    graph = toy.toy_grid_graph()
    result = run_audit(toy.toy_audit_dataset(), year=2027, services=["canteen"], network=graph)
    files = write_print_maps(result, tmp_path, crs=result.net.crs, paper="A4",
                             parts=["canteen"])
    assert sorted(p.name for p in files) == ["canteen_A4.pdf", "canteen_A4.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canteen_A4.pdf", "canteen_A4.png"]
    with pytest.raises(SettingsError, match="'clinic'"):
        write_print_maps(result, tmp_path, crs=result.net.crs, parts=["clinic"])
