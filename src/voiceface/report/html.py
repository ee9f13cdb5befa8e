"""The demo's self-contained report: Markdown sections rendered to one HTML page with figures beside it."""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

import markdown

from ..methods import DemoSection

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 0.85em; color: #555; }
code, pre { background: #f6f6f6; } .failed { color: #a00; }
"""


def write_report(sections: Sequence[DemoSection], out: str | os.PathLike, title: str, intro: str = "") -> Path:
    """Write ``out`` (an HTML file); figure paths are made relative to its folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = markdown.Markdown(extensions=["tables", "fenced_code"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>", md.convert(intro)]
    for s in sections:
        md.reset()
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.append(md.convert(s.markdown))
        for fig in s.figures:
            rel = os.path.relpath(Path(fig).resolve(), out.parent.resolve())
            parts.append(f"<figure><img src='{html.escape(rel)}' alt=''><figcaption>{html.escape(Path(fig).name)}"
                         "</figcaption></figure>")
    parts.append("</body></html>")
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
