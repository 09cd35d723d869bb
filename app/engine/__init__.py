"""Pure logic with no I/O: parameter schemas, criteria, templates."""
