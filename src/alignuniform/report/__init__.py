"""Reports people open: ``report.html`` (self-contained) and ``report.md`` of a run, a sweep or
a measurement, and the side-by-side table of `alignuniform compare`.

    html, md = write_report("runs/a")          # a run or a sweep directory

    build.py       write_report: a run's or a sweep's report (run.py, sweep.py build their blocks)
    measure.py     write_measure_report: the report of one `alignuniform measure`
    compare.py     comparison, format_table, write_compare_report over `entries.read_entries`
    render.py      blocks (headings, text, tables, figures) to HTML and Markdown
    blocks.py, textplane.py: shared blocks, the alignment-uniformity plane in a terminal

The names below load their module on first use.
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "read_entries": "alignuniform.report.entries",
        "write_compare_report": "alignuniform.report.compare",
        "write_measure_report": "alignuniform.report.measure",
        "write_report": "alignuniform.report.build",
    },
)
del lazy_exports
