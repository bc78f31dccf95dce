"""DAMGAN sub-commands: ``raynas search damgan`` and ``raynas ablate damgan | damgan-edge``.

* ``search damgan`` runs one search trial (``--then-retrain`` then trains the found genotype with the
  foundation trainable in ``RUN_DIR/retrain``).
* ``ablate damgan --grid kprime=1,2,4,8,16`` is a Tune grid (× ``--seeds``): every cell searches,
  derives, retrains and evaluates; the summary is ``RUN_DIR/ablation_kprime.parquet`` and
  ``RUN_DIR/plots/ablation_kprime.png`` (IS and FID against k', the paper's Fig. 8).
* ``ablate damgan-edge --edge cell0:1->3`` searches once (in ``RUN_DIR/search``, or reuses
  ``--search-run``), then retrains the derived genotype with each op of that edge as a Tune grid and
  correlates the edge's α weights with the retrained IS (Pearson, Spearman; the paper's Figs. 9–10).

The search phase reads ``damgan.*`` (epochs, batches, learning rates, n_D, eval_every); every retrain
reads ``train.*``.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raynas.cli import EXTRA_COMMANDS
from raynas.commands import SEARCH_METHODS

KPRIME_SUMMARY = "ablation_kprime.parquet"
KPRIME_AGGREGATE = "ablation_kprime_mean.parquet"
EDGE_SUMMARY = "ablation_edge.parquet"
EDGE_CORRELATION = "edge_correlation.json"
GRID_KEYS = ("kprime", "selector")


# ====================================================================== config
def _load_config(args: argparse.Namespace):
    """Preset + overrides (+ ``--selector``) → validated config; cross-key search checks fail here too."""
    from raynas.cli import _config_from_args
    from raynas.gan.damgan_search import check_search_config

    extra = ["method=damgan"] + ([f"damgan.selector={args.selector}"] if getattr(args, "selector", None) else [])
    cfg = _config_from_args(argparse.Namespace(**{**vars(args), "overrides": extra + list(args.overrides)}))
    check_search_config(cfg)
    return cfg


def _preflight(cfg) -> None:
    """Dataset and extractor present; the model section is checked by the retrain, once a genotype exists."""
    from raynas.preflight import preflight

    preflight(cfg, check_model=False)


def _start_ray(args: argparse.Namespace, cfg) -> dict[str, float]:
    from raynas.cli import trial_resources

    return trial_resources(args, cfg, "each trial")


def _retrain_epochs(value: int | None) -> int | None:
    from raynas.errors import ConfigError

    if value is not None and value < 1:
        raise ConfigError(f"--retrain-epochs must be >= 1, got {value}")
    return value


# ====================================================================== search damgan
def _finish_search(run, results) -> dict[str, Any]:
    """Write best_G.json and alpha.json from the finished search trial; print the per-epoch table."""
    from raynas.errors import RaynasError
    from raynas.results import format_table
    from raynas.spaces import Genotype

    result = next(iter(results))
    metrics = result.metrics or {}
    if "genotype" not in metrics:
        raise RaynasError(f"the search trial finished without a derived genotype; see {result.path}")
    genotype = Genotype.from_json(metrics["genotype"])
    genotype.save(run.path / "best_G.json")
    alpha = json.loads(metrics["alpha_table"])
    (run.path / "alpha.json").write_text(json.dumps(alpha, indent=2) + "\n")
    df = run.read()
    if not df.empty and "stage" in df:
        df = df[df["stage"] == "search"].sort_values("epoch")
        cols = [c for c in ("epoch", "d_loss", "g_loss", "alpha_entropy_mean", "alpha_margin_mean", "is_mean",
                            "fid", "params", "wall_seconds") if c in df]
        print(format_table(df, columns=cols))
    return {"genotype": genotype, "alpha": alpha, "metrics": metrics}


def _run_search(cfg, run, resources: dict[str, float], resume: bool):
    from trainables.damgan import damgan_search
    from trainables.launch import run_trainable

    results = run_trainable(damgan_search, cfg, run, resources=resources, resume=resume)
    return _finish_search(run, results)


def cmd_search_damgan(args: argparse.Namespace) -> int:
    from raynas.cli import _create_run, _open_resumed_run
    from raynas.plots import draw_run_plots

    retrain_epochs = _retrain_epochs(args.retrain_epochs)
    if args.resume:
        run, cfg = _open_resumed_run(args.resume, args)
        resources = _start_ray(args, cfg)
    else:
        cfg = _load_config(args)
        _preflight(cfg)
        resources = _start_ray(args, cfg)
        run = _create_run(cfg, "damgan")
    print(f"raynas: run directory {run.path}")
    _run_search(cfg, run, resources, resume=bool(args.resume))
    print(f"\nraynas: DAMGAN search finished: {run.path}")
    print(f"raynas: genotype {run.path / 'best_G.json'}   (α table: {run.path / 'alpha.json'})")
    for p in draw_run_plots(run):
        print(f"raynas: plot     {p}")
    retrain_dir = run.path / "retrain"
    if args.then_retrain or (args.resume and (retrain_dir / "tune").is_dir()):
        _chain_retrain(cfg, run, resources, retrain_epochs, resume=(retrain_dir / "tune").is_dir())
    else:
        print(f"raynas: retrain  raynas retrain {run.path / 'best_G.json'} --preset {cfg.preset}")
    return 0


def _chain_retrain(cfg, run, resources: dict[str, float], epochs: int | None, resume: bool) -> None:
    """The foundation trainable (train_gan) on the found genotype, in the nested run RUN_DIR/retrain."""
    from raynas.cli import _finish_run
    from raynas.preflight import preflight
    from raynas.results import RunDir
    from trainables.damgan import retrain_config
    from trainables.gan import train_gan
    from trainables.launch import run_trainable

    rcfg = retrain_config(cfg, (run.path / "best_G.json").resolve(), epochs)
    if resume:
        rrun = RunDir.open(run.path / "retrain")
    else:
        preflight(rcfg)
        rrun = RunDir.create(run.path, "retrain", config=rcfg.to_dict(), seed=rcfg.train.seed, preset=rcfg.preset,
                             device=rcfg.train.device, exist_ok=True)
    print(f"\nraynas: retraining the found generator in {rrun.path}")
    run_trainable(train_gan, rcfg, rrun, resources=resources, resume=resume)
    _finish_run(rrun)


def register_search_damgan(ssub: argparse._SubParsersAction) -> None:
    from raynas.cli import _add_config_args, _add_ray_args

    s = ssub.add_parser("damgan", help="DAMGAN differentiable G search with up/down attention (one Tune trial)")
    _add_config_args(s)
    _add_ray_args(s)
    _add_selector(s)
    s.add_argument("--then-retrain", action="store_true",
                   help="train the found genotype afterwards (train.*, in RUN_DIR/retrain)")
    s.add_argument("--retrain-epochs", type=int, help="epochs of the retrain (default: train.epochs)")
    s.add_argument("--resume", metavar="RUN_DIR", help="resume a killed search (and its retrain) from checkpoints")
    s.set_defaults(func=cmd_search_damgan)


def _add_selector(p: argparse.ArgumentParser) -> None:
    p.add_argument("--selector", choices=("da", "darts"),
                   help="da = down-attention (the paper); darts = softmax architecture parameters "
                        "(baseline; see damgan.bilevel, damgan.arch_lr). Default: damgan.selector")


# ====================================================================== ablate damgan (k' grid)
def parse_grid(items: list[str], cfg) -> dict[str, list[Any]]:
    """``kprime=1,2,4`` (repeatable, keys kprime/selector) → validated value lists."""
    from raynas.errors import ConfigError
    from raynas.nn.attention import SELECTORS, check_kprime

    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in GRID_KEYS:
            raise ConfigError(f"--grid {item!r}: write KEY=V1,V2,... with KEY one of {', '.join(GRID_KEYS)} "
                              "(e.g. --grid kprime=1,2,4,8,16)")
        values = [v.strip() for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid {item!r} lists no values")
        if key == "kprime":
            try:
                ints = [int(v) for v in values]
            except ValueError:
                raise ConfigError(f"--grid {item!r}: k' values must be integers") from None
            for k in ints:
                check_kprime(cfg.damgan.search_gf_dim, k)
            grid[key] = ints
        else:
            bad = [v for v in values if v not in SELECTORS]
            if bad:
                raise ConfigError(f"--grid {item!r}: unknown selector {bad[0]!r}; choose from {', '.join(SELECTORS)}")
            grid[key] = values
    return grid


def kprime_summary(df):
    """Final (retrained) rows of an ablation run → per-cell table and per-(selector, k') aggregate."""
    import pandas as pd

    final = df[df["stage"] == "retrain"].copy() if "stage" in df else df.iloc[0:0]
    keep = [c for c in ("kprime", "selector", "seed", "is_mean", "is_std", "fid", "kid_mean", "params",
                        "search_seconds", "search_gpu_seconds", "retrain_epochs", "wall_seconds", "gpu_seconds",
                        "search_is_mean", "search_fid", "genotype", "candidate_id") if c in final]
    cells = final[keep].sort_values(["selector", "kprime", "seed"]).reset_index(drop=True)
    if cells.empty:
        return cells, cells
    num = [c for c in ("is_mean", "fid", "kid_mean", "params", "search_gpu_seconds", "search_seconds") if c in cells]
    for c in num:
        cells[c] = pd.to_numeric(cells[c], errors="coerce")
    agg = cells.groupby(["selector", "kprime"])[num].agg(["mean", "std"])
    agg.columns = [f"{a}_{b}" for a, b in agg.columns]
    agg = agg.reset_index()
    agg["seeds"] = cells.groupby(["selector", "kprime"]).size().values
    return cells, agg


def draw_kprime(agg, out: Path) -> Path | None:
    """IS and FID of the retrained subnets against k' (mean ± std over seeds), like the paper's Fig. 8."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if agg.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, col, label in ((axes[0], "is_mean", "IS (higher is better)"), (axes[1], "fid", "FID (lower is better)")):
        for selector, g in agg.groupby("selector"):
            g = g.sort_values("kprime")
            yerr = g[f"{col}_std"].fillna(0.0) if f"{col}_std" in g else None
            ax.errorbar(g["kprime"], g[f"{col}_mean"], yerr=yerr, marker="o", capsize=3, label=str(selector))
        ax.set_xscale("log", base=2)
        ks = sorted(agg["kprime"].unique())
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_xlabel("k'  (edge ops see C/k' maps)")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    if agg["selector"].nunique() > 1:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def cmd_ablate_damgan(args: argparse.Namespace) -> int:
    from ray import tune

    from raynas.cli import _create_run, _open_resumed_run
    from raynas.errors import ConfigError
    from raynas.results import format_table
    from trainables.damgan import damgan_ablation_cell
    from trainables.launch import run_trainable

    if args.resume:
        run, cfg = _open_resumed_run(args.resume, args)
        resources = _start_ray(args, cfg)
        space = None
    else:
        cfg = _load_config(args)
        grid = parse_grid(args.grid or ["kprime=1,2,4,8,16"], cfg)
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
        space = {key: tune.grid_search(values) for key, values in grid.items()}
        space["seed"] = tune.grid_search([cfg.train.seed + i for i in range(args.seeds)])
        space["retrain_epochs"] = _retrain_epochs(args.retrain_epochs)
        _preflight(cfg)
        resources = _start_ray(args, cfg)
        run = _create_run(cfg, "damgan-ablation")
    print(f"raynas: run directory {run.path}")
    run_trainable(damgan_ablation_cell, cfg, run, resources=resources, param_space=space, resume=bool(args.resume),
                  max_concurrent=args.max_concurrent or 0)
    cells, agg = kprime_summary(run.read())
    cells.to_parquet(run.path / KPRIME_SUMMARY, index=False)
    plot = draw_kprime(agg, run.plots_dir / "ablation_kprime.png")
    cols = [c for c in ("selector", "kprime", "seed", "is_mean", "fid", "params", "search_gpu_seconds",
                        "search_seconds") if c in cells]
    print(format_table(cells, columns=cols))
    if not agg.empty:
        agg.to_parquet(run.path / KPRIME_AGGREGATE, index=False)
        print()
        print(format_table(agg, columns=[c for c in ("selector", "kprime", "seeds", "is_mean_mean", "is_mean_std",
                                                     "fid_mean", "fid_std", "search_gpu_seconds_mean",
                                                     "search_seconds_mean") if c in agg]))
    print(f"\nraynas: table  {run.path / KPRIME_SUMMARY}  (means over seeds: {KPRIME_AGGREGATE})")
    if plot:
        print(f"raynas: plot   {plot}")
    return 0


# ====================================================================== ablate damgan-edge
def edge_summary(df, edge: str):
    """Final rows of an edge run → (per-op table, correlation dict for IS and for −FID)."""
    import pandas as pd

    from raynas.gan.damgan_search import edge_correlation

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


def draw_edge(table, corr: dict[str, Any], out: Path) -> Path | None:
    """Retrained IS against the edge's α weight, one labelled point per op (the paper's Figs. 9–10)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if table.empty:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.scatter(table["alpha_weight"], table["is_mean"], s=30)
    for _, r in table.iterrows():
        ax.annotate(str(r["op"]), (r["alpha_weight"], r["is_mean"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    c = corr.get("is", {})

    def fmt(v: float) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.2f}"

    ax.set_title(f"{corr['edge']} ({corr.get('selector')}): Pearson {fmt(c.get('pearson'))}, "
                 f"Spearman {fmt(c.get('spearman'))}", fontsize=9)
    ax.set_xlabel("architecture weight of the op (α)")
    ax.set_ylabel("IS of the retrained subnet")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _search_outcome(path: Path) -> tuple[Any, dict[str, list[float]]]:
    """(best_G genotype, α table) of a finished search run; GenotypeError for a bad genotype file."""
    from raynas.errors import RunDirError
    from raynas.spaces import Genotype

    alpha_file = path / "alpha.json"
    genotype = Genotype.load(path / "best_G.json")
    if not alpha_file.is_file():
        raise RunDirError(f"{path} has no alpha.json; point --search-run at a finished `raynas search damgan` "
                          "run directory")
    return genotype, json.loads(alpha_file.read_text())


def cmd_ablate_edge(args: argparse.Namespace) -> int:
    from ray import tune

    from raynas.cli import _create_run, _open_resumed_run
    from raynas.errors import ConfigError
    from raynas.gan.damgan_search import check_edge_ops, edge_candidates, parse_edge
    from raynas.results import RunDir, format_table
    from trainables.damgan import damgan_edge_cell
    from trainables.launch import run_trainable

    if args.resume:
        run, cfg = _open_resumed_run(args.resume, args)
        spec = json.loads((run.path / "edge_ablation.json").read_text())
        resources = _start_ray(args, cfg)
    else:
        cfg = _load_config(args)
        edge = parse_edge(args.edge)
        ops = check_edge_ops(edge, [o.strip() for o in args.ops.split(",")] if args.ops else
                             list(edge_candidates(edge)))
        spec = {"edge": edge, "ops": list(ops), "retrain_epochs": _retrain_epochs(args.retrain_epochs),
                "search_run": str(Path(args.search_run).resolve()) if args.search_run else None}
        if args.search_run:  # fail now on a bad genotype or folder, not after Ray starts
            _search_outcome(Path(args.search_run))
            RunDir.open(args.search_run)
        _preflight(cfg)
        resources = _start_ray(args, cfg)
        run = _create_run(cfg, "damgan-edge")
        (run.path / "edge_ablation.json").write_text(json.dumps(spec, indent=2) + "\n")
    edge, ops = spec["edge"], spec["ops"]
    selector = cfg.damgan.selector
    if spec["search_run"]:  # the α weights being judged come from that run's selector
        selector = RunDir.open(spec["search_run"]).config.get("damgan", {}).get("selector", selector)
    print(f"raynas: run directory {run.path}")

    # 1. the search whose α weights are being judged (reused when given or already finished)
    if spec["search_run"]:
        search_path = Path(spec["search_run"])
    else:
        search_path = run.path / "search"
        if not (search_path / "best_G.json").is_file():
            resume = (search_path / "tune").is_dir()
            srun = (RunDir.open(search_path) if resume else
                    RunDir.create(run.path, "search", config=cfg.to_dict(), seed=cfg.train.seed, preset=cfg.preset,
                                  device=cfg.train.device, exist_ok=True))
            print(f"raynas: searching with the {selector} selector in {srun.path}")
            _run_search(cfg, srun, resources, resume=resume)
    base, alpha = _search_outcome(search_path)
    cands = edge_candidates(edge)
    weights = dict(zip(cands, alpha[edge], strict=True))
    print(f"raynas: α of {edge}: " + ", ".join(f"{op}={weights[op]:.4g}" for op in ops))

    # 2. retrain the derived genotype with each op on the edge in turn
    space = None
    resume = (run.path / "tune").is_dir()
    if not resume:
        space = {"edge": edge, "edge_op": tune.grid_search(ops), "base_genotype": base.to_json(), "selector": selector,
                 "edge_alpha": {op: weights[op] for op in ops}, "retrain_epochs": spec["retrain_epochs"]}
    run_trainable(damgan_edge_cell, cfg, run, resources=resources, param_space=space, resume=resume,
                  max_concurrent=args.max_concurrent or 0)
    table, corr = edge_summary(run.read(), edge)
    if table.empty:
        raise ConfigError(f"no retrained results for edge {edge} in {run.path}")
    table.to_parquet(run.path / EDGE_SUMMARY, index=False)
    (run.path / EDGE_CORRELATION).write_text(json.dumps(corr, indent=2) + "\n")
    plot = draw_edge(table, corr, run.plots_dir / "ablation_edge.png")
    print(format_table(table, columns=[c for c in ("op", "alpha_weight", "is_mean", "fid", "params") if c in table]))
    c = corr.get("is", {})
    print(f"\nraynas: {edge} ({selector}): α vs IS  Pearson {c.get('pearson'):.3f} "
          f"(p={c.get('pearson_p'):.3g}), Spearman {c.get('spearman'):.3f} (p={c.get('spearman_p'):.3g}), "
          f"n={int(c.get('n', 0))}")
    print(f"raynas: table  {run.path / EDGE_SUMMARY}   correlation {run.path / EDGE_CORRELATION}")
    if plot:
        print(f"raynas: plot   {plot}")
    return 0


# ====================================================================== registration
def register_ablate(sub: argparse._SubParsersAction) -> None:
    from raynas.cli import _add_config_args, _add_ray_args

    p = sub.add_parser("ablate", help="ablation studies as Tune grids")
    asub = p.add_subparsers(dest="ablation", required=True)

    a = asub.add_parser("damgan", help="DAMGAN k' grid: search → derive → retrain → IS/FID per cell (Fig. 8)")
    _add_config_args(a)
    _add_ray_args(a)
    _add_selector(a)
    a.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="grid axis (kprime or selector), repeatable; default kprime=1,2,4,8,16")
    a.add_argument("--seeds", type=int, default=1, help="seeds per grid point (train.seed, +1, ...)")
    a.add_argument("--retrain-epochs", type=int, help="retrain epochs per cell (default: train.epochs)")
    a.add_argument("--max-concurrent", type=int, help="cap on concurrent cells (default: as resources allow)")
    a.add_argument("--resume", metavar="RUN_DIR", help="resume a killed ablation from its checkpoints")
    a.set_defaults(func=cmd_ablate_damgan)

    e = asub.add_parser("damgan-edge", help="retrain each op of one edge; correlate its α weights with IS "
                                            "(Figs. 9-10)")
    _add_config_args(e)
    _add_ray_args(e)
    _add_selector(e)
    e.add_argument("--edge", required=False, default="cell0:1->3",
                   help="cellI:S->D (default cell0:1->3, the paper's example) or an edge name like cell1.skip[0]")
    e.add_argument("--ops", help="comma-separated subset of the edge's candidate ops (default: all)")
    e.add_argument("--retrain-epochs", type=int, help="retrain epochs per op (default: train.epochs)")
    e.add_argument("--search-run", metavar="RUN_DIR", help="reuse a finished `raynas search damgan` run "
                                                           "(its best_G.json and alpha.json)")
    e.add_argument("--max-concurrent", type=int, help="cap on concurrent retrains")
    e.add_argument("--resume", metavar="RUN_DIR", help="resume a killed edge ablation (search and retrains)")
    e.set_defaults(func=cmd_ablate_edge)
    for register in ABLATIONS:
        register(asub)


# Other methods add `raynas ablate NAME` parsers here.
ABLATIONS: list[Callable[[argparse._SubParsersAction], None]] = []

SEARCH_METHODS.append(register_search_damgan)
EXTRA_COMMANDS.append(register_ablate)
