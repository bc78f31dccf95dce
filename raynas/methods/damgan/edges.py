"""DAMGAN's edge ablation (the paper's Figs. 9–10): retrain the searched genotype with each op of one edge
in turn and correlate the edge's α weights with the retrained scores; plus the k'-grid summary."""

from __future__ import annotations

import math
import re
from typing import Any

from raynas.errors import ConfigError, GenotypeError, RunDirError
from raynas.results.ablation import grid_summary
from raynas.spaces import Genotype
from raynas.spaces.damgan import N_CELLS, NORMAL_EDGES, SPACE, UP_EDGES

EDGE_SPEC = "edge_ablation.json"

_EDGE_SPEC = re.compile(r"^cell(\d+):(\d+)->(\d+)$")


def parse_edge(spec: str) -> str:
    """``cell0:1->3`` (nodes inside a cell) or a space edge name (``cell1.skip[0]``) → the edge name."""
    names = SPACE.edge_names()
    spec = spec.strip()
    if spec in names:
        return spec
    m = _EDGE_SPEC.match(spec)
    if m:
        cell, src, dst = (int(v) for v in m.groups())
        for group, pairs in (("up", UP_EDGES), ("normal", NORMAL_EDGES)):
            if (src, dst) in pairs and f"cell{cell}.{group}[0]" in names:
                return f"cell{cell}.{group}[{pairs.index((src, dst))}]"
    nodes = ", ".join(f"{s}->{d}" for s, d in (*UP_EDGES, *NORMAL_EDGES))
    raise ConfigError(f"unknown edge {spec!r}; write cellI:S->D with I in 0..{N_CELLS - 1} and S->D one of "
                      f"{nodes} (e.g. cell0:1->3, the paper's example), or an edge name such as "
                      f"{', '.join(n for n in names if 'skip' in n)}")


def edge_candidates(edge: str) -> tuple[str, ...]:
    """The candidate ops of edge ``edge`` (a name from :func:`parse_edge`)."""
    for name, (*_, cands) in zip(SPACE.edge_names(), SPACE.edges()):
        if name == edge:
            return cands
    raise ConfigError(f"unknown edge {edge!r}; edges: {', '.join(SPACE.edge_names())}")


def check_edge_ops(edge: str, ops: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validate a subset of an edge's candidates (unknown names raise GenotypeError listing the valid ones)."""
    cands = edge_candidates(edge)
    bad = [op for op in ops if op not in cands]
    if bad:
        raise GenotypeError(f"unknown op {bad[0]!r} for edge {edge}; its candidates are: {', '.join(cands)}")
    if len(set(ops)) != len(ops) or not ops:
        raise ConfigError(f"give each op of edge {edge} at most once, and at least one; got {list(ops)}")
    return tuple(ops)


def with_edge_op(genotype: Genotype, edge: str, op: str) -> Genotype:
    """``genotype`` with edge ``edge`` switched to ``op`` (validated)."""
    m = re.match(r"^cell(\d+)\.(\w+)\[(\d+)\]$", edge)
    if m is None:
        raise ConfigError(f"unknown edge {edge!r}; edges: {', '.join(SPACE.edge_names())}")
    check_edge_ops(edge, [op])
    ci, group, j = int(m.group(1)), m.group(2), int(m.group(3))
    d = genotype.to_dict()
    d["cells"][ci][group][j] = op
    out = Genotype.from_dict(d)
    SPACE.validate(out)
    return out


def edge_correlation(weights: list[float], scores: list[float]) -> dict[str, float]:
    """Pearson and Spearman correlation of an edge's architecture weights with retrained scores.

    NaN where undefined (fewer than three finite pairs, or a constant input), never a made-up number.
    """
    import warnings

    from scipy import stats

    pairs = [(float(w), float(s)) for w, s in zip(weights, scores, strict=True)
             if math.isfinite(float(w)) and math.isfinite(float(s))]
    nan = float("nan")
    out = {"n": float(len(pairs)), "pearson": nan, "pearson_p": nan, "spearman": nan, "spearman_p": nan}
    if len(pairs) < 3:
        return out
    w, s = zip(*pairs)
    if len(set(w)) < 2 or len(set(s)) < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = stats.pearsonr(w, s)
        rho = stats.spearmanr(w, s)
    out.update(pearson=float(r[0]), pearson_p=float(r[1]), spearman=float(rho[0]), spearman_p=float(rho[1]))
    return out


def kprime_summary(df):
    """Final (retrained) rows of a k' ablation → per-cell table and per-(selector, k') means over seeds."""
    return grid_summary(df, ("selector", "kprime"), stage="retrain")


def edge_summary(df, edge: str):
    """Final rows of an edge run → (per-op table, correlation dict for IS and for −FID)."""
    import pandas as pd

    rows = df[(df["stage"] == "edge") & (df["edge"] == edge)].copy() if "edge" in df else df.iloc[0:0]
    keep = [c for c in ("op", "alpha_weight", "is_mean", "is_std", "fid", "kid_mean", "params", "selector",
                        "wall_seconds", "gpu_seconds") if c in rows]
    table = rows[keep].sort_values("alpha_weight", ascending=False).reset_index(drop=True)
    for c in ("alpha_weight", "is_mean", "fid"):
        if c in table:
            table[c] = pd.to_numeric(table[c], errors="coerce")
    corr: dict[str, Any] = {"edge": edge, "selector": table["selector"].iloc[0] if len(table) else None}
    if len(table):
        corr["is"] = edge_correlation(table["alpha_weight"].tolist(), table["is_mean"].tolist())
        if "fid" in table:
            corr["neg_fid"] = edge_correlation(table["alpha_weight"].tolist(), (-table["fid"]).tolist())
    return table, corr


def search_outcome(path, edge: str | None = None) -> tuple[Genotype, dict[str, Any]]:
    """(best_G genotype, α table) of a finished search run — or, with ``edge``, that edge's α by op name;
    a bad genotype file is a GenotypeError, a folder without alpha.json a RunDirError."""
    import json
    from pathlib import Path

    path = Path(path)
    genotype = Genotype.load(path / "best_G.json")
    if genotype.space != SPACE.name:
        raise RunDirError(f"{path / 'best_G.json'} holds a {genotype.space!r} genotype, not a DAMGAN generator "
                          f"({SPACE.name!r}); point --search-run at a finished `raynas search damgan` run directory")
    alpha_file = path / "alpha.json"
    if not alpha_file.is_file():
        raise RunDirError(f"{path} has no alpha.json; point --search-run at a finished `raynas search damgan` "
                          "run directory")
    alpha = json.loads(alpha_file.read_text())
    if edge is None:
        return genotype, alpha
    if edge not in alpha:
        raise RunDirError(f"{alpha_file} has no α for edge {edge}; it is not a DAMGAN search of this space")
    return genotype, dict(zip(edge_candidates(edge), alpha[edge], strict=True))


def prepare_edge_ablation(cfg, options: dict[str, Any]) -> dict[str, Any]:
    """Validate ``--edge``, ``--ops`` and ``--search-run`` before any run directory exists; returns the
    normalised options (edge name, op list, absolute search run)."""
    from pathlib import Path

    from raynas.results import RunDir

    edge = parse_edge(options.get("edge") or "cell0:1->3")
    ops = check_edge_ops(edge, [o.strip() for o in options["ops"].split(",")] if options.get("ops")
                         else list(edge_candidates(edge)))
    search_run = options.get("search_run")
    if search_run:  # fail now on a bad genotype or folder, not after Ray starts
        search_outcome(Path(search_run))
        RunDir.open(search_run)
        search_run = str(Path(search_run).resolve())
    return {**options, "edge": edge, "ops": list(ops), "search_run": search_run}


def draw_kprime(means, out):
    """IS and FID of the retrained subnets against k' (mean ± std over seeds), like the paper's Fig. 8."""
    from raynas.plots import draw_grid

    return draw_grid(means, ["kprime", "selector"], [("is_mean", "max"), ("fid", "min")], out,
                     xlabel="k'  (edge ops see C/k' maps)")
