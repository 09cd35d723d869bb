"""Behaviour, one module per concept. Services flush; the request or task commits."""
