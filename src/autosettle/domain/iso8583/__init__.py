"""ISO 8583 as China UnionPay POS terminals speak it: codec, framing and key algorithms.

What lives here (pure functions and values, no I/O):

* ``spec`` - the CUP POS field layout as a ``pyiso8583`` spec dict;
* ``framing`` - the length-prefixed frame (TPDU, 6-byte header, payload), message
  encode/decode with typed errors, and the layouts of the private fields 48, 60, 61;
* ``crypto`` - DES/3DES, key check values, key generation and wrapping, the CUP ECB and
  X9.19 MACs, ISO 9564 format 0 PIN blocks, and the field 62 working-key block.

What may not: sockets, files, clocks, logging, key storage (the key store and the HSM
interface live outside ``domain``), and imports from outside ``autosettle.domain``
besides the standard library, ``iso8583`` and ``cryptography``.

Everything that crosses the wire is validated here; every failure is a
:class:`~autosettle.domain.errors.ValidationError` subclass whose message never contains
a PAN, track, PIN or key.
"""
