"""Patchbay's shim of the parts of StackStorm's st2common that python actions import."""
