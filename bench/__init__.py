"""Benchmarks of autosettle: ``python -m bench [names...] [--quick] [--json] [--sqlite-only]``
(``make bench``, with ``BENCH_ARGS``).

What lives here: one module per benchmark, each exposing ``run(BenchConfig) -> BenchReport``
and listed in :data:`bench.registry.BENCHMARKS`; shared helpers in :mod:`bench.core`; the
runner in :mod:`bench.__main__`. Every benchmark reports, next to its own numbers, a
reference measured in the same run on the same machine, and the runner records the machine
(CPU count, Python, database versions). Results go to ``bench/results/`` (git-ignored).

What may not live here: timing assertions. Benchmarks measure and report; they fail only
when the work they measured was wrong (e.g. the ledger does not balance afterwards).
To add a benchmark: write ``bench/<name>.py`` with ``run`` and add it to the registry.
"""
