"""Report documents: one Markdown and one HTML file with tables and PNG figures.

A report is a title, an optional summary and a list of :class:`Section` (heading, paragraphs,
figures, tables). :func:`write_report` writes ``<name>.md`` and ``<name>.html`` into a folder;
figures are referenced by paths relative to that folder (so the folder can be moved or zipped
whole), or embedded in the HTML as base64 data with ``embed_images=True`` (one self-contained
file). Files are written to a temporary name and renamed.

Examples
--------
>>> from neuroprobe.report import Section, write_report
>>> sections = [Section("Decoding", "Accuracy per layer.", figures=[("figures/decoding.png",
...             "Cross-validated accuracy")], table=(["layer", "accuracy"], [["conv1", 0.41]]))]
>>> write_report("study_out", "My study", sections, summary="conv3 wins.")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from neuroprobe._utils import atomic_path

__all__ = ["Section", "write_report", "format_value", "markdown_table", "html_table"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 960px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
.summary { background: #f3f6fa; border-left: 4px solid #3b6ea5; padding: .6em 1em; }
.summary p { margin: .3em 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #eee; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; }
.source { font-size: 0.9em; color: #555; margin-top: -.5em; }
code, pre { background: #f4f4f4; padding: 0 .2em; }
pre { padding: .6em; overflow-x: auto; }
"""


@dataclass
class Section:
    """One section of a report.

    Parameters
    ----------
    title : str
    text : str or list of str
        Paragraphs (plain text; a blank line separates paragraphs). Text between backticks is
        shown as code.
    figures : list of (path, caption)
        PNG files, absolute or relative to the report folder.
    table : (header, rows) or None
        ``header`` is a list of column names, ``rows`` a list of lists of values (numbers are
        formatted with :func:`format_value`).
    code : str or None
        A code block shown after the text (e.g. the equivalent command line).
    source : str or None
        What produced the section (a command or a call), shown under its heading.
    """

    title: str
    text: object = ""
    figures: list = field(default_factory=list)
    table: tuple | None = None
    code: str | None = None
    source: str | None = None

    def paragraphs(self):
        """The text as a list of paragraphs."""
        if isinstance(self.text, (list, tuple)):
            parts = [str(t) for t in self.text]
        else:
            parts = str(self.text or "").split("\n\n")
        return [" ".join(p.split()) for p in parts if p.strip()]


def format_value(value, digits=3):
    """Format a table cell: floats with ``digits`` significant decimals, p-values kept readable."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if v != v:  # NaN
            return "nan"
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"{v:.1e}"
        return f"{v:.{digits}f}"
    return str(value)


def _check_table(table):
    header, rows = table
    header = [str(h) for h in header]
    rows = [list(r) for r in rows]
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"table row {i} has {len(row)} cells but the header has {len(header)}: {header}"
            )
    return header, rows


def markdown_table(header, rows):
    """A GitHub-flavoured Markdown table."""
    header, rows = _check_table((header, rows))

    def esc(text):
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(esc(format_value(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(header, rows):
    """An HTML table (cells escaped)."""
    header, rows = _check_table((header, rows))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _inline_code_html(text):
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _relative(path, folder):
    """``path`` as a link from a file in ``folder``: relative to ``folder`` when inside it (the
    report opens wherever the folder is moved), else an absolute ``file://`` URI. A relative
    ``path`` is taken from the working directory, like ``folder`` itself."""
    try:
        return Path(path).resolve().relative_to(Path(folder).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_uri()


def _figure_src(path, folder, embed):
    full = Path(path) if Path(path).is_absolute() else folder / path
    if not full.is_file():
        raise FileNotFoundError(f"report figure not found: {full}")
    if embed:
        data = base64.b64encode(full.read_bytes()).decode("ascii")
        return f"data:image/png;base64,{data}"
    return _relative(full, folder)


def _markdown(title, summary, sections, folder):
    out = [f"# {title}", ""]
    if summary:
        out += [f"> {line}" if line.strip() else ">" for line in str(summary).splitlines()] + [""]
    for sec in sections:
        out += [f"## {sec.title}", ""]
        if sec.source:
            out += [f"*Produced by:* {sec.source}", ""]
        for par in sec.paragraphs():
            out += [par, ""]
        if sec.code:
            out += ["```bash", sec.code.rstrip(), "```", ""]
        if sec.table is not None:
            out += [markdown_table(*sec.table), ""]
        for path, caption in sec.figures:
            src = _figure_src(path, folder, embed=False)
            out += [f"![{caption}]({src})", "", f"*{caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


def _html(title, summary, sections, folder, embed):
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if summary:
        lines = "".join(f"<p>{_inline_code_html(line)}</p>" for line in str(summary).splitlines()
                        if line.strip())
        out.append(f'<div class="summary">{lines}</div>')
    for sec in sections:
        out.append(f"<h2>{html.escape(sec.title)}</h2>")
        if sec.source:
            out.append(f'<p class="source">Produced by: {_inline_code_html(sec.source)}</p>')
        out += [f"<p>{_inline_code_html(p)}</p>" for p in sec.paragraphs()]
        if sec.code:
            out.append(f"<pre><code>{html.escape(sec.code.rstrip())}</code></pre>")
        if sec.table is not None:
            out.append(html_table(*sec.table))
        for path, caption in sec.figures:
            src = _figure_src(path, folder, embed)
            out.append(
                f'<figure><img src="{html.escape(src, quote=True)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_report(folder, title, sections, *, summary=None, name="report", embed_images=False):
    """Write ``<folder>/<name>.md`` and ``<folder>/<name>.html``.

    Parameters
    ----------
    folder : str or Path
        Output folder (created if needed); relative figure paths are relative to it.
    title : str
    sections : list of Section
    summary : str, optional
        Shown at the top (one paragraph per line).
    name : str
        File name without extension.
    embed_images : bool
        Embed the PNG files in the HTML (base64) instead of linking them.

    Returns
    -------
    dict
        ``{"markdown": Path, "html": Path}``.

    Raises
    ------
    FileNotFoundError
        A figure file does not exist (nothing is written).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sections = list(sections)
    for i, sec in enumerate(sections):
        if not isinstance(sec, Section):
            raise TypeError(f"sections[{i}] must be a Section, got {type(sec).__name__}")
        if sec.table is not None:
            _check_table(sec.table)
    md = _markdown(title, summary, sections, folder)
    page = _html(title, summary, sections, folder, embed_images)
    paths = {"markdown": folder / f"{name}.md", "html": folder / f"{name}.html"}
    for key, text in (("markdown", md), ("html", page)):
        with atomic_path(paths[key], suffix=paths[key].suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return paths
