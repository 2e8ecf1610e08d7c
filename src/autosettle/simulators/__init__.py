"""Simulators: the counterparts and dev tools, outside the product's layers.

What lives here: the issuer simulator that plays the card issuer behind a channel
(issuer.py, implementing :class:`~autosettle.channels.base.Channel`, with its own database),
the POS terminal side of ISO 8583 (terminal_client.py: framing, keys, MAC and PIN blocks as a
terminal does them), the terminal simulator and the demo fleet (terminal.py, fleet.py,
report.py), the demo data (demo_seed.py) and the demo cards (demo_traffic.py).

What may not: be used by the product. No module of api, terminal_host, jobs, services,
store, channels or domain imports this package; only the command line does (``serve``
starts the demo fleet when asked, ``terminal simulate`` runs the simulator). Simulators
talk to the product through services (and the terminal host over TCP), never through the
store: the issuer simulator's own tables are its own (it borrows only the engine factory of
``store.engine``).
"""
