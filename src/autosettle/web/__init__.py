"""The web console: operators and merchant users look at and work the platform in a
browser, served by ``autosettle serve`` under ``/console`` on the API's port.

An adapter like ``api/``: pages are Jinja2 templates rendered on the server from service
answers (``services/``), with htmx for small partial updates; every asset (htmx, the
stylesheet) ships in ``static/`` and charts are server-side SVG
(``autosettle.reports.charts``), so the console works with no internet.

What lives here: routes (``pages.py``), the login, session cookie and CSRF checks
(``auth.py``), formatting and the two languages (``i18n.py``), and the application that
mounts it all (``app.py``: :func:`mount_console`). What may not: the store, channels,
SQLAlchemy, business rules, access decisions (the services decide who sees what, and
another merchant's object is a 404 there).
"""
