"""A tiny stand-in for StackStorm's ``st2reactor``, so pack sensors import it unchanged.

The sensor wrapper puts the st2compat directory on ``sys.path``; nothing in Patchbay imports
it otherwise.
"""
