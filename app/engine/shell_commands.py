"""What each word of a simple shell command is to the command that receives it.

``command_roles`` looks at the words of one simple command (after quote removal) and says,
for each word, how a value substituted into it will be read: as plain data, as an
argument that could be an option, as the command itself, as shell code that another shell
parses again (``sh -c``, ``eval``, ``ssh host ...``, ``su -c``, ``find -exec sh -c``, ...),
as arithmetic, as a variable name (bash evaluates ``a[$(id)]`` there), or as a program in
another language (awk, sed, perl, ...). Wrappers (``sudo``, ``env``, ``xargs``, ``timeout``,
``nice``, ...) are looked through to the command they run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DATA, ARG, NAME, ARITH, VARNAME = "data", "arg", "name", "arith", "varname"
CODE, REFUSE = "code", "refuse"
RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time", "function"}
NOT_COMMANDS = {"case", "for", "select", "esac", "in"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "posh", "yash", "busybox"}
FOREIGN_SHELLS = {"fish", "csh", "tcsh", "rc", "es", "nu", "pwsh", "powershell", "xonsh", "elvish"}
ARITH_TESTS = {"-eq", "-ne", "-lt", "-le", "-gt", "-ge"}
# Interpreters whose program argument is code in their own language.
PROGRAM_FLAGS = {"perl": {"-e", "-E"}, "ruby": {"-e"}, "node": {"-e", "-p", "--eval", "--print"},
                 "nodejs": {"-e", "-p"}, "php": {"-r"}, "lua": {"-e"}, "python": {"-c"}, "python3": {"-c"},
                 "python2": {"-c"}, "Rscript": {"-e"}, "tclsh": set(), "expect": {"-c"}}
SCRIPT_LANGUAGES = {"awk": ({"-F", "-v", "-f", "-e", "--source", "-i", "-l"}, {"-e", "--source"}),
                    "gawk": ({"-F", "-v", "-f", "-e", "--source", "-i", "-l"}, {"-e", "--source"}),
                    "mawk": ({"-F", "-v", "-f"}, set()), "nawk": ({"-F", "-v", "-f"}, set()),
                    "sed": ({"-e", "-f", "-l", "--expression"}, {"-e", "--expression"}),
                    "gsed": ({"-e", "-f", "-l", "--expression"}, {"-e", "--expression"})}
# Wrappers that run the command in their arguments: options taking an argument, and how
# many plain words come before the command.
WRAPPERS = {"nohup": (set(), 0), "exec": ({"-a"}, 0), "command": (set(), 0), "builtin": (set(), 0),
            "setsid": (set(), 0), "stdbuf": ({"-i", "-o", "-e"}, 0), "nice": ({"-n"}, 0),
            "ionice": ({"-c", "-n", "-p"}, 0), "timeout": ({"-s", "-k"}, 1), "chroot": ({"--userspec"}, 1),
            "xargs": ({"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a", "--arg-file", "--delimiter"}, 0),
            "taskset": (set(), 1), "unbuffer": (set(), 0), "caffeinate": (set(), 0), "doas": ({"-u", "-C"}, 0)}
SUDO_ARGS = {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "-R"}
SSH_ARGS = set("-B -b -c -D -E -e -F -I -i -J -L -l -m -O -o -P -p -Q -R -S -W -w".split())
DECLARES = {"declare", "typeset", "local", "readonly", "export"}
NAME_TAKERS = {"read": {"-d", "-n", "-N", "-p", "-t", "-u", "-i"}, "unset": set(), "mapfile": {"-d", "-n", "-O", "-s", "-u", "-C", "-c"},
               "readarray": {"-d", "-n", "-O", "-s", "-u", "-C", "-c"}}


@dataclass
class Role:
    kind: str
    detail: str = ""  # the command that gives the role, or why a value is refused
    group: int = -1   # CODE words of one group are joined with spaces into one script


def _base(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _is_option(word: str) -> bool:
    return word.startswith("-") and word != "-"


def command_roles(words: list[str], in_test: bool = False) -> list[Role]:
    """The role of each word of one simple command (``words`` after quote removal)."""
    roles = [Role(DATA) for _ in words]
    i = 0
    while i < len(words) and words[i] in RESERVED:
        i += 1
    if i < len(words) and words[i] in NOT_COMMANDS:
        return roles  # the words of 'for x in ...' and 'case x in' are data
    while i < len(words) and ASSIGNMENT.match(words[i]):
        i += 1
    if in_test:
        _test(words, i, roles, "[[")
    elif i < len(words):
        _command(words, i, roles, [0])
    return roles


def _command(words: list[str], i: int, roles: list[Role], groups: list[int]) -> None:
    name = _base(words[i])
    roles[i] = Role(NAME)
    rest = range(i + 1, len(words))
    for j in rest:
        roles[j] = Role(ARG, name)
    if name in SHELLS:
        _shell(words, i + 1, roles, groups, name)
    elif name in FOREIGN_SHELLS:
        for j in rest:
            roles[j] = Role(REFUSE, f"{name} parses its arguments with its own rules, which Patchbay does not quote for")
    elif name in ("eval", "watch"):
        start = _options(words, i + 1, roles, {"-n", "--interval", "-d"} if name == "watch" else set())
        if name == "watch" and any(words[j] in ("-x", "--exec") for j in range(i + 1, start)):
            if start < len(words):
                _command(words, start, roles, groups)
            return
        _code(roles, range(start, len(words)), groups, name)
    elif name == "trap":
        start = _options(words, i + 1, roles, set())
        if start < len(words):
            _code(roles, [start], groups, name)
            for j in range(start + 1, len(words)):
                roles[j] = Role(DATA)
    elif name in (".", "source"):
        if i + 1 < len(words):
            roles[i + 1] = Role(NAME, name)
    elif name in ("ssh", "slogin"):
        host = _options(words, i + 1, roles, SSH_ARGS)
        _code(roles, range(host + 1, len(words)), groups, name)
    elif name in ("su", "runuser", "flock", "script"):
        _command_option(words, i + 1, roles, groups, name)
    elif name in ("sudo", "doas"):
        start = _options(words, i + 1, roles, SUDO_ARGS if name == "sudo" else {"-u", "-C"})
        flags = "".join(words[j] for j in range(i + 1, start) if not words[j].startswith("--"))
        while start < len(words) and ASSIGNMENT.match(words[start]):
            roles[start] = Role(DATA)
            start += 1
        if name == "sudo" and ("s" in flags or "i" in flags or "--shell" in words[i + 1:start]
                               or "--login" in words[i + 1:start]):
            for j in range(start, len(words)):
                roles[j] = Role(REFUSE, "sudo -s/-i hands its arguments to a shell; use sudo sh -c '...' instead")
        elif start < len(words):
            _command(words, start, roles, groups)
    elif name == "env":
        start = _options(words, i + 1, roles, {"-u", "-C", "--unset", "--chdir"})
        if any(words[j].startswith(("-S", "--split-string")) for j in range(i + 1, start)):
            for j in range(start, len(words)):
                roles[j] = Role(REFUSE, "env -S splits its argument like a shell")
            return
        while start < len(words) and ASSIGNMENT.match(words[start]):
            roles[start] = Role(DATA)
            start += 1
        if start < len(words):
            _command(words, start, roles, groups)
    elif name in WRAPPERS:
        takes, plain = WRAPPERS[name]
        start = _options(words, i + 1, roles, takes) + plain
        if start < len(words):
            _command(words, start, roles, groups)
    elif name == "find":
        _find(words, i + 1, roles, groups)
    elif name in SCRIPT_LANGUAGES or name in PROGRAM_FLAGS or name.startswith("python"):
        _program(words, i + 1, roles, name)
    elif name == "let":
        for j in rest:
            roles[j] = Role(ARITH, name)
    elif name in DECLARES:
        start = _options(words, i + 1, roles, set())
        integer = any("i" in words[j] for j in range(i + 1, start) if not words[j].startswith("--"))
        for j in range(start, len(words)):
            roles[j] = Role(ARITH if integer else VARNAME, name)
    elif name in NAME_TAKERS or name == "printf" or name == "getopts":
        _names(words, i + 1, roles, name)
    elif name in ("[", "test", "[["):
        _test(words, i + 1, roles, name)


def _options(words: list[str], i: int, roles: list[Role], takes: set[str]) -> int:
    """Index of the first word after the options; an option's own argument is data."""
    while i < len(words) and _is_option(words[i]):
        if words[i] == "--":
            return i + 1
        if words[i] in takes and i + 1 < len(words):
            roles[i + 1] = Role(DATA)
            i += 1
        i += 1
    return i


def _code(roles: list[Role], indexes, groups: list[int], name: str) -> None:
    group = groups[0]
    groups[0] += 1
    for j in indexes:
        roles[j] = Role(CODE, name, group)


def _shell(words: list[str], i: int, roles: list[Role], groups: list[int], name: str) -> None:
    if name == "busybox":
        if i < len(words) and words[i] in ("sh", "ash"):
            i += 1
        else:
            return
    command = False
    while i < len(words) and (_is_option(words[i]) or words[i].startswith("+")):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("--") and "c" in word[1:]:
            command = True
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file") and i + 1 < len(words):
            roles[i + 1] = Role(DATA)
            i += 1
        i += 1
    if command:
        if i < len(words):
            _code(roles, [i], groups, f"{name} -c")
        for j in range(i + 1, len(words)):
            roles[j] = Role(DATA)  # $0, $1, ...: passed by reference, never parsed
    elif i < len(words):
        roles[i] = Role(NAME, name)  # a script file to run
        for j in range(i + 1, len(words)):
            roles[j] = Role(DATA)


def _command_option(words: list[str], i: int, roles: list[Role], groups: list[int], name: str) -> None:
    """su/runuser/flock/script: the code is the argument of -c / --command."""
    j = i
    while j < len(words):
        word = words[j]
        if word in ("-c", "--command") and j + 1 < len(words):
            _code(roles, [j + 1], groups, f"{name} -c")
            j += 2
            continue
        if word.startswith("--command="):
            roles[j] = Role(REFUSE, f"{name} --command=... must be given as --command '...'")
        elif word.startswith("-c") and len(word) > 2 and not word.startswith("--"):
            roles[j] = Role(REFUSE, f"{name} -c... must be given as -c '...'")
        elif word in ("-s", "--shell") and j + 1 < len(words):
            roles[j + 1] = Role(NAME, name)
            j += 1
        elif name == "flock" and not _is_option(word) and j > i and not _is_option(words[j - 1]) \
                and "-c" not in words[i:j]:
            _command(words, j, roles, groups)
            return
        j += 1


def _find(words: list[str], i: int, roles: list[Role], groups: list[int]) -> None:
    j = i
    while j < len(words):
        if words[j] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = j + 1
            while end < len(words) and words[end] not in (";", "+"):
                end += 1
            if j + 1 < end:
                sub = command_roles_from(words[:end], j + 1, groups)
                roles[j + 1:end] = sub[j + 1:end]
            j = end
        j += 1


def command_roles_from(words: list[str], start: int, groups: list[int]) -> list[Role]:
    roles = [Role(DATA) for _ in words]
    _command(words, start, roles, groups)
    return roles


def _program(words: list[str], i: int, roles: list[Role], name: str) -> None:
    reason = f"the program given to {name} is {name} code; pass the value as a separate argument or in 'env'"
    base = "python" if name.startswith("python") else name
    if base in SCRIPT_LANGUAGES:
        takes, program_flags = SCRIPT_LANGUAGES[base]
    else:
        program_flags = PROGRAM_FLAGS.get(base, set())
        takes = program_flags | {"-m", "-W", "-X", "-I", "-M", "-r"}
    j, program_given = i, False
    while j < len(words) and _is_option(words[j]):
        if words[j] == "--":
            j += 1
            break
        if words[j] in takes and j + 1 < len(words):
            is_program = words[j] in program_flags or words[j] == "-f"
            roles[j + 1] = Role(REFUSE if is_program else DATA, reason if is_program else "")
            program_given = program_given or is_program or words[j] == "-m"
            j += 1
        elif any(words[j].startswith(flag) and len(words[j]) > len(flag) for flag in program_flags | {"-f"}):
            roles[j] = Role(REFUSE, reason)  # -e'code' attached to its flag
            program_given = True
        j += 1
    if not program_given and j < len(words):
        roles[j] = Role(REFUSE, reason)  # the first plain word is the program (or its file)
        j += 1
    for k in range(j, len(words)):
        roles[k] = Role(ARG, name) if roles[k].kind == ARG else roles[k]


def _names(words: list[str], i: int, roles: list[Role], name: str) -> None:
    takes = NAME_TAKERS.get(name, set())
    j = i
    while j < len(words):
        word = words[j]
        if _is_option(word) and word in ("-v", "-a") and j + 1 < len(words):
            roles[j + 1] = Role(VARNAME, name)
            j += 2
            continue
        if _is_option(word) and word in takes and j + 1 < len(words):
            roles[j + 1] = Role(DATA)
            j += 2
            continue
        if name in NAME_TAKERS and not _is_option(word):
            roles[j] = Role(VARNAME, name)
        if name == "getopts" and j == i + 1:
            roles[j] = Role(VARNAME, name)
        j += 1


def _test(words: list[str], i: int, roles: list[Role], name: str) -> None:
    for j in range(i, len(words)):
        if words[j] in ARITH_TESTS:
            for k in (j - 1, j + 1):
                if i <= k < len(words):
                    roles[k] = Role(ARITH, name)
        elif words[j] in ("-v", "-R") and j + 1 < len(words):
            roles[j + 1] = Role(VARNAME, name)
        elif roles[j].kind == DATA:
            roles[j] = Role(ARG, name)
