"""The audit's second core: a step run in a forked child (qyx_geo._fork)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qyx_geo._errors import QyxGeoError
from qyx_geo._fork import Background

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                                reason="forks only on Linux with two or more cores")

# Run in a fresh interpreter: its only thread is the main one, as in `qyx audit`, whatever
# threads earlier tests left running in this process.
_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, time
    from qyx_geo._errors import DataFileError
    from qyx_geo._fork import Background, Gathered, can_fork

    out = {"can_fork": can_fork(), "parent": os.getpid()}

    def attempt(fn, **kw):
        try:
            job = Background(fn, **kw)
            return {"forked": job.forked, "value": job.result()}
        except BaseException as err:
            return {"error": type(err).__name__, "message": str(err)}

    out["value"] = attempt(lambda: {"pid": os.getpid(), "x": [1, 2]},
                           finish=lambda v: {**v, "finished_in": os.getpid()})
    out["inline"] = attempt(lambda: os.getpid(), parallel=False)
    def own_error():
        raise DataFileError("缺少文件 missing.csv")
    out["own_error"] = attempt(own_error)
    def os_error():
        open("/nonexistent-dir/x.html", "w")
    out["os_error"] = attempt(os_error)
    def bug():
        return 1 / 0
    out["bug"] = attempt(bug)
    out["killed"] = attempt(lambda: os.kill(os.getpid(), signal.SIGKILL))
    out["not_json"] = attempt(lambda: {1, 2})

    both = Gathered([Background(lambda: 1), Background(lambda: [os.getpid()])],
                    finish=lambda values: values)
    out["gathered"] = both.result()
    def fails_soon():
        time.sleep(0.2)
        raise DataFileError("second failed")
    slow = Background(lambda: time.sleep(60))
    start = time.perf_counter()
    try:
        Gathered([Background(fails_soon), slow], finish=lambda v: v).result()
    except DataFileError as err:
        out["gathered_error"] = str(err)
    out["gathered_s"] = time.perf_counter() - start

    job = Background(lambda: time.sleep(60))
    start = time.perf_counter()
    job.close()
    job.close()
    out["close_s"] = time.perf_counter() - start
    try:
        os.waitpid(-1, os.WNOHANG)
        out["children_left"] = True
    except ChildProcessError:
        out["children_left"] = False
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def outcome() -> dict:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_value_comes_back_from_a_child(outcome: dict) -> None:
    assert outcome["can_fork"]
    got = outcome["value"]
    assert got["forked"]
    assert got["value"]["x"] == [1, 2]
    assert got["value"]["pid"] != outcome["parent"]  # computed in the child
    assert got["value"]["finished_in"] == outcome["parent"]  # finish runs in the caller


def test_inline_when_asked(outcome: dict) -> None:
    assert outcome["inline"] == {"forked": False, "value": outcome["parent"]}


def test_errors_keep_their_type(outcome: dict) -> None:
    assert outcome["own_error"] == {"error": "DataFileError", "message": "缺少文件 missing.csv"}
    assert outcome["os_error"]["error"] == "FileNotFoundError"
    assert "/nonexistent-dir/x.html" in outcome["os_error"]["message"]
    # a bug is not dressed up as a user error: its traceback comes along
    assert outcome["bug"]["error"] == "RuntimeError"
    assert "ZeroDivisionError" in outcome["bug"]["message"]
    assert "in bug" in outcome["bug"]["message"]


def test_a_child_without_result_is_an_error(outcome: dict) -> None:
    assert outcome["killed"]["error"] == "QyxGeoError"
    assert "signal 9" in outcome["killed"]["message"]
    assert outcome["not_json"]["error"] == "RuntimeError"  # a value that is not JSON: a bug
    assert "not JSON serializable" in outcome["not_json"]["message"]


def test_close_stops_a_running_child(outcome: dict) -> None:
    assert outcome["close_s"] < 30  # not the child's 60 s
    assert not outcome["children_left"]


def test_gathered_steps(outcome: dict) -> None:
    first, second = outcome["gathered"]
    assert first == 1 and second[0] != outcome["parent"]
    # one step's error ends the others at once (not after the slow one's 60 s)
    assert outcome["gathered_error"] == "second failed"
    assert outcome["gathered_s"] < 30


def test_inline_errors_are_raised_by_result() -> None:
    def broken() -> None:
        raise QyxGeoError("x")

    job = Background(broken, parallel=False)
    with pytest.raises(QyxGeoError, match="x"):
        job.result()


_AUDIT = textwrap.dedent("""
    import errno, json, os, sys
    from pathlib import Path
    import pytest
    sys.path.insert(0, sys.argv[1])
    from _audit_fixtures import use_tiny_dataset
    import qyx_geo.maps as maps
    from qyx_geo.cli import main

    mp = pytest.MonkeyPatch()
    use_tiny_dataset(mp)
    out, pids = Path(sys.argv[2]), []
    real = maps.write_audit_maps

    def spy(*args, **kwargs):
        Path(sys.argv[3]).write_text(str(os.getpid()))
        return real(*args, **kwargs)

    mp.setattr(maps, "write_audit_maps", spy)
    first = main(["audit", "--out", str(out), "--services", "canteen"])
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "maps" / "canteen.html"))

    mp.setattr(maps, "write_audit_maps", full)
    second = main(["audit", "--out", str(out), "--services", "canteen"])
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    print(json.dumps({"parent": os.getpid(), "first": first, "second": second,
                      "unchanged": before == after, "files": sorted(before)}))
""")


def test_audit_draws_maps_in_a_child_and_a_failure_changes_nothing(tmp_path) -> None:
    tests = str(Path(__file__).parent)
    pid_file = tmp_path / "maps.pid"
    proc = subprocess.run([sys.executable, "-c", _AUDIT, tests, str(tmp_path / "out"),
                           str(pid_file)], capture_output=True, text=True, timeout=300)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["first"] == 0
    assert int(pid_file.read_text()) != got["parent"]  # the maps were drawn in a child
    assert {"maps/canteen.html", "maps/overview.html", "maps/surfaces/canteen.tif",
            "run.json"} <= set(got["files"])
    # the child's disk-full error reaches the parent: one line, exit 2, previous set intact
    assert got["second"] == 2 and got["unchanged"]
    assert "disk full" in proc.stderr and "canteen.html" in proc.stderr
    assert "Traceback" not in proc.stderr
