"""``mtbench report``: rliable statistics, figures, markdown and PDF from run directories on disk."""

from mtbench.report.build import build_report

__all__ = ["build_report"]
