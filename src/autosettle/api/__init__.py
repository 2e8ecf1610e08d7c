"""The REST API (FastAPI): translates HTTP into service calls and back.

What lives here: routers, request/response schemas, authentication by API key, the
idempotency wrapper for mutating requests, and the one table mapping error codes to HTTP
statuses (``errors.py``). Errors always read ``{"error": {"code": ..., "message": ...}}``.

What may not: business rules or SQL. A route validates shapes, calls one service, and
renders its result.
"""
