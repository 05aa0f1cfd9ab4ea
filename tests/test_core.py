from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from qyx_geo._errors import QyxGeoError, SettingsError, UnknownServiceError
from qyx_geo._io import atomic_path, atomic_write_text
from qyx_geo.services import SERVICES, get_service
from qyx_geo.settings import Settings


def test_settings_defaults_and_speed():
    s = Settings()
    assert s.speed_m_per_min() == pytest.approx(1000 / 15)
    assert s.speed_kmh("cycle") == 15.0
    assert s.replace(min_share=0.5).min_share == 0.5


@pytest.mark.parametrize(
    "bad",
    [{"walk_speed_kmh": 0}, {"min_share": 1.5}, {"mode": "car"},
     {"threshold_minutes": {"canteen": -1}},
     # accepted before: each made every unit pass (or none) and still exit 0
     {"walk_speed_kmh": math.inf}, {"walk_speed_kmh": 1e308}, {"cycle_speed_kmh": 1e-300},
     {"elderly_walk_speed_kmh": math.nan}, {"threshold_minutes": {"canteen": 1e9}},
     {"threshold_minutes": {"canteen": math.inf}}, {"min_share": True}, {"min_share": 0},
     {"min_share": "0.8"}, {"max_snap_m": math.inf}, {"max_snap_m": 1e7},
     {"street_width_m": math.inf}, {"threshold_minutes": 15},
     {"threshold_minutes": {"canteen": True}}],
)
def test_settings_rejects_bad_values(bad):
    with pytest.raises(SettingsError, match=next(iter(bad))):
        Settings(**bad)


def test_settings_threshold_for_unknown_service():
    with pytest.raises(UnknownServiceError, match="library"):
        Settings(threshold_minutes={"library": 10})


def test_settings_normalise_numbers_and_stay_immutable():
    s = Settings(walk_speed_kmh=np.int64(5), threshold_minutes={"canteen": np.float64(10)})
    assert type(s.walk_speed_kmh) is float and s.walk_speed_kmh == 5.0
    assert s.threshold_minutes == {"canteen": 10.0}
    assert type(s.threshold_minutes["canteen"]) is float
    # range edges are inclusive (min_share's lower edge is open)
    assert Settings(walk_speed_kmh=10, min_share=1.0, max_snap_m=5000).max_snap_m == 5000.0


def test_check_setting():
    from qyx_geo.settings import RANGES, check_setting

    assert set(RANGES) < {f.name for f in dataclasses.fields(Settings)}
    assert check_setting("threshold_minutes", np.float32(10)) == 10.0
    with pytest.raises(SettingsError, match="finite"):
        check_setting("threshold_minutes", math.nan)
    with pytest.raises(SettingsError, match="Unknown setting"):
        check_setting("speed", 4)


def test_settings_refuses_unknown_keys():
    with pytest.raises(SettingsError, match="walk_speed"):
        Settings.from_mapping({"walk_sped_kmh": 4})


def test_service_registry():
    assert {"nursery", "canteen", "clinic", "sports"} <= set(SERVICES)  # plus the data-defined ones
    assert get_service("canteen").demand_column == "pop_60p"
    with pytest.raises(UnknownServiceError, match="registered services"):
        get_service("library")
    with pytest.raises(KeyError):
        get_service("library")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_errors_inherit_builtins():
    assert issubclass(SettingsError, ValueError)
    assert issubclass(SettingsError, QyxGeoError)


def test_atomic_write_uses_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "ok")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_public_surface_is_lazy_and_complete():
    import subprocess
    import sys

    import qyx_geo

    for name in qyx_geo.__all__:
        assert getattr(qyx_geo, name) is not None, name
    # importing the package must not import the heavy stack (no side effects at import)
    code = "import sys, qyx_geo; print('osmnx' in sys.modules, 'geopandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    with pytest.raises(AttributeError, match="no attribute"):
        _ = qyx_geo.not_a_thing


def test_safe_table_guards_text_only():
    import pandas as pd

    from qyx_geo._tables import FORMULA_PREFIXES, safe_cell, safe_table

    frame = pd.DataFrame({"=h": ["=1+1", "ok", None], "n": [-1.0, 2.0, np.nan],
                          "c": pd.Categorical(["@x", "y", "@x"]), "b": [True, False, True]},
                         index=pd.Index(["-id", "+id", "\tid"], name="@idx"))
    out = safe_table(frame)
    assert list(out["'=h"].iloc[:2]) == ["'=1+1", "ok"] and pd.isna(out["'=h"].iloc[2])
    assert list(out.columns) == ["'=h", "n", "c", "b"] and out.index.name == "'@idx"
    assert list(out.index) == ["'-id", "'+id", "'\tid"]
    assert list(out["c"]) == ["'@x", "y", "'@x"]
    pd.testing.assert_series_equal(out["n"], frame["n"].set_axis(out.index))
    assert out["b"].dtype == bool
    assert frame.iloc[0, 0] == "=1+1"  # input untouched
    pd.testing.assert_frame_equal(safe_table(out), out)  # idempotent
    assert all(safe_cell(p + "x") == "'" + p + "x" for p in FORMULA_PREFIXES)
