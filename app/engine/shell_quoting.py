"""Put values into shell command text so that no shell ever reads part of one as code.

Templates rendered for a shell mark every substituted value with a placeholder;
``fill_placeholders`` walks the text with a model of POSIX shell syntax: quoting states,
words, simple commands. Each value is written quoted for the spot it lands in (bare,
inside '...', inside "..." or $( )), after its command says how the word is used
(app/engine/shell_commands.py): a value in the code of a nested shell (``sh -c '...'``,
``eval``, ``ssh host '...'``) is quoted for that inner shell first, then for the outer one;
in arithmetic or an array subscript only an integer literal may land; a value that would
start an option, name the command to run, be a variable name or another language's
program is refused. So are spots where no quoting is safe or this model could misread the
shell: backticks, comments, ``$'...'``, ``${...}``, after a here-document, right after
``\\`` or ``$``, after a ``case`` inside a double-quoted ``$( )``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Sequence

from app.engine.shell_commands import (
    ARG,
    ARITH,
    CODE,
    DATA,
    NAME,
    REFUSE,
    RESERVED,
    VARNAME,
    Role,
    command_roles,
)

PLAIN, SINGLE, DOUBLE, SUBST = "plain", "single", "double", "subst"
BACKTICK, COMMENT, ANSI, ARITHMETIC, PARAM = "backtick", "comment", "ansi-c", "arithmetic", "parameter"
CASE = re.compile(r"case\s")
WORD_BREAKS = " \t\n;&|()<>"
MARK = re.compile(r"\x00(\d{6})\x00")
INTEGER = re.compile(r"[+-]?[0-9]{1,40}\Z")
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[[^\]]*\Z")  # a word so far that opened a[...
SPECIAL_PARAMETER = re.compile(r"[A-Za-z0-9_@*#?$!-]")


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
    if state == ARITHMETIC:
        return value  # checked to be an integer literal when placed
    if state == BACKTICK:
        raise ShellQuotingError("a value inside `backticks` cannot be quoted safely; use $( ) instead")
    if state == ANSI:
        raise ShellQuotingError("a value inside $'...' cannot be quoted safely")
    raise ShellQuotingError("a value inside a shell comment cannot be placed safely")


def fill_placeholders(text: str, placeholder: re.Pattern[str], values: Sequence[str],
                      names: Sequence[Collection[str]] = (), allow_options: Collection[str] = ()) -> str:
    """``text`` with each placeholder (group 1 = index into ``values``) replaced, quoted.

    ``names[i]`` are the parameters value ``i`` came from (for messages, and for
    ``allow_options``: the parameters whose values may start with '-').
    """
    if "\x00" in placeholder.sub("", text):
        raise ShellQuotingError("the command holds a NUL byte")
    marked = placeholder.sub(lambda m: f"\x00{int(m.group(1)):06d}\x00", text)
    values = [str(v) for v in values]
    if any("\x00" in v for v in values):
        raise ShellQuotingError("a value contains a NUL byte, which a shell command cannot hold")
    filler = _Filler(values, list(names) + [()] * (len(values) - len(names)), set(allow_options))
    return filler.fill(marked, values_present=bool(values))[0]


class _Slot:
    """One placeholder: where it stands and, once its command is known, what it must read as."""

    def __init__(self, index: int, state: str, prefix: str) -> None:
        self.index, self.state, self.prefix = index, state, prefix
        self.payload: str | None = None  # the text the shell must see here after quote removal


class _Word:
    def __init__(self) -> None:
        self.text: list[str] = []  # after quote removal; slots as markers
        self.slots: list[_Slot] = []
        self.dynamic = False  # holds an expansion, a substitution or a glob of this shell
        self.redirect = False


class _Frame:
    """A command list: the whole text, a $( ) or a ( ) subshell."""

    def __init__(self, depth: int) -> None:
        self.depth = depth  # its entry's index in the state stack
        self.words: list[_Word] = []
        self.word: _Word | None = None
        self.redirect_next = False
        self.in_test = False  # between '[[' and ']]' across && and ||

    def current(self) -> _Word:
        if self.word is None:
            self.word = _Word()
        return self.word


class _Filler:
    def __init__(self, values: list[str], names: list[Collection[str]], allow: set[str]) -> None:
        self.values, self.names, self.allow = values, names, allow

    def who(self, index: int) -> str:
        names = sorted(self.names[index])
        return f"the value of {' / '.join(repr(n) for n in names)}" if names else "a substituted value"

    def fill(self, text: str, values_present: bool) -> tuple[str, list[_Slot]]:
        """The text with every marker quoted, and its slots in order."""
        walk = _Walk(self, text, values_present)
        out = walk.run()
        slots = [piece for piece in out if isinstance(piece, _Slot)]
        return "".join(quote_for(p.state, p.payload or "") if isinstance(p, _Slot) else p for p in out), slots

    def check(self, slot: _Slot, role: Role) -> None:
        value, who = self.values[slot.index], self.who(slot.index)
        if SUBSCRIPT.match(slot.prefix) and not INTEGER.match(value):
            raise ShellQuotingError(f"{who} lands in an array subscript, which bash evaluates as arithmetic: "
                                    "only an integer literal may stand there")
        if role.kind == NAME:
            what = f"the program or script that '{role.detail}' runs" if role.detail else "the command to run"
            raise ShellQuotingError(f"{who} would name {what}; a value may only be an argument")
        if role.kind == ARITH:
            self.integer(slot.index, f"an arithmetic operand of '{role.detail}'")
        elif role.kind == VARNAME and "=" not in slot.prefix and not SUBSCRIPT.match(slot.prefix):
            name = (slot.prefix + value).split("=", 1)[0]
            if not PLAIN_NAME.match(name):
                raise ShellQuotingError(f"{who} stands where '{role.detail}' expects a variable name "
                                        "(bash evaluates a[...] there): only a plain name may stand there")
        elif role.kind == ARG and not slot.prefix and value.startswith("-") \
                and not (self.names[slot.index] and set(self.names[slot.index]) <= self.allow):
            raise ShellQuotingError(f"{who} starts with '-' and would be read as an option by '{role.detail}'; "
                                    "declare the parameter with allow_options: true if that is intended")
        elif role.kind == REFUSE:
            raise ShellQuotingError(f"{who} cannot be placed here: {role.detail}")
        slot.payload = value

    def integer(self, index: int, where: str) -> str:
        value = self.values[index]
        if not INTEGER.match(value):
            raise ShellQuotingError(f"{self.who(index)} is {where}, where only an integer literal may stand "
                                    "(bash runs commands found in arithmetic)")
        return value


class _Walk:
    """One pass over one command text (the outer command, or a nested shell's code)."""

    def __init__(self, filler: _Filler, text: str, values_present: bool) -> None:
        self.filler, self.text, self.values_present = filler, text, values_present
        self.out: list[str | _Slot] = []
        self.stack: list[list] = [[PLAIN]]  # [state] or [ARITHMETIC, closer, depth]
        self.frames = [_Frame(0)]
        self.after_heredoc = self.ambiguous = False

    def run(self) -> list[str | _Slot]:
        text, i = self.text, 0
        while i < len(text):
            match = MARK.match(text, i) if text[i] == "\x00" else None
            if match:
                self.place(int(match.group(1)), i)
                i = match.end()
                continue
            i = self.step(i)
        if self.after_heredoc is False and len(self.stack) > 1 and any(isinstance(p, _Slot) for p in self.out):
            raise ShellQuotingError("the command's quotes or parentheses are not closed")
        for frame in reversed(self.frames):
            self.end_command(frame)
        return self.out

    # -- characters ------------------------------------------------------------------

    def tracking(self) -> bool:
        """Whether characters here are part of the current word's text."""
        return all(entry[0] in (SINGLE, DOUBLE) for entry in self.stack[self.frames[-1].depth + 1:])

    def add(self, chars: str) -> None:
        if self.tracking():
            self.frames[-1].current().text.append(chars)

    def step(self, i: int) -> int:
        text, state = self.text, self.stack[-1][0]
        char = text[i]
        if char == "\\" and state not in (SINGLE, COMMENT):
            if MARK.match(text, i + 1):
                raise ShellQuotingError("a value right after '\\' cannot be quoted safely")
            escaped = text[i + 1:i + 2]
            self.out.append(text[i:i + 2])  # the escaped character is never syntax
            if state in (PLAIN, SUBST):
                self.add("" if escaped == "\n" else escaped)
            elif state == DOUBLE:
                self.add(("" if escaped == "\n" else escaped) if escaped in '$`"\\\n' else "\\" + escaped)
            return i + 2
        self.out.append(char)
        i += 1
        if state in (SINGLE, ANSI):
            if char == "'":
                self.stack.pop()
            else:
                self.add(char)
        elif state == COMMENT:
            if char == "\n":
                self.stack.pop()
                self.end_command(self.frames[-1])
        elif state == BACKTICK:
            if char == "`":
                self.stack.pop()
        elif char == "`":
            self.frames[-1].current().dynamic = True
            self.stack.append([BACKTICK])
        elif char == "$" and state != ANSI:
            i = self.dollar(i)
        elif state == DOUBLE:
            if char == '"':
                self.stack.pop()
            else:
                self.add(char)
        elif state == ARITHMETIC:
            i = self.arithmetic(char, i)
        elif state == PARAM:
            if char == "}":
                self.stack.pop()
            elif char == '"':
                self.stack.append([DOUBLE])
            elif char == "'" and self.stack[-2][0] != DOUBLE:
                self.stack.append([SINGLE])
        else:
            i = self.unquoted(char, i)
        return i

    def dollar(self, i: int) -> int:
        text, word = self.text, self.frames[-1].current()
        for opener, entry in (("((", [ARITHMETIC, "))", 0]), ("(", None), ("{", [PARAM]), ("[", [ARITHMETIC, "]", 0]),
                              ("'", [ANSI])):
            if text.startswith(opener, i):
                if opener == "'" and self.stack[-1][0] not in (PLAIN, SUBST):
                    break
                self.out.append(opener)
                word.dynamic = True
                if entry is None:
                    self.push_frame()
                else:
                    self.stack.append(entry)
                return i + len(opener)
        if SPECIAL_PARAMETER.match(text, i):
            word.dynamic = True
        self.add("$")
        return i

    def arithmetic(self, char: str, i: int) -> int:
        entry = self.stack[-1]
        if char == "(":
            entry[2] += 1
        elif char == ")" and entry[2] > 0:
            entry[2] -= 1
        elif char == ")" and entry[1] == "))" and self.text.startswith(")", i):
            self.out.append(")")
            self.stack.pop()
            return i + 1
        elif char == "]" and entry[1] == "]":
            self.stack.pop()
        elif char == '"':
            self.stack.append([DOUBLE])
        elif char == "'":
            self.stack.append([SINGLE])
        return i

    def unquoted(self, char: str, i: int) -> int:
        text, frame, state = self.text, self.frames[-1], self.stack[-1][0]
        if char == "'":
            self.frames[-1].current()
            self.stack.append([SINGLE])
        elif char == '"':
            self.frames[-1].current()
            self.stack.append([DOUBLE])
        elif char in " \t":
            self.end_word(frame)
        elif char in "\n;&|":
            self.end_word(frame)
            self.end_command(frame)
        elif char == "(":
            starts_command = frame.word is None and all(w.slots == [] and "".join(w.text) in RESERVED | {"for"}
                                                        for w in frame.words)
            if starts_command and text.startswith("(", i):
                self.out.append("(")
                self.stack.append([ARITHMETIC, "))", 0])  # (( ... )) and for (( ... ))
                return i + 1
            self.end_word(frame)
            self.end_command(frame)
            self.push_frame()
        elif char == ")":
            self.end_word(frame)
            self.end_command(frame)
            if state == SUBST:
                self.stack.pop()
                self.frames.pop()
        elif char in "<>":
            return self.redirect(char, i)
        elif char == "#" and frame.word is None:
            self.stack.append([COMMENT])
        elif char == "c" and state == SUBST and any(e[0] == DOUBLE for e in self.stack) \
                and CASE.match(text, i - 1) and (i == 1 or text[i - 2] in WORD_BREAKS):
            self.ambiguous = True
            self.add(char)
        else:
            if char in "*?[":
                frame.current().dynamic = True  # a glob: the shell may turn the word into others
            self.add(char)
        return i

    def redirect(self, char: str, i: int) -> int:
        frame, text = self.frames[-1], self.text
        if frame.word is not None and "".join(frame.word.text).isdigit() and not frame.word.slots:
            frame.word = None  # '2>': a file descriptor number, not an argument
        self.end_word(frame)
        if text.startswith("(", i):  # <( ) and >( ): a process substitution is a word
            self.out.append("(")
            frame.current().dynamic = True
            self.push_frame()
            return i + 1
        operator = char
        while i < len(text) and text[i] in "<>&|-" and len(operator) < 3:
            operator += text[i]
            self.out.append(text[i])
            i += 1
        if operator.startswith("<<") and not operator.startswith("<<<"):
            self.after_heredoc = True
        frame.redirect_next = True
        return i

    def push_frame(self) -> None:
        self.stack.append([SUBST])
        self.frames.append(_Frame(len(self.stack) - 1))

    # -- values and commands ---------------------------------------------------------

    def place(self, index: int, i: int) -> None:
        state = self.stack[-1][0]
        if self.after_heredoc:
            raise ShellQuotingError("a value after a here-document (<<) cannot be quoted safely; "
                                    "pass it in 'env' instead")
        if self.ambiguous:
            raise ShellQuotingError("a value after 'case' inside a double-quoted $( ) cannot be quoted safely")
        if i > 0 and self.text[i - 1] == "$" and state not in (SINGLE, COMMENT):
            raise ShellQuotingError("a value right after '$' cannot be quoted safely")
        states = [entry[0] for entry in self.stack]
        if BACKTICK in states or state in (COMMENT, ANSI):
            quote_for(BACKTICK if BACKTICK in states else state, "")  # raises with the reason
        if PARAM in states:
            raise ShellQuotingError(f"{self.filler.who(index)} inside ${{...}} cannot be quoted safely "
                                    "(bash evaluates offsets and subscripts there); put it in a word of its own")
        if ARITHMETIC in states:
            slot = _Slot(index, ARITHMETIC, "")
            slot.payload = self.filler.integer(index, "in arithmetic")
            self.out.append(slot)
            return
        frame = self.frames[-1]
        word = frame.current()
        prefix = MARK.sub(lambda m: self.filler.values[int(m.group(1))], "".join(word.text))
        slot = _Slot(index, state, prefix)
        word.text.append(f"\x00{index:06d}\x00")
        word.slots.append(slot)
        self.out.append(slot)

    def end_word(self, frame: _Frame) -> None:
        if frame.word is not None:
            frame.word.redirect, frame.redirect_next = frame.redirect_next, False
            frame.words.append(frame.word)
            frame.word = None

    def end_command(self, frame: _Frame) -> None:
        self.end_word(frame)
        words, frame.words = frame.words, []
        for word in words:
            for slot in word.slots if word.redirect else ():
                self.filler.check(slot, Role(DATA))
        words = [w for w in words if not w.redirect]
        if not words or (self.after_heredoc and not any(w.slots for w in words)):
            return
        texts = [MARK.sub(lambda m: self.filler.values[int(m.group(1))], "".join(w.text)) for w in words]
        roles = command_roles(texts, in_test=frame.in_test)
        frame.in_test = (frame.in_test or texts[0] == "[[") and "]]" not in texts
        after_dashdash, groups = False, {}
        for word, text, role in zip(words, texts, roles, strict=True):
            if role.kind == CODE:
                groups.setdefault(role.group, (role.detail, []))[1].append(word)
                continue
            if role.kind == ARG and after_dashdash:
                role = Role(DATA)
            after_dashdash = after_dashdash or (text == "--" and role.kind in (ARG, DATA) and not word.slots)
            for slot in word.slots:
                self.filler.check(slot, role)
        for detail, code_words in groups.values():
            self.nested(detail, code_words)

    def nested(self, detail: str, words: list[_Word]) -> None:
        """Quote the values in a nested shell's code for that shell, then for this one."""
        if any(w.dynamic for w in words) and self.values_present:
            raise ShellQuotingError(f"the code that '{detail}' runs holds an expansion of the outer shell "
                                    "($..., `...`, a glob) in a command that substitutes values: the outer "
                                    "shell would paste text into code; write \\$ or single-quote the inner code")
        script = " ".join("".join(w.text) for w in words)
        try:
            _, inner = self.filler.fill(script, self.values_present)
        except ShellQuotingError as exc:
            raise ShellQuotingError(f"inside '{detail}': {exc}") from None
        outer = [slot for word in words for slot in word.slots]
        for slot, inner_slot in zip(outer, inner, strict=True):
            slot.payload = quote_for(inner_slot.state, inner_slot.payload or "")
