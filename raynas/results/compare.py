"""A comparison of methods at one budget (``raynas compare``): the table (one row per method and seed), the
summary per method, and the paired tests of each method against the baseline. Ray-free, so ``raynas report``
and ``raynas results`` read a comparison run like any other.

The tests pair the runs by seed (same data split, same initial weights seed):

* **Wilcoxon signed-rank test** (two-sided): zero differences are dropped (Wilcoxon's convention), ties share
  their mean rank, ``W+`` is the sum of the ranks of the positive differences, and the p-value is *exact*: the
  share of the ``2^n`` equally likely sign assignments whose ``W+`` is at least as extreme (up to
  ``EXACT_MAX`` pairs; beyond, the normal approximation with the tie correction).
* **paired t-test** (two-sided): ``t = mean(d) / (sd(d) / sqrt(n))`` on ``n - 1`` degrees of freedom.

Differences are ``method - baseline`` in the metric's "better" direction, so a positive mean says the method
beat the baseline.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

COMPARE_SPEC = "compare.json"          # methods, seeds, budget, metric, baseline: what the run compared
COMPARE_TABLE = "compare.parquet"      # one row per (method, seed)
COMPARE_SUMMARY = "compare_summary.parquet"
COMPARE_TESTS = "compare_tests.parquet"
STAGE = "compare"                      # the result rows of a comparison's finished trials
EXACT_MAX = 20

#: The table's columns in the order they print (those a run has).
TABLE_COLUMNS = ("method", "seed", "metric", "search_epochs", "search_steps", "search_seconds",
                 "search_gpu_seconds", "train_flops", "budget_stopped", "retrain_epochs", "params")


def wilcoxon_signed_rank(d: Sequence[float]) -> dict[str, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences ``d`` (see the module docstring)."""
    nz = [float(x) for x in d if x != 0 and x == x]
    n = len(nz)
    if n == 0:
        return {"n": 0.0, "w_plus": 0.0, "w_minus": 0.0, "p": 1.0}
    ranks = _average_ranks([abs(x) for x in nz])
    w_plus = sum(r for r, x in zip(ranks, nz) if x > 0)
    total = sum(ranks)
    w_minus = total - w_plus
    if n <= EXACT_MAX:
        sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product((0, 1), repeat=n)]
        lo = sum(1 for s in sums if s <= w_plus + 1e-9) / len(sums)
        hi = sum(1 for s in sums if s >= w_plus - 1e-9) / len(sums)
        p = min(1.0, 2 * min(lo, hi))
    else:
        mean = n * (n + 1) / 4
        ties = pd.Series(ranks).value_counts()
        var = n * (n + 1) * (2 * n + 1) / 24 - float(((ties ** 3) - ties).sum()) / 48
        z = (w_plus - mean) / math.sqrt(var) if var > 0 else 0.0
        p = min(1.0, math.erfc(abs(z) / math.sqrt(2)))
    return {"n": float(n), "w_plus": w_plus, "w_minus": w_minus, "p": p}


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def paired_t_test(d: Sequence[float]) -> dict[str, float]:
    """Two-sided paired t-test of differences ``d``; NaN statistics when fewer than two pairs or no spread."""
    from scipy import stats

    x = [float(v) for v in d if v == v]
    n = len(x)
    if n < 2:
        return {"t": math.nan, "df": float(n - 1), "p": math.nan}
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))
    if sd == 0:
        return {"t": math.nan if mean == 0 else math.copysign(math.inf, mean), "df": float(n - 1),
                "p": 1.0 if mean == 0 else 0.0}
    t = mean / (sd / math.sqrt(n))
    return {"t": t, "df": float(n - 1), "p": float(2 * stats.t.sf(abs(t), n - 1))}


def comparison_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, seed): the finished trials' ``compare`` rows, last write kept."""
    if df.empty or "stage" not in df:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    rows = df[df["stage"] == STAGE]
    rows = rows.drop_duplicates(["method", "seed"], keep="last").sort_values(["method", "seed"])
    return rows.reset_index(drop=True)


def summarize(table: pd.DataFrame, metric: str, direction: str = "max") -> pd.DataFrame:
    """Per method: runs, mean ± std (sample), median and best of ``metric``, and the mean search cost."""
    out = []
    for method, g in table.groupby("method", sort=True):
        v = pd.to_numeric(g[metric], errors="coerce").dropna()
        out.append({"method": method, "runs": len(g), f"{metric}_mean": v.mean(),
                    f"{metric}_std": v.std(ddof=1) if len(v) > 1 else math.nan, f"{metric}_median": v.median(),
                    f"{metric}_best": v.max() if direction == "max" else v.min(),
                    **{f"{c}_mean": pd.to_numeric(g[c], errors="coerce").mean()
                       for c in ("search_epochs", "search_seconds", "train_flops") if c in g}})
    return pd.DataFrame(out)


def paired_tests(table: pd.DataFrame, metric: str, baseline: str, direction: str = "max") -> pd.DataFrame:
    """Each method against ``baseline``, paired by seed (seeds that both finished)."""
    sign = 1.0 if direction == "max" else -1.0
    base = table[table["method"] == baseline].set_index("seed")[metric]
    out = []
    for method in sorted(set(table["method"]) - {baseline}):
        mine = table[table["method"] == method].set_index("seed")[metric]
        seeds = sorted(set(mine.index) & set(base.index))
        d = [sign * (float(mine[s]) - float(base[s])) for s in seeds]
        w, t = wilcoxon_signed_rank(d), paired_t_test(d)
        out.append({"method": method, "baseline": baseline, "pairs": len(seeds),
                    "mean_diff": sum(d) / len(d) if d else math.nan,
                    "wilcoxon_w_plus": w["w_plus"], "wilcoxon_p": w["p"], "t": t["t"], "t_p": t["p"]})
    return pd.DataFrame(out, columns=["method", "baseline", "pairs", "mean_diff", "wilcoxon_w_plus", "wilcoxon_p",
                                      "t", "t_p"])


def write_comparison(run_path: Path, df: pd.DataFrame, spec: dict[str, Any]) -> tuple[pd.DataFrame, ...]:
    """The table, summary and tests of a comparison run from its results ``df``, saved beside them."""
    metric, direction = spec["metric"], spec.get("direction", "max")
    table = comparison_table(df)
    summary = summarize(table, metric, direction) if not table.empty else pd.DataFrame()
    tests = pd.DataFrame()
    if not table.empty and spec.get("baseline"):
        pairs = spec.get("pairs") or {m: spec["baseline"] for m in spec["methods"] if m != spec["baseline"]}
        parts = [paired_tests(table[table["method"].isin([m, b])], metric, b, direction)
                 for m, b in sorted(pairs.items())]
        tests = pd.concat(parts, ignore_index=True) if parts else tests
    from raynas.results.storage import write_atomic

    for name, frame in ((COMPARE_TABLE, table), (COMPARE_SUMMARY, summary), (COMPARE_TESTS, tests)):
        write_atomic(Path(run_path) / name, lambda f, frame=frame: frame.to_parquet(f, index=False))
    return table, summary, tests


def read_derived(path: Path) -> pd.DataFrame:
    """A table the comparison derived from the run's results; a damaged one is named, with how to rebuild it."""
    import pyarrow as pa

    try:
        return pd.read_parquet(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, EOFError) as exc:
        from raynas.errors import DamagedResultsError

        raise DamagedResultsError(f"{path} cannot be read ({str(exc).splitlines()[0]}); it is derived from the "
                                  f"run's results: `raynas compare --resume {Path(path).parent}` writes it again",
                                  [str(path)]) from None


def load_comparison(run_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    return read_derived(run_path / COMPARE_TABLE), json.loads((run_path / COMPARE_SPEC).read_text())


def is_comparison(run_path: Path) -> bool:
    return (Path(run_path) / COMPARE_SPEC).is_file()


def print_comparison(run_path: Path) -> None:
    """``raynas results`` of a comparison run: the comparison after the rows (nothing for other runs)."""
    if (Path(run_path) / COMPARE_TABLE).is_file() and is_comparison(run_path):
        print()
        print(format_comparison(run_path))


def format_comparison(run_path: Path) -> str:
    """The comparison's table, summary and tests as text (``raynas compare`` and ``raynas results`` print it)."""
    from raynas.results.table import format_table

    spec = json.loads((Path(run_path) / COMPARE_SPEC).read_text())
    metric = spec["metric"]
    table = read_derived(Path(run_path) / COMPARE_TABLE)
    summary = read_derived(Path(run_path) / COMPARE_SUMMARY)
    tests = read_derived(Path(run_path) / COMPARE_TESTS)
    budget = ", ".join(f"{k.replace('_', '-')}={v:g}" for k, v in spec["budget"].items())
    parts = [f"comparison at budget {budget}; metric: {metric} ({spec.get('metric_note', '')})",
             format_table(table, columns=[c if c != "metric" else metric for c in TABLE_COLUMNS
                                          if (c if c != "metric" else metric) in table]),
             "", "per method:", format_table(summary) if not summary.empty else "(no finished trials)"]
    if not tests.empty:
        b = spec["baseline"] if len(set(tests["baseline"])) == 1 else "the baseline of its row"
        lower = spec.get("direction", "max") == "min"
        diff = f"baseline - method, as lower {metric} is better" if lower else "method - baseline"
        parts += ["", f"paired by seed against {b} (difference = {diff}, positive = better): Wilcoxon signed-rank "
                      "test (exact, two-sided) and paired t-test (two-sided)", format_table(tests)]
    return "\n".join(parts)


def draw_comparison(table: pd.DataFrame, metric: str, path: Path, baseline: str | None = None) -> Path | None:
    """Box per method with every seed's value on top (strip), the baseline first."""
    if table.empty or metric not in table:
        return None
    import matplotlib.pyplot as plt

    from raynas.plots.common import save

    methods = sorted(set(table["method"]), key=lambda m: (m != baseline, m))
    values = [pd.to_numeric(table[table["method"] == m][metric], errors="coerce").dropna().tolist() for m in methods]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(methods), 3.6))
    ax.boxplot(values, widths=0.5, showfliers=False)
    ax.set_xticks(range(1, len(methods) + 1), methods)
    for i, v in enumerate(values, start=1):
        offsets = [(k - (len(v) - 1) / 2) * 0.06 for k in range(len(v))]
        ax.scatter([i + o for o in offsets], v, s=18, zorder=3)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per method (one point per seed)")
    return save(fig, path)
