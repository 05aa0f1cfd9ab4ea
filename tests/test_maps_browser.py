"""The maps in a real browser: Debian's headless Chromium opens them offline and we read the DOM.

Every network request is blocked (a dead proxy and an unresolvable host map), so a map that
still needed a CDN would fail here. A probe script is injected into a copy of each page: the
first records JS errors, failed loads and any alert/confirm/prompt; the last, after load, counts
what Leaflet drew, opens every popup and tooltip, and writes a JSON report into the DOM, which
``--dump-dom`` returns. Screenshots go to ``QYX_SCREENSHOT_DIR`` when it is set (else tmp).
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _browser import find_chromium

from qyx_geo import maps
from qyx_geo.crs import wgs84_to_gcj02

pytestmark = pytest.mark.browser

# skipped without Chromium, an error instead when QYX_REQUIRE_BROWSER=1 (CI: .ci/run)
CHROMIUM = find_chromium()

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--proxy-server=http://127.0.0.1:9",
         "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--window-size=1280,900")

FIXTURES = Path(__file__).parent / "fixtures" / "maps"
#: First thing in <head>: record JS errors, failed loads and alert/confirm/prompt calls.
HEAD_PROBE = (FIXTURES / "probe_head.html").read_text(encoding="utf-8")
#: Last thing in <body>: after load, count what Leaflet drew, hover/click every feature, report.
BODY_PROBE = (FIXTURES / "probe_body.html").read_text(encoding="utf-8")
#: Switch to the Gaode base layer and back, recording facility marker and unit positions.
GCJ_PROBE = (FIXTURES / "probe_gcj.html").read_text(encoding="utf-8")
#: The travel-time surface image: loaded, its bounds, and its bounds on the Gaode base.
SURFACE_PROBE = (FIXTURES / "probe_surface.html").read_text(encoding="utf-8")


def _load_toy():
    path = FIXTURES / "toy.py"
    spec = importlib.util.spec_from_file_location("qyx_maps_toy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


toy = _load_toy()


def _chromium(args: list[str], profile: Path, *, timeout_s: float = 90.0) -> str:
    """Run headless Chromium on its own process group; return its stdout."""
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the browser and its helpers, nothing else
        proc.communicate()
        pytest.fail(f"Chromium did not finish within {timeout_s:.0f} s on {args[-1]} "
                    "(a blocking dialog or a script that never ends?)")
    return out


def probe(page: Path, tmp_path: Path, *, extra: str = "", window: str | None = None) -> dict:
    """Open a probed copy of ``page`` offline and return the probe's report."""
    text = page.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>" + HEAD_PROBE, 1)
    text = text.replace("</body>", extra + BODY_PROBE + "</body>", 1)
    probed = tmp_path / f"probed_{page.name}"
    probed.write_text(text, encoding="utf-8")
    size = [f"--window-size={window}"] if window else []  # the later flag wins
    dom = _chromium([*size, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                    tmp_path / f"profile_{page.stem}")
    found = re.search(r'<pre id="qyx-probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"no probe report in the page; DOM ends with: {dom[-1000:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, tmp_path: Path) -> Path:
    """Save a 1280x900 screenshot of ``page`` (opened offline) and return its path."""
    folder = Path(os.environ.get("QYX_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{page.stem}.png"
    _chromium(["--virtual-time-budget=5000", f"--screenshot={png}", page.as_uri()],
              tmp_path / f"shot_{page.stem}")
    assert png.exists() and png.stat().st_size > 10_000
    return png


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from qyx_geo.audit import run_audit

    out = tmp_path_factory.mktemp("maps")
    graph = toy.toy_grid_graph()
    result = run_audit(toy.toy_audit_dataset(), year=2027, services=["canteen"], network=graph)
    paths = maps.write_audit_maps(result, out, roads=graph)
    return {p.stem: p for p in paths}, result


def test_service_map_draws_every_layer_offline(pages, tmp_path):
    paths, result = pages
    report = probe(paths["canteen"], tmp_path)
    assert "probeError" not in report, report.get("probeError")
    assert report["qyx"]["errors"] == []
    assert report["qyx"]["failed"] == []
    assert [r for r in report["resources"] if not r.startswith("data:")] == []
    assert report["qyx"]["dialogs"] == []
    audit = result.services["canteen"]
    drawn = report["drawn"]
    assert drawn["circles"] == len(audit.facilities) + len(audit.gaps)
    # 4 units + 3 isochrone tiers + 2 township outlines + county outline + main roads
    assert drawn["paths"] >= 4 + 3 + 2 + 1 + 1
    assert report["svgPaths"] >= drawn["paths"] + drawn["circles"]
    assert sorted(report["labels"]) == ["白沙路街道", "观海卫镇"]
    control = dict(report["control"])
    assert control["离线矢量底图 Vector basemap (offline)"] is True
    assert control["高德地图 Gaode (在线 online, GCJ-02)"] is False
    assert control["OpenStreetMap (在线 online)"] is False
    for name in ("15分钟可达范围", "老年助餐设施", "未覆盖居民点", "村社覆盖率"):
        assert any(k.startswith(name) and on for k, on in control.items()), name
    for part in ("title", "notice", "legend"):
        assert report[part]["shown"], part
    assert "合成数据" in report["notice"]["text"]
    assert "老年助餐15分钟服务圈" in report["title"]["text"]


def test_malicious_names_show_as_text_and_run_nothing(pages, tmp_path):
    paths, _ = pages
    report = probe(paths["canteen"], tmp_path)
    assert report["qyx"]["dialogs"] == []
    assert report["injectedElements"] == 0
    texts = "\n".join(report["texts"])
    assert toy.XSS in texts  # a unit's tooltip and a facility's popup show the name as text
    assert toy.TEMPLATE_XSS in texts
    assert "60岁以上人口" in texts and "容量 Capacity" in texts


def test_overview_map_draws(pages, tmp_path):
    paths, _ = pages
    report = probe(paths["overview"], tmp_path)
    assert report["qyx"]["errors"] == [] and report["qyx"]["failed"] == []
    assert report["drawn"]["paths"] >= 4 + 2 + 1
    assert report["notice"]["shown"] and report["legend"]["shown"]
    assert any("✓" in t or "✗" in t for t in report["texts"])


def test_gaode_base_layer_shifts_overlays_to_gcj02(pages, tmp_path):
    paths, _ = pages
    gcj = probe(paths["canteen"], tmp_path, extra=GCJ_PROBE)["extra"]
    assert gcj["active"] is True and gcj["inactiveAfter"] is False
    before, shifted = np.array(gcj["before"]), np.array(gcj["shifted"])
    assert len(before) >= 7
    exp_lon, exp_lat = wgs84_to_gcj02(before[:, 0], before[:, 1])
    # E's exact offset vs the page's interpolated one: well under 0.1 m (1e-6 deg)
    np.testing.assert_allclose(shifted[:, 0], exp_lon, atol=1e-6)
    np.testing.assert_allclose(shifted[:, 1], exp_lat, atol=1e-6)
    assert np.all(np.abs(shifted - before) > 1e-3)  # Cixi's shift is ~450 m E, ~250 m S
    np.testing.assert_array_equal(np.array(gcj["restored"]), before)


def test_screenshots_show_the_map(pages, tmp_path):
    from PIL import Image

    paths, _ = pages
    for page in paths.values():
        png = screenshot(page, tmp_path)
        pixels = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
        colours = {tuple(p) for p in pixels[:: 7]}
        assert len(colours) > 50, f"{png} looks blank"
        # the notice box's opaque background (#fff3cd) is on screen
        assert np.sum(np.all(pixels == (0xFF, 0xF3, 0xCD), axis=1)) > 5_000


def test_map_opened_on_gaode_starts_shifted(pages, tmp_path):
    _, result = pages
    m = maps.service_map(result.services["canteen"], result.dataset, tiles="gaode")
    page = maps.save_map(m, tmp_path / "gaode.html")
    extra = (FIXTURES / "probe_gcj_initial.html").read_text(encoding="utf-8")
    report = probe(page, tmp_path, extra=extra)
    assert report["qyx"]["errors"] == []
    # only the Gaode tiles were asked for (and failed: the network is blocked)
    failed = report["qyx"]["failed"]
    assert failed and all("autonavi.com" in url for url in failed), failed
    gcj = report["extra"]
    assert gcj["active"] is True
    pts = np.array(gcj["points"])
    exp_lon, exp_lat = wgs84_to_gcj02(pts[:, 0], pts[:, 1])
    np.testing.assert_allclose(pts[:, 2], exp_lon, atol=1e-6)
    np.testing.assert_allclose(pts[:, 3], exp_lat, atol=1e-6)


def test_county_map_draws_the_surface_as_one_image(pages, tmp_path):
    from qyx_geo.surfaces import travel_time_surface

    _, result = pages
    audit = result.services["canteen"]
    surface = travel_time_surface(result.net, audit.facilities, cutoff_minutes=15)
    m = maps.service_map(audit, result.dataset, roads=toy.toy_grid_graph(), surface=surface)
    page = maps.save_map(m, tmp_path / "surface.html")
    report = probe(page, tmp_path, extra=SURFACE_PROBE)
    assert report["qyx"]["errors"] == [] and report["qyx"]["failed"] == []
    img = report["extra"]
    assert img["n"] == 1 and img["loaded"] and min(img["natural"]) > 10
    (w, s, e, n), = img["before"]
    # the image covers the reached cells: every facility lies inside it
    fac = audit.facilities.to_crs("EPSG:4326")
    assert ((fac.geometry.x > w) & (fac.geometry.x < e) & (fac.geometry.y > s)
            & (fac.geometry.y < n)).all()
    # on the Gaode base its corners move by the GCJ-02 offset, and back
    (sw, ss, se, sn), = img["shifted"]
    exp_w, exp_s = wgs84_to_gcj02(np.array([w]), np.array([s]))
    exp_e, exp_n = wgs84_to_gcj02(np.array([e]), np.array([n]))
    np.testing.assert_allclose([sw, ss, se, sn], [exp_w[0], exp_s[0], exp_e[0], exp_n[0]],
                               atol=1e-6)
    assert img["restored"] == img["before"]
    assert any("可达时间面 surface" in label and on for label, on in report["control"])


def test_title_clears_the_layer_control(pages, tmp_path):
    """The title box sat centred, under the expanded layer control on narrower screens."""
    paths, _ = pages
    extra = ("<script>window.__qyxExtra = function () {"
             "var r = function (s) { var b = document.querySelector(s).getBoundingClientRect();"
             " return [b.left, b.top, b.right, b.bottom]; };"
             "return {title: r('#qyx-title'), layers: r('.leaflet-control-layers'),"
             " zoom: r('.leaflet-control-zoom')}; };</script>")
    for name, window in (("canteen", "1024,768"), ("overview", "1280,900")):
        boxes = probe(paths[name], tmp_path, extra=extra, window=window)["extra"]
        title = boxes["title"]
        for other in ("layers", "zoom"):
            o = boxes[other]
            overlap = (min(title[2], o[2]) > max(title[0], o[0])
                       and min(title[3], o[3]) > max(title[1], o[1]))
            assert not overlap, (name, other, boxes)
