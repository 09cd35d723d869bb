"""Runners, one module per runner type; importing this package registers them all."""
