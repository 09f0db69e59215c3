"""Report stage: one self-contained HTML file from runs, comparisons and correlation folders."""

from gradspec.report.html import write_report

__all__ = ["write_report"]
