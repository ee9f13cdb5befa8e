"""Reports people read: the demo's HTML page, Markdown tables."""
from .html import write_report
from .tables import markdown_table, write_csv

__all__ = ["markdown_table", "write_csv", "write_report"]
