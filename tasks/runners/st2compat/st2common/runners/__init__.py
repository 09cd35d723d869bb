"""Shim of ``st2common.runners``: only ``base_action`` exists."""
