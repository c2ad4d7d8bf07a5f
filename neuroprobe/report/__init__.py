"""Study reports: documents, a report for any results folder, methods text, provenance.

* :mod:`~neuroprobe.report.document` -- :class:`Section` and :func:`write_report` (Markdown +
  HTML, figures linked or embedded);
* :mod:`~neuroprobe.report.build` -- :func:`build`: the report of a folder of neuroprobe outputs
  (``neuroprobe report RESULTS_DIR``);
* :mod:`~neuroprobe.report.methods` -- generated methods paragraphs and references;
* :mod:`~neuroprobe.report.provenance` -- what each command records about itself;
* :mod:`~neuroprobe.report.results` -- recognising the outputs of a folder.
"""

from neuroprobe.report.build import build
from neuroprobe.report.document import (
    Section,
    format_value,
    html_table,
    markdown_table,
    write_report,
)
from neuroprobe.report.methods import Methods, describe_command, describe_estimator
from neuroprobe.report.provenance import read_provenance, record_command
from neuroprobe.report.results import Result, find_results

__all__ = [
    "Section",
    "write_report",
    "format_value",
    "markdown_table",
    "html_table",
    "build",
    "Methods",
    "describe_command",
    "describe_estimator",
    "read_provenance",
    "record_command",
    "Result",
    "find_results",
]
