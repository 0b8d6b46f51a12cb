"""Forwarding a client's call to its provider: read the request, admit it against the budget,
send it with the operator's key, pass the answer through, price and record it."""
