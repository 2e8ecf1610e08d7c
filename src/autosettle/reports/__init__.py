"""Reports: one source of numbers for the console, the API and the command line.

Layering: adapters (api, cli, web) → reports → services → store. Reports import no
SQLAlchemy and nothing of the store but what ``uow`` hands them (``uow.reports``, the
set-based queries of ``store/reports.py``); an import-linter contract keeps it so.

- ``catalog.py``: the reports themselves. ``build(ctx, who, ReportRequest(name, ...))``
  checks access (``services/access.py``: another merchant's report is ``not_found``) and
  parameters, then returns a :class:`~autosettle.reports.model.Report`.
- ``model.py``: the neutral tabular model (typed columns, rows that may stream, totals
  summed by the database, figures, charts) and the exact fen → yuan conversions.
- ``formats.py``: ``render(report, ReportFormat.X, binary_file, progress)`` for every
  format; ``tabular.py`` (CSV with BOM, JSON, both streamed as byte chunks: ``iter_csv``,
  ``iter_json``), ``xlsx.py`` (openpyxl), ``pdf.py`` (reportlab, with ``fonts/``).
- ``charts.py`` holds the one definition of a chart (a ``Chart`` of labelled series) and
  its server-side SVG rendering; the console shows the SVG and the PDF reports draw the same
  ``Chart`` with reportlab graphics, so a chart never says two different things in two
  places.

Example (an adapter)::

    report = catalog.build(ctx, who, ReportRequest(ReportName.STATEMENT, date_from=d1,
                                                   date_to=d2, merchant_id=mid))
    with open(path, "wb") as out:
        render(report, ReportFormat.PDF, out)

See docs/reports.md.
"""
