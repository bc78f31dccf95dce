"""Run directories and results: append-only Parquet rows, Pareto fronts, text/CSV tables (no Ray)."""

from raynas.results.pareto import dominates, pareto_front
from raynas.results.rundir import RESULT_COLUMNS, RunDir, package_versions
from raynas.results.table import export_csv, format_table

__all__ = ["RESULT_COLUMNS", "RunDir", "dominates", "export_csv", "format_table", "package_versions",
           "pareto_front"]
