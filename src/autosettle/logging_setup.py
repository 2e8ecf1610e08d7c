"""The logging setup of autosettle's processes: one format, and no forged log lines.

A log message often carries text a client chose: a terminal id from field 41, a batch
number, a URL. Written raw, a terminal id of ``"\\nERROR x"`` would add a line that looks
like a record of its own. :class:`SafeTextFilter` sits on every handler the setup installs
(so it covers every logger that propagates to the root: the terminal host, the API, the
jobs, and uvicorn's, which are told to propagate) and, before anything is written:

* formats the message with its arguments and escapes every control character in it: CR,
  LF and tab as ``\\r``, ``\\n``, ``\\t``, other C0 and C1 characters and DEL as
  ``\\xNN``, and the Unicode line and paragraph separators as ``\\u2028`` / ``\\u2029``;
  printable non-ASCII text (a merchant's Chinese name) is kept as it is;
* escapes the same characters inside each line of a traceback or stack, and indents every
  line of it that does not start with a blank, so an exception message cannot forge a
  line either: only the first line of a record starts at the margin.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTINUATION_INDENT: Final = "  "
_C1_END: Final = 0xA0
_ESCAPES: Final[dict[int, str]] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, _C1_END))},
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
    0x2028: "\\u2028", 0x2029: "\\u2029",
}
_SAFE_MARK: Final = "_autosettle_safe_text"
_TRACEBACKS: Final = logging.Formatter()


def escape_control(text: str) -> str:
    """``text`` on one line: control characters escaped, printable text (any script) kept."""
    return text.translate(_ESCAPES)


def _continuation(text: str) -> str:
    """Traceback or stack lines, each escaped and starting with a blank."""
    lines = (escape_control(line) for line in text.split("\n"))
    return "\n".join(line if line[:1] == " " else CONTINUATION_INDENT + line
                     for line in lines)


class SafeTextFilter(logging.Filter):
    """Escapes control characters in a record's message, arguments and traceback.

    Installed on handlers (a filter on a logger would miss records propagated from its
    children). It rewrites the record once (``msg`` becomes the escaped text, ``args``
    empty), so every later handler writes the same safe text. It never raises: a record
    whose arguments do not fit its message is left for the handler to report.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SAFE_MARK, False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # the handler's formatter reports it (logging.raiseExceptions)
            return True
        record.msg, record.args = escape_control(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _continuation(record.exc_text)
        if record.stack_info:
            record.stack_info = _continuation(record.stack_info)
        setattr(record, _SAFE_MARK, True)
        return True


class _SafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` installs (recognised when called again)."""


UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def _is_basic(handler: logging.Handler) -> bool:
    """A handler ``logging.basicConfig()`` installed: some libraries call it on import
    (python-escpos does), which would print every record a second time, unfiltered."""
    return (type(handler) is logging.StreamHandler and handler.formatter is not None
            and handler.formatter._fmt == logging.BASIC_FORMAT)


def configure_logging(level: str | int = logging.INFO,
                      stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr) in :data:`LOG_FORMAT` through :class:`SafeTextFilter`.

    Replaces the handler an earlier call installed (and one a library's import put there
    with ``logging.basicConfig()``), puts the filter on any other handler
    the root logger already has, and makes uvicorn's loggers propagate to the root (run
    uvicorn with ``log_config=None`` so it does not install handlers of its own).
    Returns the handler (a test removes it with ``logging.getLogger().removeHandler``).
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SafeHandler) or _is_basic(h)]:
        root.removeHandler(old)
    handler = _SafeHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    for existing in root.handlers:
        if not any(isinstance(f, SafeTextFilter) for f in existing.filters):
            existing.addFilter(SafeTextFilter())
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
