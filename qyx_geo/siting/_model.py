"""The optimisation core of :mod:`qyx_geo.siting`, on plain arrays (no geography).

A :class:`CoverageProblem` says which candidate sites reach which demand clusters, how many
residents (of the service's demand group) live in each cluster, which unit each cluster belongs
to, which clusters are covered by existing facilities, and how many judged units must pass.
:func:`reduce_problem` shrinks it to the part that can still change; :func:`solve_milp` solves
it exactly with HiGHS (``scipy.optimize.milp``) and :func:`solve_greedy` with the marginal-gain
heuristic. :func:`gain_order` turns any chosen set into the order in which to build it.

Model (DESIGN.md, "Siting (MILP)")
---------------------------------
Binary ``x_c`` (open candidate c), ``y_u`` (unit u passes), and ``z_g`` (cluster group g
covered) in [0, 1] — ``z`` needs no integrality: ``z_g ≤ Σ_{c covers g} x_c`` already forces
``z_g = 0`` when no chosen site reaches g, and rounding a feasible ``z_g`` up to 1 otherwise
keeps every constraint::

    z_g ≤ Σ_{c covers g} x_c                       (clusters covered today are dropped)
    Σ_{g in u} pop_g z_g ≥ need_u · y_u             need_u = min_share · pop_u − pop covered now
    Σ_u y_u ≥ required − passing_now                (set covering only)
    Σ_c x_c ≤ max_sites,  Σ_c cost_c x_c ≤ budget   (maximal covering only)

Set covering minimises ``Σ x_c``; maximal covering maximises ``Σ y_u``. Both break ties by the
residents newly covered, weighted by ``ε = 0.5 / Σ pop`` so that the tie-break can never be
worth a whole site or unit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp

from qyx_geo._errors import SettingsError, SolverError

__all__ = [
    "CoverageProblem",
    "Objective",
    "ReducedProblem",
    "Solution",
    "gain_order",
    "reduce_problem",
    "solve_greedy",
    "solve_milp",
]

logger = logging.getLogger(__name__)

Objective = Literal["min_sites", "max_units"]

#: Residents are counts; anything closer than this to a unit's need meets it. Keeps the model
#: in step with coverage's ``share_within >= min_share`` test despite float rounding.
_POP_TOL = 1e-6


@dataclasses.dataclass(frozen=True, kw_only=True)
class CoverageProblem:
    """A siting problem on plain arrays.

    Attributes
    ----------
    cover
        ``(n_candidates, n_clusters)`` sparse matrix; a *stored* entry (even an explicit 0.0,
        as :func:`qyx_geo.engine.catchment_matrix` stores for a distance of 0 m) means
        candidate c reaches cluster k within the service's threshold.
    pop
        ``(n_clusters,)`` residents of the service's demand group per cluster (``>= 0``).
    unit
        ``(n_clusters,)`` index of the cluster's unit in ``[0, n_units)``, or ``-1``.
    covered_now
        ``(n_clusters,)`` whether existing facilities already reach the cluster.
    judged
        ``(n_units,)`` whether the service's target applies to the unit.
    min_share
        Share of a unit's residents that must be covered for it to pass.
    required_units
        Number of judged units that must pass to meet the target.
    passes_now
        ``(n_units,)`` today's verdicts (e.g. from the audit); by default derived from the arrays.
    cost
        ``(n_candidates,)`` positive cost per candidate; by default 1 each.
    """

    cover: sp.csr_matrix
    pop: NDArray[np.float64]
    unit: NDArray[np.int64]
    covered_now: NDArray[np.bool_]
    judged: NDArray[np.bool_]
    min_share: float
    required_units: int
    passes_now: NDArray[np.bool_] | None = None
    cost: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        # reachability is the sparsity structure: a stored 0.0 m (site on the spot) counts
        src = sp.csr_matrix(self.cover)
        src.sum_duplicates()
        cover = sp.csr_matrix((np.ones(src.nnz, dtype=bool), src.indices.copy(),
                               src.indptr.copy()), shape=src.shape)
        n_cand, n_clu = cover.shape
        pop = np.asarray(self.pop, dtype=float)
        unit = np.asarray(self.unit, dtype=np.int64)
        covered = np.asarray(self.covered_now, dtype=bool)
        judged = np.asarray(self.judged, dtype=bool)
        for name, arr, n in (("pop", pop, n_clu), ("unit", unit, n_clu),
                             ("covered_now", covered, n_clu)):
            if arr.shape != (n,):
                msg = (f"CoverageProblem.{name} has shape {arr.shape!r} but cover has {n} "
                       "clusters (columns); pass one value per demand cluster.")
                raise SettingsError(msg)
        if not np.all(np.isfinite(pop)) or (pop < 0).any():
            bad = pop[~np.isfinite(pop) | (pop < 0)][:3]
            msg = f"CoverageProblem.pop must be finite and >= 0, got e.g. {bad.tolist()!r}."
            raise SettingsError(msg)
        if unit.size and (unit.min() < -1 or unit.max() >= judged.size):
            msg = (f"CoverageProblem.unit must index the {judged.size} units (or be -1), "
                   f"got values in [{unit.min()}, {unit.max()}].")
            raise SettingsError(msg)
        if not 0.0 <= float(self.min_share) <= 1.0:
            msg = f"min_share must be in [0, 1], got {self.min_share!r}."
            raise SettingsError(msg)
        if not 0 <= int(self.required_units) <= int(judged.sum()):
            msg = (f"required_units must be between 0 and the {int(judged.sum())} judged units, "
                   f"got {self.required_units!r}.")
            raise SettingsError(msg)
        passes = self.passes_now
        if passes is not None:
            passes = np.asarray(passes, dtype=bool)
            if passes.shape != judged.shape:
                msg = (f"CoverageProblem.passes_now has shape {passes.shape!r}, expected "
                       f"{judged.shape!r} (one verdict per unit).")
                raise SettingsError(msg)
        cost = self.cost
        if cost is not None:
            cost = np.asarray(cost, dtype=float)
            if cost.shape != (n_cand,) or not np.all(np.isfinite(cost)) or (cost <= 0).any():
                msg = (f"CoverageProblem.cost must hold {n_cand} positive finite costs, "
                       f"got shape {cost.shape!r}.")
                raise SettingsError(msg)
        for name, value in (("cover", cover), ("pop", pop), ("unit", unit),
                            ("covered_now", covered), ("judged", judged),
                            ("passes_now", passes), ("cost", cost)):
            object.__setattr__(self, name, value)

    @property
    def n_candidates(self) -> int:
        """Number of candidate sites."""
        return int(self.cover.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.judged.size)

    def unit_pop(self) -> NDArray[np.float64]:
        """Residents per unit."""
        return _per_unit(self.pop, self.unit, self.n_units)

    def unit_covered_pop(self) -> NDArray[np.float64]:
        """Residents per unit covered by existing facilities."""
        return _per_unit(np.where(self.covered_now, self.pop, 0.0), self.unit, self.n_units)

    def verdicts_now(self) -> NDArray[np.bool_]:
        """Whether each unit passes today."""
        if self.passes_now is not None:
            return self.passes_now
        pop_u = self.unit_pop()
        return (pop_u > 0) & (self.unit_covered_pop() >= self.min_share * pop_u - _POP_TOL)

    def costs(self) -> NDArray[np.float64]:
        """Cost per candidate (1 each unless given)."""
        return np.ones(self.n_candidates) if self.cost is None else self.cost


@dataclasses.dataclass(frozen=True)
class ReducedProblem:
    """The part of a :class:`CoverageProblem` that the choice of sites can still change.

    Clusters of one unit reached by exactly the same candidates are merged into *groups*;
    candidates whose groups are a subset of a no-dearer candidate's are dropped (dominated).
    """

    problem: CoverageProblem
    candidates: NDArray[np.int64]      # kept candidate indices (into problem)
    units: NDArray[np.int64]           # open, reachable judged units (into problem)
    need: NDArray[np.float64]          # residents still to cover per open unit
    groups: sp.csr_matrix              # (n_kept_candidates, n_groups) bool
    group_pop: NDArray[np.float64]     # residents per group
    group_unit: NDArray[np.int64]      # open-unit position (into ``units``) per group
    passing_now: int                   # judged units passing today
    unreachable: NDArray[np.int64]     # judged failing units no candidate set can make pass
    required_extra: int                # units still to be made to pass (set covering)
    stats: dict[str, int]


@dataclasses.dataclass(frozen=True)
class Solution:
    """Chosen candidates and how good they are."""

    chosen: NDArray[np.int64]          # candidate indices into the original problem, ascending
    method: str                        # "milp" or "greedy"
    objective_kind: Objective
    objective: float                   # sites (min_sites) or units newly passing (max_units)
    bound: float | None                # best bound on the objective proven by the solver
    gap: float | None                  # relative gap |objective - bound| / max(|objective|, 1)
    status: str                        # "optimal", "time_limit", "heuristic", "nothing_to_do"
    solve_time_s: float
    units_newly_passing: int
    residents_newly_covered: float     # within open units, as modelled


def _per_unit(values: NDArray[np.float64], unit: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    ok = unit >= 0
    return np.bincount(unit[ok], weights=values[ok], minlength=n).astype(float)


def reduce_problem(problem: CoverageProblem) -> ReducedProblem:
    """Shrink ``problem`` to what the choice of sites can still change.

    Units already passing are fixed as passing and clusters already covered are dropped; units
    that would fail even with every candidate open are set aside (``unreachable``); candidates
    that reach nothing still needed, and dominated candidates, are dropped; clusters of one unit
    reached by the same candidates are merged.
    """
    p = problem
    passes = p.verdicts_now()
    pop_u = p.unit_pop()
    need_all = p.min_share * pop_u - p.unit_covered_pop()
    open_unit = p.judged & ~passes & (pop_u > 0)
    passing_now = int((p.judged & passes).sum())
    in_open = np.zeros(p.pop.size, dtype=bool)
    ok = p.unit >= 0
    in_open[ok] = open_unit[p.unit[ok]]
    reach_count = np.asarray(p.cover.sum(axis=0)).ravel()
    relevant = in_open & ~p.covered_now & (p.pop > 0) & (reach_count > 0)
    reachable_pop = _per_unit(np.where(relevant, p.pop, 0.0), p.unit, p.n_units)
    can_pass = open_unit & (reachable_pop >= need_all - _POP_TOL)
    unreachable = np.flatnonzero(p.judged & ~passes & ~can_pass)
    units = np.flatnonzero(can_pass)
    relevant &= _take(can_pass, p.unit)
    clusters = np.flatnonzero(relevant)

    sub = p.cover[:, clusters].tocsc()
    keep_c = np.flatnonzero(np.diff(sub.tocsr().indptr) > 0)
    sub = sub[keep_c, :].tocsc()
    # merge clusters of one unit that the same candidates reach
    pos = np.full(p.n_units, -1, dtype=np.int64)
    pos[units] = np.arange(units.size)
    keys: dict[tuple[int, bytes], int] = {}
    group_of = np.empty(clusters.size, dtype=np.int64)
    for j, k in enumerate(clusters):
        rows = sub.indices[sub.indptr[j]:sub.indptr[j + 1]]
        key = (int(pos[p.unit[k]]), np.sort(rows).tobytes())
        group_of[j] = keys.setdefault(key, len(keys))
    n_groups = len(keys)
    group_unit = np.empty(n_groups, dtype=np.int64)
    for (u_pos, _), g in keys.items():
        group_unit[g] = u_pos
    group_pop = np.bincount(group_of, weights=p.pop[clusters], minlength=n_groups).astype(float)
    merge = sp.csr_matrix((np.ones(clusters.size), (np.arange(clusters.size), group_of)),
                          shape=(clusters.size, n_groups))
    groups = sp.csr_matrix((sub @ merge) > 0)
    groups, kept = _drop_dominated(groups, p.costs()[keep_c])
    candidates = keep_c[kept]
    required_extra = max(0, p.required_units - passing_now)
    stats = {
        "candidates": p.n_candidates, "candidates_kept": int(candidates.size),
        "candidates_dominated": int(keep_c.size - candidates.size),
        "clusters": int(p.pop.size), "clusters_kept": int(clusters.size), "groups": n_groups,
        "units_judged": int(p.judged.sum()), "units_passing_now": passing_now,
        "units_open": int(units.size), "units_unreachable": int(unreachable.size),
    }
    logger.debug("siting model reduced: %s", stats)
    return ReducedProblem(
        problem=p, candidates=candidates.astype(np.int64), units=units.astype(np.int64),
        need=np.maximum(need_all[units], 0.0), groups=groups, group_pop=group_pop,
        group_unit=group_unit, passing_now=passing_now,
        unreachable=unreachable.astype(np.int64), required_extra=required_extra, stats=stats,
    )


def _take(flags: NDArray[np.bool_], index: NDArray[np.int64]) -> NDArray[np.bool_]:
    out = np.zeros(index.size, dtype=bool)
    ok = index >= 0
    out[ok] = flags[index[ok]]
    return out


def _drop_dominated(
    groups: sp.csr_matrix, cost: NDArray[np.float64],
) -> tuple[sp.csr_matrix, NDArray[np.int64]]:
    """Drop candidates whose groups are a subset of a no-dearer candidate's.

    Candidate i is dominated by j when ``groups(i) ⊆ groups(j)`` and ``cost_j ≤ cost_i``, with
    ties (same groups, same cost) kept for the lowest index — a strict order, so every dropped
    candidate has a kept one at least as good.
    """
    a = sp.csr_matrix(groups, dtype=np.int64)
    size = np.asarray(a.sum(axis=1)).ravel()
    inter = (a @ a.T).tocoo()
    i, j, n = inter.row, inter.col, inter.data
    subset = (i != j) & (n == size[i])
    i, j = i[subset], j[subset]
    better = ((size[j] > size[i]) & (cost[j] <= cost[i])) | (
        (size[j] == size[i]) & ((cost[j] < cost[i]) | ((cost[j] == cost[i]) & (j < i))))
    dominated = np.zeros(a.shape[0], dtype=bool)
    dominated[i[better]] = True
    kept = np.flatnonzero(~dominated)
    return sp.csr_matrix(groups[kept, :]), kept.astype(np.int64)


def _check_limits(max_sites: int | None, budget: float | None) -> None:
    if max_sites is not None and (isinstance(max_sites, bool) or not isinstance(max_sites, int)
                                  or max_sites < 0):
        msg = f"max_sites must be a non-negative integer, got {max_sites!r}."
        raise SettingsError(msg)
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)
                               or not math.isfinite(budget) or budget < 0):
        msg = f"budget must be a non-negative number, got {budget!r}."
        raise SettingsError(msg)


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence the process's stdout (fd 1) while HiGHS runs.

    HiGHS 1.12 (bundled with scipy 1.17) writes a stray debug line
    ``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();`` with a bare
    ``printf`` whatever ``disp`` is (ERGO-Code/HiGHS#2783); a library must not print, so fd 1
    points at /dev/null for the duration of the solve and is restored afterwards.
    """
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no usable fd 1 (embedded interpreters): leave it alone
        yield
        return
    try:
        with Path(os.devnull).open("wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def _infeasible_message(r: ReducedProblem) -> str:
    reachable = r.passing_now + r.units.size
    return (f"the target needs {r.problem.required_units} passing units but at most {reachable} "
            f"can pass: {r.passing_now} pass today, {r.units.size} more can be made to pass, and "
            f"{r.unreachable.size} failing unit(s) cannot reach min_share={r.problem.min_share:g} "
            "with any of the candidate sites (residents too far from every candidate, or beyond "
            "the snapping limit). Supply more candidates (candidates=...), or lower the target "
            "with max_sites/budget to get the best partial plan.")


def solve_milp(
    reduced: ReducedProblem, *, objective: Objective, max_sites: int | None = None,
    budget: float | None = None, time_limit_s: float = 60.0, mip_gap: float = 1e-4,
) -> Solution:
    """Solve ``reduced`` exactly with HiGHS.

    Parameters
    ----------
    reduced
        Output of :func:`reduce_problem`.
    objective
        ``"min_sites"`` (set covering: fewest sites meeting the target) or ``"max_units"``
        (maximal covering: most units passing within ``max_sites`` / ``budget``).
    max_sites, budget
        Limits on the number / total cost of new sites (``"max_units"`` only).
    time_limit_s, mip_gap
        HiGHS time limit (seconds) and relative optimality gap at which to stop.

    Raises
    ------
    SolverError
        If the target cannot be met, or HiGHS finds no solution in time.
    """
    _check_limits(max_sites, budget)
    if objective not in ("min_sites", "max_units"):
        msg = f"objective must be 'min_sites' or 'max_units', got {objective!r}."
        raise SettingsError(msg)
    if not time_limit_s > 0 or not 0 <= mip_gap < 1:
        msg = (f"time_limit_s must be > 0 and mip_gap in [0, 1), got {time_limit_s!r} and "
               f"{mip_gap!r}.")
        raise SettingsError(msg)
    r = reduced
    t0 = time.perf_counter()
    if objective == "min_sites":
        if r.passing_now + r.units.size < r.problem.required_units:
            raise SolverError("No siting plan can meet the target: " + _infeasible_message(r))
        if r.required_extra == 0:
            return _empty(r, "milp", objective, t0)
    elif r.units.size == 0 or max_sites == 0 or r.candidates.size == 0:
        return _empty(r, "milp", objective, t0)

    n_c, n_g, n_u = r.candidates.size, r.group_pop.size, r.units.size
    eps = 0.5 / max(float(r.group_pop.sum()), 1.0)
    gt = r.groups.T.tocsr().astype(float)
    rows = [sp.hstack([-gt, sp.identity(n_g), sp.csr_matrix((n_g, n_u))])]
    lb, ub = [np.full(n_g, -np.inf)], [np.zeros(n_g)]
    member = sp.csr_matrix((r.group_pop, (r.group_unit, np.arange(n_g))), shape=(n_u, n_g))
    need = sp.diags(np.maximum(r.need - _POP_TOL, 0.0))
    rows.append(sp.hstack([sp.csr_matrix((n_u, n_c)), member, -need]))
    lb.append(np.zeros(n_u))
    ub.append(np.full(n_u, np.inf))
    if objective == "min_sites":
        rows.append(sp.hstack([sp.csr_matrix((1, n_c + n_g)), sp.csr_matrix(np.ones((1, n_u)))]))
        lb.append(np.array([float(r.required_extra)]))
        ub.append(np.array([np.inf]))
        c = np.concatenate([np.ones(n_c), -eps * r.group_pop, np.zeros(n_u)])
    else:
        if max_sites is not None:
            rows.append(sp.hstack([sp.csr_matrix(np.ones((1, n_c))),
                                   sp.csr_matrix((1, n_g + n_u))]))
            lb.append(np.array([-np.inf]))
            ub.append(np.array([float(max_sites)]))
        if budget is not None:
            cost = r.problem.costs()[r.candidates]
            rows.append(sp.hstack([sp.csr_matrix(cost[None, :]), sp.csr_matrix((1, n_g + n_u))]))
            lb.append(np.array([-np.inf]))
            ub.append(np.array([float(budget)]))
        c = np.concatenate([np.zeros(n_c), -eps * r.group_pop, -np.ones(n_u)])
    a = sp.vstack(rows).tocsr()
    integrality = np.concatenate([np.ones(n_c), np.zeros(n_g), np.ones(n_u)])
    with _quiet_stdout():
        res = milp(c, integrality=integrality, bounds=Bounds(0, 1),
                   constraints=LinearConstraint(a, np.concatenate(lb), np.concatenate(ub)),
                   options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_gap),
                            "presolve": True, "disp": False})
    elapsed = time.perf_counter() - t0
    if res.x is None:
        if res.status == 2:
            raise SolverError("HiGHS proved the siting model infeasible: "
                              + _infeasible_message(r))
        msg = (f"HiGHS found no siting plan within time_limit_s={time_limit_s!r} "
               f"(status {res.status}: {res.message}). Raise time_limit_s or use "
               "method='greedy'.")
        raise SolverError(msg)
    x = res.x[:n_c] > 0.5
    chosen = np.sort(r.candidates[x])
    units_new, residents = _evaluate(r, x)
    if objective == "min_sites":
        obj = float(x.sum())
        bound = float(math.ceil(res.mip_dual_bound - 1e-6)) if res.mip_dual_bound is not None \
            else None
    else:
        obj = float(units_new)
        bound = float(math.floor(-res.mip_dual_bound + 1e-6)) if res.mip_dual_bound is not None \
            else None
    gap = None if bound is None else abs(obj - bound) / max(abs(obj), 1.0)
    status = "optimal" if res.status == 0 else "time_limit"
    logger.info("milp %s: objective %g, bound %s, %.2f s, status %s", objective, obj, bound,
                elapsed, status)
    return Solution(chosen=chosen.astype(np.int64), method="milp", objective_kind=objective,
                    objective=obj, bound=bound, gap=gap, status=status, solve_time_s=elapsed,
                    units_newly_passing=units_new, residents_newly_covered=residents)


def _empty(r: ReducedProblem, method: str, objective: Objective, t0: float) -> Solution:
    return Solution(chosen=np.empty(0, dtype=np.int64), method=method, objective_kind=objective,
                    objective=0.0, bound=0.0, gap=0.0, status="nothing_to_do",
                    solve_time_s=time.perf_counter() - t0, units_newly_passing=0,
                    residents_newly_covered=0.0)


def _evaluate(r: ReducedProblem, x: NDArray[np.bool_]) -> tuple[int, float]:
    """Units newly passing and residents newly covered (in open units) by kept candidates x."""
    covered = np.asarray(r.groups[x, :].sum(axis=0)).ravel() > 0
    got = np.bincount(r.group_unit[covered], weights=r.group_pop[covered],
                      minlength=r.units.size)
    return int((got >= r.need - _POP_TOL).sum()), float(r.group_pop[covered].sum())


def _marginal(
    r: ReducedProblem, covered: NDArray[np.bool_], remaining: NDArray[np.float64],
    rows: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Units made to pass and residents covered toward unmet needs, per candidate in ``rows``."""
    gain = r.groups[rows, :].multiply(np.where(covered, 0.0, r.group_pop)[None, :])
    member = sp.csr_matrix((np.ones(r.group_unit.size), (np.arange(r.group_unit.size),
                                                         r.group_unit)),
                           shape=(r.group_unit.size, r.units.size))
    per_unit = sp.csr_matrix(sp.csr_matrix(gain) @ member)
    per_unit.eliminate_zeros()
    rem = remaining[per_unit.indices]
    open_ = rem > _POP_TOL
    capped = np.where(open_, np.minimum(per_unit.data, rem), 0.0)
    done = open_ & (per_unit.data >= rem - _POP_TOL)
    row_of = np.repeat(np.arange(per_unit.shape[0]), np.diff(per_unit.indptr))
    units = np.bincount(row_of, weights=done, minlength=rows.size).astype(np.int64)
    residents = np.bincount(row_of, weights=capped, minlength=rows.size).astype(float)
    return units, residents


def solve_greedy(
    reduced: ReducedProblem, *, objective: Objective, max_sites: int | None = None,
    budget: float | None = None,
) -> Solution:
    """Add the site with the largest marginal gain until the target or a limit is reached.

    The gain of a site is, lexicographically, the units it makes pass, then the residents it
    covers toward units' unmet needs (divided by its cost when a budget is set). Ties go to
    the lowest candidate index, so the result is deterministic.
    """
    _check_limits(max_sites, budget)
    r = reduced
    t0 = time.perf_counter()
    if objective == "min_sites" and r.passing_now + r.units.size < r.problem.required_units:
        raise SolverError("No siting plan can meet the target: " + _infeasible_message(r))
    n_c = r.candidates.size
    cost = r.problem.costs()[r.candidates]
    covered = np.zeros(r.group_pop.size, dtype=bool)
    remaining = r.need.copy()
    chosen = np.zeros(n_c, dtype=bool)
    spent, passed = 0.0, 0
    all_rows = np.arange(n_c, dtype=np.int64)
    while True:
        if objective == "min_sites" and passed >= r.required_extra:
            break
        if max_sites is not None and int(chosen.sum()) >= max_sites:
            break
        avail = ~chosen
        if budget is not None:
            avail &= spent + cost <= budget + 1e-9
        rows = all_rows[avail]
        if rows.size == 0:
            break
        units, residents = _marginal(r, covered, remaining, rows)
        if budget is not None:
            units_key, res_key = units / cost[rows], residents / cost[rows]
        else:
            units_key, res_key = units.astype(float), residents
        if not (units.max(initial=0) > 0 or residents.max(initial=0.0) > _POP_TOL):
            break
        best = rows[np.lexsort((rows, -res_key, -units_key))[0]]
        chosen[best] = True
        spent += cost[best]
        newly = r.groups[[best], :].toarray().ravel() & ~covered
        covered |= newly
        got = np.bincount(r.group_unit[newly], weights=r.group_pop[newly],
                          minlength=r.units.size)
        was_open = remaining > _POP_TOL
        remaining = remaining - got
        passed += int((was_open & (remaining <= _POP_TOL)).sum())
    if objective == "min_sites" and passed < r.required_extra:
        msg = (f"greedy siting stopped after {int(chosen.sum())} sites with {passed} of "
               f"{r.required_extra} units needed: " + _infeasible_message(r))
        raise SolverError(msg)
    units_new, residents_total = _evaluate(r, chosen)
    obj = float(chosen.sum()) if objective == "min_sites" else float(units_new)
    elapsed = time.perf_counter() - t0
    return Solution(chosen=np.sort(r.candidates[chosen]).astype(np.int64), method="greedy",
                    objective_kind=objective, objective=obj, bound=None, gap=None,
                    status="heuristic", solve_time_s=elapsed, units_newly_passing=units_new,
                    residents_newly_covered=residents_total)


def gain_order(
    reduced: ReducedProblem, chosen: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Order chosen sites by marginal gain (what to build first).

    Returns the chosen candidate indices in build order, and for each the units it newly makes
    pass and the residents (of open units) it newly covers given the sites before it.
    """
    r = reduced
    pos_of = {int(c): i for i, c in enumerate(r.candidates)}
    rows = np.array([pos_of[int(c)] for c in chosen if int(c) in pos_of], dtype=np.int64)
    covered = np.zeros(r.group_pop.size, dtype=bool)
    remaining = r.need.copy()
    order: list[int] = []
    units_out: list[int] = []
    res_out: list[float] = []
    left = rows.copy()
    while left.size:
        units, _ = _marginal(r, covered, remaining, left)
        newly_pop = np.asarray(
            r.groups[left, :].multiply(np.where(covered, 0.0, r.group_pop)[None, :]).sum(axis=1)
        ).ravel()
        k = np.lexsort((left, -newly_pop, -units))[0]
        best = left[k]
        newly = r.groups[[best], :].toarray().ravel() & ~covered
        covered |= newly
        remaining = remaining - np.bincount(r.group_unit[newly], weights=r.group_pop[newly],
                                            minlength=r.units.size)
        order.append(int(r.candidates[best]))
        units_out.append(int(units[k]))
        res_out.append(float(newly_pop[k]))
        left = np.delete(left, k)
    # chosen candidates the reduction dropped (cannot happen for solver output) go last
    rest = [int(c) for c in chosen if int(c) not in pos_of]
    order += rest
    units_out += [0] * len(rest)
    res_out += [0.0] * len(rest)
    return (np.array(order, dtype=np.int64), np.array(units_out, dtype=np.int64),
            np.array(res_out, dtype=float))
