"""The command line (``autosettle``): an adapter, the top layer.

What lives here: one module per command group (see app.py), the consoles, JSON output and
error handling shared by all of them, once (console.py), and the wiring of a process:
which channel the ``channel`` setting names (wiring.py). ``serve`` starts the API, the
terminal host and the jobs, and the simulators only when asked (the demo fleet when
``demo_traffic_interval_s`` > 0).

What may not: business rules, SQL, or deciding who may do what: every command calls one
service function and prints its answer. This is the only package that may import
``autosettle.simulators``.
"""

from autosettle.cli.app import app, main

__all__ = ["app", "main"]
