"""Channels: issuers and acquiring channels that authorize card transactions.

What lives here: the :class:`~autosettle.channels.base.Channel` interface (one call to
authorize, one to reverse, each with a timeout) and the errors a channel raises (translated
once, here, from whatever the transport throws). Real channels (a card network, an
acquiring channel) go here; the issuer simulator is a counterpart, not a channel of the
product, and lives in ``autosettle.simulators.issuer``. Which channel a process uses is
the ``channel`` setting, wired by the command line (``autosettle.cli.wiring``).

What may not: our own records (a channel never writes autosettle's tables), and imports of
``autosettle.simulators``.
"""
