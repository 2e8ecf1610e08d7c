"""Channels: issuers and acquiring channels that authorize card transactions.

What lives here: the :class:`~autosettle.channels.base.Channel` interface (one call to
authorize, one to reverse, each with a timeout), the errors a channel raises (translated
once, here, from whatever the transport throws), and the built-in issuer simulator that the
demo and the tests use.

What may not: our own records. A channel never writes autosettle's tables; the simulator
keeps its own state in its own database, like a real issuer would.
"""
