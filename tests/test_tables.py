"""Formula-injection guard of the batch's merged tables (the other writers are tested beside
their own tests: test_report, test_intake, test_siting)."""

from __future__ import annotations

import pandas as pd
from _spreadsheets import EVIL, assert_csv_safe, assert_xlsx_safe


def test_batch_merged_tables_neutralise_formulas(tmp_path):
    from qyx_geo._batch_merge import write_merged
    from qyx_geo.batch import BatchOptions, RegionOutcome

    units = pd.DataFrame({"name": [EVIL[0], EVIL[5]], "canteen_share_within": [0.5, 1.0]},
                         index=pd.Index(["330281001001", "330281001002"], name="code"))
    towns = pd.DataFrame({"township_name": [EVIL[1]], "canteen_share_passing": [0.5]},
                         index=pd.Index(["330281001"], name="township_code"))
    summary = {"services": {"canteen": {"units_judged": 2, "units_passing": 1,
                                        "share_passing": 0.5, "residents_within_share": 0.6,
                                        "target": {"value": 0.95}, "met": False,
                                        "shortfall_units": 1}}}
    outcome = RegionOutcome(region_id="a", pack=str(tmp_path), out_dir=str(tmp_path),
                            status="done", code="330281", name=EVIL[3], units=units,
                            townships=towns, summary=summary)
    out = tmp_path / "batch"
    out.mkdir()
    write_merged([outcome], out, options=BatchOptions(year=2027))
    assert_csv_safe(out / "all_units.csv", expect=(EVIL[0], EVIL[5], EVIL[3]))
    assert_csv_safe(out / "all_townships.csv", expect=(EVIL[1],))
    assert_csv_safe(out / "counties.csv", expect=(EVIL[3],))
    cells = assert_xlsx_safe(out / "counties.xlsx", expect=(EVIL[3],))
    assert {c.data_type for c in cells if isinstance(c.value, float)} == {"n"}
