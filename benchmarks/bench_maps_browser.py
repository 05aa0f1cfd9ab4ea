"""How heavy the audit's HTML maps are in a real browser: load, pan and zoom in headless Chromium.

For every ``*.html`` of a maps folder (``qyx audit`` writes ``<out>/maps``), a probed copy is
opened offline in Debian's headless Chromium (network blocked, as in tests/test_maps_browser.py).
The probe runs in the page's ``load`` handler, synchronously, so ``--dump-dom`` waits for it:

* ``load_ms`` — navigation start to the load event (parsing the inlined data, Leaflet drawing);
* ``pan_ms`` — median and worst of 20 ``panBy(250 px)`` steps, each followed by a forced layout
  (JS and layout of one pan; painting is not included);
* ``zoom_ms`` — median and worst of 6 zoom steps in and out (Leaflet redraws every path);
* the SVG paths and images on the page.

Run: ``.venv/bin/python benchmarks/bench_maps_browser.py outputs/maps [more folders]``.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--proxy-server=http://127.0.0.1:9",
         "--proxy-bypass-list=<-loopback>", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--window-size=1280,900")

PROBE = """<script>
window.addEventListener("load", function () {
  var out = {};
  try {
    var map = window[document.querySelector(".folium-map").id];
    var t = performance.timing;
    out.load_ms = t.loadEventStart - t.navigationStart;
    function step(f) {
      var a = performance.now(); f();
      document.querySelector(".leaflet-map-pane").getBoundingClientRect();
      return performance.now() - a;
    }
    var pans = [], zooms = [];
    for (var i = 0; i < 20; i++) {
      var dx = (i % 4 < 2 ? 250 : -250);
      pans.push(step(function () { map.panBy([dx, 0], {animate: false}); }));
    }
    var z = map.getZoom();
    [1, 1, 1, -1, -1, -1].forEach(function (d) {
      zooms.push(step(function () { map.setZoom(map.getZoom() + d, {animate: false}); }));
    });
    function stats(v) { v = v.slice().sort(function (a, b) { return a - b; });
      return [v[Math.floor(v.length / 2)], v[v.length - 1]]; }
    out.pan_ms = stats(pans); out.zoom_ms = stats(zooms); out.zoom = z;
    out.svg_paths = document.querySelectorAll(".leaflet-overlay-pane svg path").length;
    out.images = document.querySelectorAll(".leaflet-overlay-pane img").length;
  } catch (err) { out.error = String(err); }
  var pre = document.createElement("pre"); pre.id = "qyx-bench";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def measure(page: Path, chromium: str, work: Path) -> dict:
    text = page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>", 1)
    probed = work / page.name
    probed.write_text(text, encoding="utf-8")
    dom = subprocess.run([chromium, *FLAGS, f"--user-data-dir={work / 'profile'}", "--dump-dom",
                          probed.as_uri()], capture_output=True, text=True, timeout=300).stdout
    found = re.search(r'<pre id="qyx-bench">(.*?)</pre>', dom, re.DOTALL)
    return json.loads(html.unescape(found.group(1))) if found else {"error": "no report"}


def main(argv: list[str] | None = None) -> int:
    folders = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
    if not folders or chromium is None:
        print("usage: bench_maps_browser.py MAPS_DIR [...] (needs chromium)")
        return 2
    print("| map | MB | load ms | pan ms (median / worst) | zoom ms (median / worst) | "
          "SVG paths | images |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for folder in folders:
        for page in sorted(folder.glob("*.html")):
            with tempfile.TemporaryDirectory() as tmp:
                r = measure(page, chromium, Path(tmp))
            if "error" in r:
                print(f"| {folder.name}/{page.name} | error: {r['error']} |")
                continue
            print(f"| {folder.name}/{page.name} | {page.stat().st_size / 1e6:.2f} | "
                  f"{r['load_ms']} | {r['pan_ms'][0]:.1f} / {r['pan_ms'][1]:.1f} | "
                  f"{r['zoom_ms'][0]:.0f} / {r['zoom_ms'][1]:.0f} | {r['svg_paths']} | "
                  f"{r['images']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
