"""ISO 8583 as China UnionPay POS terminals speak it: codec, framing and key algorithms.

What lives here (pure functions and values, no I/O):

* ``spec`` - the CUP POS field layout as a ``pyiso8583`` spec dict;
* ``frame`` - the length-prefixed frame (length, TPDU, 6-byte header, payload);
* ``message`` - message encode/decode (MTI, bitmap, fields) with typed errors and the
  checks of every field's content;
* ``fields`` - the layouts of the private and composite fields 48 (settlement totals,
  batch upload), 54 (balance amount), 60 and 61;
* ``crypto`` - DES/3DES, key check values, key generation and wrapping, the CUP ECB and
  X9.19 MACs, ISO 9564 format 0 PIN blocks, and the field 62 working-key block.

What may not: sockets, files, clocks, logging, key storage (the key store and the HSM
interface live outside ``domain``), and imports from outside ``autosettle.domain``
besides the standard library, ``iso8583`` and ``cryptography``.

Everything that crosses the wire is validated here; every failure is a
:class:`~autosettle.domain.errors.ValidationError` subclass whose message never contains
a PAN, track, PIN or key.
"""
