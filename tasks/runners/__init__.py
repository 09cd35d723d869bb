"""Runners, one module per runner type behind one interface (base.py); registry.py finds them."""
