"""The ISO 8583 terminal host: a TCP server that speaks to POS terminals the way China
UnionPay terminals expect (framing, keys, MAC, PIN blocks, batch settlement).

What lives here: sockets, framing, the message catalogue (messages.py) and the mapping of
messages to service calls (processor.py). What may not: business rules (those are in
services/ and domain/), the store, and the terminal's side of the protocol: the terminal
client and simulator are in ``autosettle.simulators``, which no module here imports.
"""
