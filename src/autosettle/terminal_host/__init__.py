"""The ISO 8583 terminal host: a TCP server that speaks to POS terminals the way China
UnionPay terminals expect (framing, keys, MAC, PIN blocks, batch settlement).

What lives here: sockets, framing, message mapping to payment service calls, and the
terminal simulator. What may not: business rules (those are in services/ and domain/).
"""
