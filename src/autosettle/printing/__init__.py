"""Receipts and printers: slips rendered as pure values, and the output that prints them.

What lives here, in two halves:

* **Rendering, pure** (``layout``, ``slips``): the CUP-style slips (sale, void, refund,
  pre-authorization, completion ... with merchant / cardholder / bank copies and the
  重打印 DUPLICATE mark), decline slips and the batch settlement slip (结算单), laid out
  for 58 mm (32 columns) or 80 mm (48 columns) paper, a CJK character taking two
  columns. Values in, a :class:`~autosettle.printing.layout.Slip` out: no I/O, no
  database, no printer library; only ``autosettle.domain`` and the standard library.
  An import-linter contract keeps it so.
* **Output** (``escpos_out``, ``raster``, ``devices``, ``diagnosis``): a slip as ESC/POS
  bytes (python-escpos: GB18030 text in the printer's Chinese mode ``FS &``, a native QR
  code, a cut), as PNG (Pillow) or PDF (reportlab); the connections to network (TCP
  9100), USB, serial, parallel and file printers with the real-time status query
  (``DLE EOT``); and the troubleshooting walk of ``autosettle printers check``.

Where it sits: beside ``store/`` and ``channels/``, under the services. Services decide
who may print or read what, build the slip data from transactions, keep the print queue
and call the output; ``printing`` imports neither services, store, channels nor any
adapter, and the adapters (api, cli, jobs, terminal host) never import ``printing``:
they ask the services (import-linter contracts in pyproject.toml).

Never here: a full card number. A slip only ever shows the stored masked number, and
:func:`~autosettle.printing.slips.mask_pan` re-masks whatever it is given to first 6 /
last 4 digits.
"""
