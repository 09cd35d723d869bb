"""A tiny stand-in for StackStorm's ``st2common``, so existing python actions import it.

The python-script wrapper puts this directory on ``sys.path``; nothing in Patchbay imports
it otherwise.
"""
