"""Put values into shell command text so that the shell reads each one as plain data.

Templates rendered for a shell mark every substituted value with a placeholder;
``fill_placeholders`` then walks the text with a small model of POSIX shell quoting and
writes each value quoted for the spot it lands in: bare (``echo {{ x }}``), inside single
quotes (``echo '{{ x }}'``), inside double quotes or ``$( )``. Spots where no quoting is
safe, or where this model could misread the shell, are refused: backticks, comments,
``$'...'``, anything after a here-document, right after ``\\`` or ``$``, and after a
``case`` inside a double-quoted ``$( )`` (its ``pattern)`` reads like the closing paren).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

PLAIN, SINGLE, DOUBLE, SUBST = "plain", "single", "double", "subst"
BACKTICK, COMMENT, ANSI = "backtick", "comment", "ansi-c"
CASE = re.compile(r"case\s")
WORD_BREAKS = " \t\n;&|()<>"


class ShellQuotingError(ValueError):
    """A value would land where the shell could read it as code."""


def quote_for(state: str, value: str) -> str:
    if "\x00" in value:
        raise ShellQuotingError("a value contains a NUL byte, which a shell command cannot hold")
    if state in (PLAIN, SUBST):
        return shlex.quote(value)
    if state == SINGLE:
        return value.replace("'", "'\\''")  # close the quote, an escaped quote, reopen
    if state == DOUBLE:
        return re.sub(r'([\\"$`])', r"\\\1", value)
    if state == BACKTICK:
        raise ShellQuotingError("a value inside `backticks` cannot be quoted safely; use $( ) instead")
    if state == ANSI:
        raise ShellQuotingError("a value inside $'...' cannot be quoted safely")
    raise ShellQuotingError("a value inside a shell comment cannot be placed safely")


def fill_placeholders(text: str, placeholder: re.Pattern[str], values: Sequence[str]) -> str:
    """``text`` with each placeholder (group 1 = index into ``values``) replaced, quoted."""
    out: list[str] = []
    stack = [PLAIN]
    after_heredoc = ambiguous = False
    i = 0
    while i < len(text):
        state = stack[-1]
        match = placeholder.match(text, i) if text[i] == "\x00" else None
        if match:
            if after_heredoc:
                raise ShellQuotingError("a value after a here-document (<<) cannot be quoted safely; "
                                        "pass it in 'env' instead")
            if ambiguous:
                raise ShellQuotingError("a value after 'case' inside a double-quoted $( ) cannot be quoted safely")
            if out and out[-1] == "$" and state not in (SINGLE, COMMENT):
                raise ShellQuotingError("a value right after '$' cannot be quoted safely")
            out.append(quote_for(state, values[int(match.group(1))]))
            i = match.end()
            continue
        char = text[i]
        if char == "\\" and state not in (SINGLE, COMMENT):
            if placeholder.match(text, i + 1):
                raise ShellQuotingError("a value right after '\\' cannot be quoted safely")
            out.append(text[i:i + 2])  # the escaped character is never syntax
            i += 2
            continue
        out.append(char)
        i += 1
        if state == SINGLE:
            if char == "'":
                stack.pop()
        elif state == ANSI:
            if char == "'":
                stack.pop()
        elif state == COMMENT:
            if char == "\n":
                stack.pop()
        elif state == BACKTICK:
            if char == "`":
                stack.pop()
        elif char == "`":
            stack.append(BACKTICK)
        elif char == "$" and text.startswith("(", i):
            out.append("(")
            i += 1
            stack.append(SUBST)
        elif state == DOUBLE:
            if char == '"':
                stack.pop()
        elif char == "'":
            stack.append(ANSI if len(out) > 1 and out[-2] == "$" else SINGLE)
        elif char == '"':
            stack.append(DOUBLE)
        elif char == "(":
            stack.append(SUBST)
        elif char == ")" and state == SUBST:
            stack.pop()
        elif char == "#" and (len(out) == 1 or out[-2][-1:] in WORD_BREAKS):
            stack.append(COMMENT)
        elif char == "c" and state == SUBST and DOUBLE in stack and CASE.match(text, i - 1) \
                and (len(out) == 1 or out[-2][-1:] in WORD_BREAKS):
            ambiguous = True
        elif char == "<" and text.startswith("<", i):
            after_heredoc = True
    return "".join(out)
