"""Tests of qyx_geo.siting: the optimisation core on hand-checked instances, then the county."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from qyx_geo._errors import SettingsError, SolverError
from qyx_geo.siting._model import (
    CoverageProblem,
    gain_order,
    reduce_problem,
    solve_greedy,
    solve_milp,
)


def _problem(cover_sets, *, n_clusters, pop=None, unit=None, covered=(), required=None,
             min_share=0.8, cost=None, judged=None):
    cover = np.zeros((len(cover_sets), n_clusters), dtype=bool)
    for c, ks in enumerate(cover_sets):
        cover[c, list(ks)] = True
    unit = np.arange(n_clusters) if unit is None else np.asarray(unit)
    n_units = int(unit.max()) + 1
    judged = np.ones(n_units, dtype=bool) if judged is None else np.asarray(judged)
    covered_now = np.zeros(n_clusters, dtype=bool)
    covered_now[list(covered)] = True
    return CoverageProblem(
        cover=sp.csr_matrix(cover),
        pop=np.full(n_clusters, 10.0) if pop is None else np.asarray(pop, dtype=float),
        unit=unit, covered_now=covered_now, judged=judged, min_share=min_share,
        required_units=int(judged.sum()) if required is None else required,
        cost=None if cost is None else np.asarray(cost, dtype=float),
    )


def _passing(problem, chosen):
    """Judged units passing with ``chosen`` open — computed independently of the model."""
    reached = problem.covered_now | (np.asarray(problem.cover[list(chosen), :].sum(axis=0))
                                     .ravel() > 0)
    got = np.bincount(problem.unit, weights=np.where(reached, problem.pop, 0.0),
                      minlength=problem.n_units)
    total = np.bincount(problem.unit, weights=problem.pop, minlength=problem.n_units)
    ok = (total > 0) & (got >= problem.min_share * total - 1e-9)
    return int((ok & problem.judged).sum())


# Six one-cluster units. Greedy takes the big set {1,2,3,4} first and then needs two more
# sites for units 0 and 5; the optimum is the two side sets {0,1,2} and {3,4,5}.
TRAP = {"cover_sets": [{1, 2, 3, 4}, {0, 1, 2}, {3, 4, 5}], "n_clusters": 6}


def test_set_covering_milp_beats_greedy_on_the_trap():
    r = reduce_problem(_problem(**TRAP))
    exact = solve_milp(r, objective="min_sites")
    greedy = solve_greedy(r, objective="min_sites")
    assert exact.chosen.tolist() == [1, 2]
    assert (exact.objective, exact.bound, exact.gap, exact.status) == (2.0, 2.0, 0.0, "optimal")
    assert greedy.chosen.tolist() == [0, 1, 2]
    assert greedy.objective == 3.0
    assert exact.units_newly_passing == greedy.units_newly_passing == 6


def test_maximal_covering_with_max_sites():
    r = reduce_problem(_problem(**TRAP))
    one = solve_milp(r, objective="max_units", max_sites=1)
    assert (one.chosen.tolist(), one.objective) == ([0], 4.0)
    two = solve_milp(r, objective="max_units", max_sites=2)
    assert (two.chosen.tolist(), two.objective, two.bound) == ([1, 2], 6.0, 6.0)
    greedy_two = solve_greedy(r, objective="max_units", max_sites=2)
    assert greedy_two.chosen.size == 2
    assert greedy_two.objective == 5.0
    assert solve_milp(r, objective="max_units", max_sites=0).chosen.size == 0


def test_budget_is_respected():
    problem = _problem(**TRAP, cost=[1.0, 3.0, 3.0])
    r = reduce_problem(problem)
    for sol in (solve_milp(r, objective="max_units", budget=4.0),
                solve_greedy(r, objective="max_units", budget=4.0)):
        assert problem.costs()[sol.chosen].sum() <= 4.0
        assert sol.objective == 5.0
        assert _passing(problem, sol.chosen) == 5
    # a budget below every cost opens nothing
    assert solve_milp(r, objective="max_units", budget=0.5).chosen.size == 0


def test_existing_coverage_is_respected():
    # units 0 and 5 are covered today: the big site alone finishes the job
    problem = _problem(**TRAP, covered={0, 5})
    r = reduce_problem(problem)
    assert r.passing_now == 2
    assert r.stats["units_open"] == 4
    for sol in (solve_milp(r, objective="min_sites"), solve_greedy(r, objective="min_sites")):
        assert sol.chosen.tolist() == [0]
    # a target already met needs nothing
    met = reduce_problem(_problem(**TRAP, covered=set(range(6))))
    assert solve_milp(met, objective="min_sites").status == "nothing_to_do"


def test_min_share_within_a_unit():
    # one unit of three clusters (50, 30, 20 residents) needs 80 % = 80 residents:
    # site 0 reaches the 50, site 1 the 30, site 2 the 30 and the 20 (only 50).
    problem = _problem([{0}, {1}, {1, 2}], n_clusters=3, pop=[50, 30, 20], unit=[0, 0, 0])
    r = reduce_problem(problem)
    sol = solve_milp(r, objective="min_sites")
    assert sol.objective == 2.0
    assert _passing(problem, sol.chosen) == 1
    # site 1 is dominated by site 2 (same cost, fewer clusters)
    assert r.stats["candidates_dominated"] == 1
    assert sol.chosen.tolist() == [0, 2]
    # at min_share 1.0 all three clusters are needed: sites 0 and 2
    full = solve_milp(reduce_problem(_problem([{0}, {1}, {1, 2}], n_clusters=3,
                                              pop=[50, 30, 20], unit=[0, 0, 0],
                                              min_share=1.0)), objective="min_sites")
    assert full.chosen.tolist() == [0, 2]


def test_partial_target_picks_the_cheapest_units():
    # 4 units, target 3: units 0-2 share one site, unit 3 needs its own
    problem = _problem([{0, 1, 2}, {3}], n_clusters=4, required=3)
    sol = solve_milp(reduce_problem(problem), objective="min_sites")
    assert sol.chosen.tolist() == [0]


def test_unreachable_units_make_the_target_infeasible():
    # cluster 3 (unit 3) is reached by no candidate
    problem = _problem([{0, 1}, {2}], n_clusters=4)
    r = reduce_problem(problem)
    assert r.unreachable.tolist() == [3]
    for solve in (solve_milp, solve_greedy):
        with pytest.raises(SolverError, match=r"1 failing unit\(s\) cannot reach"):
            solve(r, objective="min_sites")
    # the best partial plan is still available
    assert solve_milp(r, objective="max_units", max_sites=5).objective == 3.0
    # with a target of 3 of 4 it is feasible
    ok = solve_milp(reduce_problem(_problem([{0, 1}, {2}], n_clusters=4, required=3)),
                    objective="min_sites")
    assert ok.objective == 2.0


def test_unjudged_units_are_ignored():
    # unit 1 is not judged (e.g. a community for the village sports target)
    problem = _problem([{0}, {1}], n_clusters=2, judged=[True, False])
    sol = solve_milp(reduce_problem(problem), objective="min_sites")
    assert sol.chosen.tolist() == [0]


def test_gain_order_puts_the_biggest_gain_first():
    problem = _problem([{0}, {1, 2, 3}, {4, 5}], n_clusters=6)
    r = reduce_problem(problem)
    order, units, residents = gain_order(r, np.array([0, 1, 2]))
    assert order.tolist() == [1, 2, 0]
    assert units.tolist() == [3, 2, 1]
    assert residents.tolist() == [30.0, 20.0, 10.0]


def test_results_are_deterministic():
    rng = np.random.default_rng(7)
    problem = _random_problem(rng, n_cand=30, n_units=12)
    r = reduce_problem(problem)
    first = [solve_milp(r, objective="min_sites").chosen.tolist(),
             solve_greedy(r, objective="min_sites").chosen.tolist()]
    for _ in range(2):
        r2 = reduce_problem(problem)
        assert [solve_milp(r2, objective="min_sites").chosen.tolist(),
                solve_greedy(r2, objective="min_sites").chosen.tolist()] == first


def _random_problem(rng, *, n_cand, n_units, per_unit=3, density=0.12, required=None):
    n_clusters = n_units * per_unit
    cover = rng.random((n_cand, n_clusters)) < density
    unit = np.repeat(np.arange(n_units), per_unit)
    pop = rng.integers(1, 60, n_clusters).astype(float)
    covered = rng.random(n_clusters) < 0.2
    problem = CoverageProblem(cover=sp.csr_matrix(cover), pop=pop, unit=unit,
                              covered_now=covered, judged=np.ones(n_units, dtype=bool),
                              min_share=0.7, required_units=0)
    reachable = _passing(problem, range(n_cand))
    return CoverageProblem(cover=sp.csr_matrix(cover), pop=pop, unit=unit, covered_now=covered,
                           judged=np.ones(n_units, dtype=bool), min_share=0.7,
                           required_units=reachable if required is None else required)


@pytest.mark.parametrize("seed", range(6))
def test_milp_matches_brute_force_on_small_random_instances(seed):
    rng = np.random.default_rng(seed)
    problem = _random_problem(rng, n_cand=9, n_units=6, density=0.25)
    r = reduce_problem(problem)
    best = next(k for k in range(problem.n_candidates + 1)
                if any(_passing(problem, s) >= problem.required_units
                       for s in itertools.combinations(range(problem.n_candidates), k)))
    exact = solve_milp(r, objective="min_sites")
    greedy = solve_greedy(r, objective="min_sites")
    assert exact.objective == best
    assert _passing(problem, exact.chosen) >= problem.required_units
    assert _passing(problem, greedy.chosen) >= problem.required_units
    assert greedy.objective >= exact.objective
    # maximal covering with half the optimum's sites
    p = max(1, best // 2)
    most = max(_passing(problem, s) for s in itertools.combinations(range(problem.n_candidates), p))
    mc = solve_milp(r, objective="max_units", max_sites=p)
    assert r.passing_now + mc.objective == most
    assert _passing(problem, mc.chosen) == most
    assert mc.chosen.size <= p


def test_bad_inputs_are_refused():
    with pytest.raises(SettingsError, match="pop"):
        _problem(**TRAP, pop=[1, 2, 3])
    with pytest.raises(SettingsError, match="required_units"):
        _problem(**TRAP, required=7)
    r = reduce_problem(_problem(**TRAP))
    with pytest.raises(SettingsError, match="max_sites"):
        solve_milp(r, objective="max_units", max_sites=-1)
    with pytest.raises(SettingsError, match="time_limit_s"):
        solve_milp(r, objective="min_sites", time_limit_s=0)


def test_explicit_zero_distance_counts_as_reached():
    # catchment_matrix stores 0.0 m for a demand point at the very spot of a candidate
    dist = sp.csr_matrix((np.array([0.0, 250.0]), np.array([0, 1]), np.array([0, 1, 2])),
                         shape=(2, 2))
    problem = CoverageProblem(cover=dist, pop=np.array([5.0, 5.0]), unit=np.array([0, 1]),
                              covered_now=np.zeros(2, dtype=bool),
                              judged=np.ones(2, dtype=bool), min_share=0.8, required_units=2)
    assert problem.cover.nnz == 2
    assert solve_milp(reduce_problem(problem), objective="min_sites").chosen.tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------
# propose_sites on a small synthetic county (a street grid, four villages, one township)

X0, Y0 = 520_000.0, 3_340_000.0   # EPSG:4549, near Cixi
STEP = 100.0                       # grid spacing, m


def _grid_graph(nx_, ny_):
    import networkx as nx

    G = nx.MultiDiGraph(crs="EPSG:4549")
    for i in range(nx_):
        for j in range(ny_):
            G.add_node(i * ny_ + j + 1, x=X0 + i * STEP, y=Y0 + j * STEP)
    for i in range(nx_):
        for j in range(ny_):
            a = i * ny_ + j + 1
            for b in ([a + ny_] if i + 1 < nx_ else []) + ([a + 1] if j + 1 < ny_ else []):
                G.add_edge(a, b, length=STEP)
                G.add_edge(b, a, length=STEP)
    return G


@pytest.fixture(scope="module")
def county():
    """A 2.0 x 0.5 km street grid with four 500 m villages side by side and one canteen.

    Demand points sit 10 m off the streets. With a 5-minute canteen threshold (333 m at
    4 km/h) the canteen at the west end serves only the first village.
    """
    import types

    import geopandas as gpd
    import shapely

    G = _grid_graph(21, 6)
    codes = [f"3302821002{i:02d}" for i in range(1, 5)]
    polys = [shapely.box(X0 + 500 * i - 50, Y0 - 50, X0 + 500 * (i + 1) - 50, Y0 + 550)
             for i in range(4)]
    units = gpd.GeoDataFrame(
        {"name": ["甲村", "乙村", "丙村", "丁社区"], "township_code": "330282100",
         "township_name": "某镇", "kind": ["村委会", "村委会", "村委会", "社区/居委会"],
         "approximate": True, "source": "synthetic"},
        geometry=polys, index=pd.Index(codes, name="code"), crs="EPSG:4549").to_crs("EPSG:4326")
    townships = gpd.GeoDataFrame(
        {"name": ["某镇"], "kind": ["镇"]}, geometry=[shapely.box(X0 - 50, Y0 - 50, X0 + 1950,
                                                               Y0 + 550)],
        index=pd.Index(["330282100"], name="code"), crs="EPSG:4549").to_crs("EPSG:4326")
    rng = np.random.default_rng(3)
    rows = []
    for u, code in enumerate(codes):
        for k in range(6):
            x = X0 + 500 * u + 80 * k + 10
            y = Y0 + 100 * int(rng.integers(0, 5)) + 10
            pop = float(rng.integers(50, 150))
            rows.append((f"d{u}{k}", code, pop, round(pop * 0.03), round(pop * 0.25), x, y))
    demand = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["id", "unit_code", "pop", "pop_0_3", "pop_60p", "x", "y"])
        .set_index("id").drop(columns=["x", "y"]).assign(township_code="330282100",
                                                          source="synthetic"),
        geometry=gpd.points_from_xy([r[5] for r in rows], [r[6] for r in rows]),
        crs="EPSG:4549").to_crs("EPSG:4326")

    def layer(name, xy, cap=np.nan):
        return gpd.GeoDataFrame(
            {"name": [name], "layer": [name], "level": ["村级"], "capacity": [cap],
             "township_code": ["330282100"], "unit_code": [codes[0]], "source": ["synthetic"]},
            geometry=[shapely.Point(*xy)], index=pd.Index([f"{name}-1"], name="id"),
            crs="EPSG:4549").to_crs("EPSG:4326")

    west = (X0 + 200, Y0 + 200)
    facilities = {s: layer(s, west, 20.0 if s == "nursery" else np.nan)
                  for s in ("nursery", "canteen", "clinic", "sports")}
    return types.SimpleNamespace(units=units, townships=townships, demand=demand,
                                 facilities=facilities, network=G)


SETTINGS_5MIN = {"threshold_minutes": {"canteen": 5, "clinic": 5, "sports": 5, "nursery": 5}}


def _settings():
    from qyx_geo.settings import Settings

    return Settings(**SETTINGS_5MIN)


def test_propose_sites_meets_the_target_and_the_audit_agrees(county):
    from qyx_geo.siting import SITE_COLUMNS, propose_sites

    r = propose_sites(county, service="canteen", year=2027, settings=_settings())
    assert r.before["units_passing"] < r.before["required_units"]
    assert r.after["verified"] is True
    assert r.after["met"] is True
    assert r.after["units_passing"] >= r.before["required_units"]
    assert r.status == "optimal"
    assert r.objective == r.n_sites == r.bound
    assert list(r.sites.columns) == list(SITE_COLUMNS)
    assert r.sites["order"].tolist() == list(range(1, r.n_sites + 1))
    assert set(r.sites["unit_code"]) <= set(county.units.index)
    assert (r.sites["residents_new"] > 0).all()
    assert r.greedy_objective is not None and r.greedy_objective >= r.objective
    # the re-run audit is the proof, and the sites sit in the facilities it used
    after = r.audit_after.services["canteen"]
    assert after.county["met"] is True
    assert len(after.facilities) == 1 + r.n_sites


def test_cli_writes_the_sites_table_and_prints_before_after(county, tmp_path, monkeypatch,
                                                            capsys):
    import geopandas as gpd

    import qyx_geo.dataset
    from qyx_geo.cli import main

    ds = county

    class _Loaded:
        units, townships, demand, facilities = ds.units, ds.townships, ds.demand, ds.facilities
        network = None

        def load_network(self):
            return ds.network

    monkeypatch.setattr(qyx_geo.dataset, "load_dataset", lambda **_: _Loaded())
    out = tmp_path / "out"
    code = main(["site", "--service", "sports", "--year", "2027", "--min-share", "0.5",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "现状 before" in printed and "新增 after" in printed
    files = sorted(p.name for p in out.iterdir())
    assert files == [".qyx-outputs.json", "sites_sports_2027.csv", "sites_sports_2027.geojson",
                     "sites_sports_2027.json", "sites_sports_2027.xlsx"]
    raw = (out / "sites_sports_2027.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out / "sites_sports_2027.csv", encoding="utf-8-sig")
    assert "村社 unit_name" in table.columns
    sheet = pd.read_excel(out / "sites_sports_2027.xlsx", sheet_name=None)
    assert set(sheet) == {"拟建站点 sites", "概要 summary"}
    geo = gpd.read_file(out / "sites_sports_2027.geojson")
    assert len(geo) == len(table) > 0
    assert geo.crs.to_epsg() == 4326


@pytest.mark.parametrize("service", ["nursery", "canteen", "clinic", "sports"])
@pytest.mark.parametrize("method", ["milp", "greedy"])
def test_every_service_meets_its_target_when_applied(county, service, method):
    from qyx_geo.siting import propose_sites

    r = propose_sites(county, service=service, year=2027, settings=_settings(), method=method)
    assert r.after["verified"] and r.after["met"] is True
    if service == "nursery":
        # every new site is sized to 5.5 places per 1,000 residents it newly covers
        expected = np.ceil(r.sites["population_new"] * r.capacity["rate_per_1000"] / 1000)
        assert r.sites["capacity"].tolist() == expected.tolist()
        assert r.capacity["places_added"] == r.sites["capacity"].sum()
        assert r.capacity["per_1000_after"] > r.capacity["per_1000_before"]
    else:
        assert r.capacity is None and r.sites["capacity"].isna().all()


def test_max_sites_and_budget_with_user_candidates(county, tmp_path):
    from qyx_geo.siting import propose_sites

    audit_sites = propose_sites(county, service="canteen", year=2027, settings=_settings())
    best = audit_sites.sites
    # the optimum's sites as a user list, plus a dear copy of the first one
    rows = [(f"c{i}", f"候选{i}", lon, lat, 1.0)
            for i, (lon, lat) in enumerate(zip(best["lon"], best["lat"], strict=True))]
    rows.append(("dear", "贵", best["lon"].iloc[0], best["lat"].iloc[0], 10.0))
    path = tmp_path / "cands.csv"
    pd.DataFrame(rows, columns=["id", "name", "lon", "lat", "cost"]).to_csv(path, index=False)
    two = propose_sites(county, service="canteen", year=2027, settings=_settings(),
                        candidates=path, max_sites=2)
    assert two.objective_kind == "max_units"
    assert two.n_sites <= 2
    assert two.after["units_passing"] == two.before["units_passing"] + two.objective
    assert "dear" not in set(two.sites["candidate_id"])
    cheap = propose_sites(county, service="canteen", year=2027, settings=_settings(),
                          candidates=path, budget=2.5)
    assert cheap.sites["cost"].sum() <= 2.5
    full = propose_sites(county, service="canteen", year=2027, settings=_settings(),
                         candidates=path)
    assert full.n_sites == audit_sites.n_sites
    assert full.after["met"] is True


def test_write_sites_neutralises_formulas(county, tmp_path):
    """Candidate ids from a user's file and unit names stay text in the CSV and XLSX."""
    import dataclasses

    from _spreadsheets import EVIL, assert_csv_safe, assert_xlsx_safe

    from qyx_geo.siting import propose_sites, write_sites

    best = propose_sites(county, service="canteen", year=2027, settings=_settings(),
                         verify=False).sites
    ids = [EVIL[i % len(EVIL[:4])] + str(i) for i in range(len(best))]
    path = tmp_path / "cands.csv"
    pd.DataFrame({"id": ids, "lon": best["lon"], "lat": best["lat"]}).to_csv(path, index=False)
    r = propose_sites(county, service="canteen", year=2027, settings=_settings(),
                      candidates=path, verify=False)
    assert set(r.sites["candidate_id"]) == set(ids)
    sites = r.sites.copy()
    sites["unit_name"] = EVIL[4]
    paths = write_sites(dataclasses.replace(r, sites=sites), tmp_path / "out")
    assert_csv_safe(paths["csv"], expect=(*ids, EVIL[4]))
    cells = assert_xlsx_safe(paths["xlsx"], expect=(*ids, EVIL[4]))
    assert {c.data_type for c in cells if isinstance(c.value, float)} == {"n"}


def test_interrupted_write_sites_keeps_the_previous_files(county, tmp_path, monkeypatch):
    """The four files are one set: a failure after the CSV never leaves new CSV beside old XLSX."""
    import geopandas as gpd

    from qyx_geo.siting import propose_sites, write_sites

    r = propose_sites(county, service="canteen", year=2027, settings=_settings(), verify=False)
    paths = write_sites(r, tmp_path)
    before = {p.name: p.read_bytes() for p in paths.values()}
    monkeypatch.setattr(gpd.GeoDataFrame, "to_file",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space left"):
        write_sites(r, tmp_path)
    assert {p.name: p.read_bytes() for p in paths.values()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".qyx-staging")]


def test_unreachable_target_names_the_units_no_candidate_reaches(county):
    import geopandas as gpd
    import shapely

    from qyx_geo.siting import propose_sites

    # one candidate at the west end: the eastern villages stay out of reach
    far = gpd.GeoDataFrame({"name": ["西端"]}, geometry=[shapely.Point(X0, Y0)],
                           index=pd.Index(["w"], name="id"), crs="EPSG:4549")
    with pytest.raises(SolverError, match=r"failing unit\(s\) cannot reach min_share"):
        propose_sites(county, service="canteen", year=2027, settings=_settings(),
                      candidates=far)


def test_proposals_are_deterministic_and_leave_inputs_alone(county):
    from qyx_geo.siting import propose_sites

    before = county.demand.copy()
    runs = [propose_sites(county, service="clinic", year=2027, settings=_settings(),
                          method=m, verify=False) for m in ("milp", "milp", "greedy", "greedy")]
    assert runs[0].sites.drop(columns="geometry").equals(runs[1].sites.drop(columns="geometry"))
    assert runs[2].sites.drop(columns="geometry").equals(runs[3].sites.drop(columns="geometry"))
    assert runs[0].after["verified"] is False
    pd.testing.assert_frame_equal(county.demand, before)


def test_existing_coverage_is_kept(county):
    from qyx_geo.audit import run_audit
    from qyx_geo.siting import propose_sites

    settings = _settings().replace(min_share=0.5)
    audit = run_audit(county, year=2027, services=["canteen"], settings=settings)
    sa = audit.services["canteen"]
    assert sa.county["units_passing"] >= 1          # the west village passes today
    r = propose_sites(audit, service="canteen")
    assert r.year == 2027 and r.settings == settings
    assert r.before["units_passing"] == sa.county["units_passing"]
    after = r.audit_after.services["canteen"]
    # the existing canteen is still there, and still serves whom it served
    assert set(sa.facilities.index) < set(after.facilities.index)
    assert after.points.loc[sa.points["within"], "within"].all()
    # residents newly covered add up to what the re-run audit finds
    gained = after.units["population_within"].sum() - sa.units["population_within"].sum()
    assert r.sites["residents_new"].sum() == pytest.approx(gained, abs=0.5)
    # without the existing canteen at least as many new sites are needed
    bare = dict(county.facilities, canteen=county.facilities["canteen"].iloc[:0])
    none = run_audit(county, year=2027, services=["canteen"], settings=settings,
                     facilities={"canteen": bare["canteen"]})
    assert propose_sites(none, service="canteen").n_sites >= r.n_sites
    with pytest.raises(SettingsError, match="differs from the audit's year"):
        propose_sites(audit, service="canteen", year=2025)


def test_sites_layer_escapes_names(county):
    import folium

    from qyx_geo.siting import propose_sites, sites_layer

    r = propose_sites(county, service="clinic", year=2027, settings=_settings(), verify=False)
    sites = r.sites.copy()
    sites.loc[sites.index[0], "unit_name"] = "<script>alert(1)</script>"
    import dataclasses

    m = folium.Map()
    sites_layer(dataclasses.replace(r, sites=sites)).add_to(m)
    page = m.get_root().render()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
    assert page.count("circle_marker") >= r.n_sites


@pytest.mark.parametrize(("content", "error", "match"), [
    ("id,lon,lat\na,121.2,\n", "CoordinateError", "row 2"),
    ("id,x,y\na,1,2\n", "ColumnError", "'lon' and 'lat'"),
    ("id,lon,lat\na,121.2,30.2\na,121.3,30.2\n", "DuplicateIdError", "'a'"),
    ("id,lon,lat,cost\na,121.2,30.2,-1\n", "DataFileError", "cost"),
])
def test_read_candidates_rejects_bad_files(tmp_path, content, error, match):
    import qyx_geo._errors as errors
    from qyx_geo.siting import read_candidates

    path = tmp_path / "c.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(getattr(errors, error), match=match):
        read_candidates(path)


def test_set_covering_needs_a_target(county):
    from qyx_geo._errors import NoTargetError
    from qyx_geo.siting import propose_sites

    with pytest.raises(NoTargetError, match="max_sites or budget"):
        propose_sites(county, service="canteen", year=2022, settings=_settings())
    r = propose_sites(county, service="canteen", year=2022, settings=_settings(), max_sites=1)
    assert r.n_sites == 1 and r.before["target"] is None


@pytest.fixture(scope="module")
def county_audit():
    """The embedded Cixi dataset audited for 2027 (skipped while its network file is missing)."""
    from qyx_geo.audit import run_audit
    from qyx_geo.dataset import load_dataset

    ds = load_dataset()
    if ds.network_path is None:
        pytest.skip("the embedded dataset has no street network file yet")
    return run_audit(ds, year=2027, network=ds.load_network())


@pytest.mark.slow
@pytest.mark.parametrize("service", ["nursery", "canteen", "clinic", "sports"])
def test_county_proposal_applied_meets_the_2027_target(county_audit, service):
    from qyx_geo.siting import propose_sites

    r = propose_sites(county_audit, service=service, compare=False)
    assert r.status in ("optimal", "nothing_to_do")
    assert r.after["verified"] is True
    assert r.after["met"] is True, (r.before, r.after)
    assert r.sites["unit_code"].notna().all()
