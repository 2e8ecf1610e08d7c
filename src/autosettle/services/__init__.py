"""Use cases: each public function is one operation, run inside one unit of work.

What lives here: onboarding merchants and terminals, API keys and scopes, posting to the
ledger, and (as the capabilities land) payments, settlement, payouts and reconciliation.
Services are the only callers of ``store/`` and ``channels/``; they turn outside requests
into domain values, decide with the domain, and persist in one transaction.

What may not: HTTP, sockets, terminal I/O or printing (adapters do that), and SQL (the
repositories do that). Every operation triggered from outside carries an idempotency key.
"""
