"""Benchmark: exact (MILP, HiGHS) vs greedy siting on the county case, per service.

For each service the county is audited once (the embedded Cixi dataset and its street network),
then :func:`qyx_geo.siting.propose_sites` solves the set-covering question "fewest new sites
so that the plan's target for the year is met" with both methods on the same candidates, and
the maximal-covering question "most units passing with half of those sites". Reported per
service and question: the model's size before/after reduction, each method's objective and solve
time, the MILP's proven bound and gap, greedy's gap to the optimum, and whether the audit re-run
with the MILP's sites meets the target.

Run: ``.venv/bin/python benchmarks/bench_siting.py`` (``--help`` for the options). The figures
of a run are recorded in benchmarks/README.md ("Siting").
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import scipy

from qyx_geo.audit import run_audit
from qyx_geo.dataset import load_dataset
from qyx_geo.engine import build_arrays
from qyx_geo.services import service_ids
from qyx_geo.settings import Settings
from qyx_geo.siting import propose_sites


def _row(service: str, question: str, exact: Any, greedy: Any) -> dict[str, Any]:
    m = exact.model
    return {
        "service": service, "question": question,
        "units": f"{exact.before['units_passing']}/{exact.before['units_judged']}",
        "required": exact.before["required_units"],
        "candidates": f"{m['candidates']}→{m['candidates_kept']}",
        "clusters": f"{m['clusters']}→{m['groups']}",
        "milp_obj": exact.objective, "milp_bound": exact.bound,
        "milp_gap": exact.gap, "milp_status": exact.status,
        "milp_s": round(exact.solve_time_s, 3),
        "greedy_obj": greedy.objective, "greedy_s": round(greedy.solve_time_s, 3),
        "greedy_gap": greedy.gap_to_exact,
        "catchments_s": round(exact.timings_s.get("catchments", float("nan")), 2),
        "verified_met": exact.after.get("met") if exact.after.get("verified") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2027)
    parser.add_argument("--services", nargs="*", default=service_ids())
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--mip-gap", type=float, default=1e-4)
    parser.add_argument("--network", type=Path, default=None,
                        help="street network file (default: the dataset's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    dataset = load_dataset()
    if args.network is not None:
        from qyx_geo.network import load_network

        graph = load_network(args.network)
    else:
        graph = dataset.load_network()
    net = build_arrays(graph)
    audit = run_audit(dataset, year=args.year, services=args.services, settings=Settings(),
                      network=net)
    print(f"# setup (dataset, network, audit of {len(args.services)} services): "
          f"{time.perf_counter() - t0:.1f} s; nodes {net.n_nodes:,}, edges {net.n_edges:,}; "
          f"python {platform.python_version()}, scipy {scipy.__version__}, "
          f"{platform.machine()}")
    rows = []
    for service in args.services:
        common = {"service": service, "time_limit_s": args.time_limit, "mip_gap": args.mip_gap,
                  "compare": False}
        try:
            exact = propose_sites(audit, method="milp", **common)
        except Exception as err:  # report and go on: one service must not hide the others
            print(f"{service}: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        greedy = propose_sites(audit, method="greedy", verify=False, **common)
        greedy = _with_gap(greedy, exact)
        rows.append(_row(service, "min sites", exact, greedy))
        p = max(1, exact.n_sites // 2)
        mc = propose_sites(audit, method="milp", max_sites=p, verify=False, **common)
        mg = _with_gap(propose_sites(audit, method="greedy", max_sites=p, verify=False,
                                     **common), mc)
        rows.append(_row(service, f"max units, p={p}", mc, mg))
    cols = list(rows[0]) if rows else []
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
    return 0


def _with_gap(greedy: Any, exact: Any) -> Any:
    """Greedy's relative gap to the exact optimum of the same question (positive = worse)."""
    import dataclasses

    if exact.status not in ("optimal", "nothing_to_do"):
        return greedy
    diff = (greedy.objective - exact.objective if exact.objective_kind == "min_sites"
            else exact.objective - greedy.objective)
    return dataclasses.replace(greedy, exact_objective=exact.objective,
                               gap_to_exact=diff / max(abs(exact.objective), 1.0))


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
