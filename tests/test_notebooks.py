"""The planner notebooks (notebooks/*.ipynb) run end to end, offline, in this venv's Python.

Each notebook is executed with nbclient in a kernel started explicitly with ``sys.executable``
(so it is this venv's interpreter, whatever kernelspecs the machine has). All notebooks share the
session's warm network cache (``QYX_CACHE_DIR`` from conftest), filled once by ``warm_network``.
A failure in any cell fails the test; then the outputs are checked for what a planner sees:
inline maps that load nothing from the internet, and charts with their Chinese labels rendered.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = ("01_quickstart", "02_township", "03_what_if", "04_own_data")
KERNEL = "qyx-venv-python"
TIMEOUT_S = 240  # per cell; a warm run of a whole notebook takes 10-20 s on 2 cores
#: charts per notebook (matplotlib PNGs) and inline maps, at least
EXPECTED = {"01_quickstart": (0, 1), "02_township": (2, 1), "03_what_if": (2, 1),
            "04_own_data": (0, 1)}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Jupyter data dir holding a kernelspec that runs this very interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "qyx_geo venv", "language": "python"}), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def warm_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fill the session's network cache once, so each notebook reads it in about a second."""
    from qyx_geo.audit import network_arrays
    from qyx_geo.network import default_network_path

    if not default_network_path().exists():
        pytest.skip(f"the embedded street network {default_network_path()} is not in data/ yet "
                    "(python -m qyx_geo.synth writes it)")
    # same folder as conftest's _isolated_cache, which is function-scoped and not active yet
    cache = Path(os.environ.get("QYX_CACHE_DIR")
                 or tmp_path_factory.getbasetemp() / "qyx_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QYX_CACHE_DIR", str(cache))
        network_arrays("default")
    return cache


def _run(nb: nbformat.NotebookNode, kernel_dir: Path, monkeypatch: pytest.MonkeyPatch,
         cache: Path | None = None) -> None:
    # the kernel inherits os.environ: find our kernelspec, share the warm cache, stay offline
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    if cache is not None:
        monkeypatch.setenv("QYX_CACHE_DIR", str(cache))
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name=KERNEL, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_the_four_notebooks_are_there() -> None:
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == list(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (name, cell.source[:60])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_opens_with_chinese_and_english_explanation(name: str) -> None:
    first = _read(name).cells[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith("# ")
    assert "这个笔记本回答" in first.source and "This notebook answers" in first.source
    assert len(_CJK.findall(first.source)) > 30


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_use_only_the_public_api(name: str) -> None:
    source = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
    private = re.findall(r"qyx_geo(?:\.\w+)*\._\w+|from qyx_geo\.\w+ import _\w+", source)
    assert not private, private


def test_kernel_is_this_interpreter(kernel_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, qyx_geo; print(sys.executable); print(qyx_geo.__file__)")])
    _run(nb, kernel_dir, monkeypatch)
    text = nb.cells[0].outputs[0]["text"].splitlines()
    assert Path(text[0]).resolve() == Path(sys.executable).resolve()
    import qyx_geo

    assert Path(text[1]).resolve() == Path(qyx_geo.__file__).resolve()


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_cleanly(name: str, kernel_dir: Path, warm_network: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _read(name)
    start = time.perf_counter()
    try:
        _run(nb, kernel_dir, monkeypatch, cache=warm_network)
    except CellExecutionError as err:  # the message holds the cell and its traceback
        pytest.fail(f"{name}.ipynb failed:\n{err}")
    took_s = time.perf_counter() - start
    assert took_s < 120, f"{name}.ipynb took {took_s:.0f} s with a warm cache"

    outputs = _outputs(nb)
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    maps = [o["data"]["text/html"] for o in outputs
            if "<iframe srcdoc=" in o.get("data", {}).get("text/html", "")]
    want_images, want_maps = EXPECTED[name]
    assert len(images) >= want_images, f"{name}: {len(images)} charts"
    assert len(maps) >= want_maps, f"{name}: {len(maps)} inline maps"
    for page in maps:
        # every script and style inlined: nothing fetched from a CDN when shown offline
        fetched = re.findall(r"&lt;(?:script|link)\b[^&]*(?:&(?!gt;)[^&]*)*?"
                             r"(?:src|href)=&quot;(https?://[^&]+)", page)
        assert not fetched, (name, fetched[:3])
        assert "L.map(" in page or "L.map (" in page
    stderr = "".join(o.get("text", "") for o in outputs
                     if o.output_type == "stream" and o.name == "stderr")
    from qyx_geo.charts import cjk_font_name

    if cjk_font_name() is not None:  # with a CJK font installed, no label may lose a glyph
        assert "missing from font" not in stderr, stderr[:500]
    assert "Traceback" not in stderr


def test_notebooks_take_example_data_from_data_not_tests() -> None:
    """Example inputs live in data/examples/ (shipped with the data), never in tests/fixtures."""
    for name in NOTEBOOKS:
        source = "\n".join(c.source for c in _read(name).cells if c.cell_type == "code")
        assert "fixtures" not in source and "tests/" not in source, name
    example = ROOT / "data" / "examples" / "canteen_register_synthetic_gbk_gcj02.csv"
    assert "data/examples/canteen_register_synthetic_gbk_gcj02.csv" in "\n".join(
        c.source for c in _read("04_own_data").cells)
    # the example is the intake tests' fixture, whose known answers they check
    fixture = ROOT / "tests" / "fixtures" / "registers" / "canteen_mixed_gbk_gcj02.csv"
    assert example.read_bytes() == fixture.read_bytes()
