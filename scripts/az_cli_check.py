#!/usr/bin/env python3
"""Finds every `az ...` invocation in shell scripts and checks it against a real Azure CLI.

Each invocation's command (the words after `az` up to the first flag) must exist, and each flag it passes
must appear in that command's `--help`. A renamed or removed command or flag then fails CI, not a deploy.

Usage:
  az_cli_check.py --list SCRIPT...          print the invocations found (no Azure CLI needed)
  az_cli_check.py --az PATH SCRIPT...       check them with the Azure CLI at PATH
"""

import json
import re
import shlex
import subprocess
import sys

# Tokens after which a word is in command position.
COMMAND_STARTS = {"|", "||", "&&", ";", ";;", "(", ")", "!", "then", "do", "else", "elif", "if", "while", "until", "{", "time"}
# Tokens that end a command.
COMMAND_ENDS = {"|", "||", "&&", ";", ")", "&", ";;", "}", "<", ">", ">>", "<<<", "<<", ">&", "2>", "&>"}
# Our scripts' own wrappers that run their arguments as a command (uninstall.sh's dry-run `run`).
WRAPPERS = {"run"}


def logical_lines(text):
    """(line number, text) of each logical line: continuations joined, comments and heredoc bodies dropped."""
    lines = text.split("\n")
    heredoc_end = None
    pending, start = "", 0
    for number, line in enumerate(lines, 1):
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        if not pending:
            start = number
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        if not quotes_balanced(full):
            # A quoted string spans lines (python3 -c '...'): the line goes on.
            pending = full + "\n"
            continue
        pending = ""
        marker = re.search(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1", full)
        if marker and "<<<" not in full[max(0, marker.start() - 1):marker.start() + 3]:
            heredoc_end = marker.group(2)
        yield start, full


def quotes_balanced(text):
    """Whether every quote in a shell line is closed."""
    quote, escaped = None, False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\" and quote != "'":
            escaped = True
        elif quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and quote is None:
            pass
    return quote is None


def substitutions(text):
    """The contents of every `$( ... )` in text, outermost first, nested ones too."""
    found = []
    i = 0
    while True:
        i = text.find("$(", i)
        if i < 0:
            return found
        depth, j, quote = 1, i + 2, None
        while j < len(text) and depth:
            c = text[j]
            if quote:
                if c == quote:
                    quote = None
            elif c == "'":
                quote = "'"
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            j += 1
        inner = text[i + 2:j - 1]
        found.append(inner)
        found.extend(substitutions(inner))
        i = j


def tokens(fragment):
    lexer = shlex.shlex(fragment, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def invocations(path):
    """Each `az` invocation in a script: (line, command words, flags)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    found = []
    for number, line in logical_lines(text):
        for fragment in [line] + substitutions(line):
            # A substitution's text stays inside its outer line's tokens; it is checked on its own.
            outer = re.sub(r"\$\((?:[^()]|\([^()]*\))*\)", "SUBST", fragment) if fragment is line else fragment
            try:
                words = tokens(outer)
            except ValueError as error:
                raise SystemExit(f"{path}:{number}: cannot split the line ({error}): {line.strip()}")
            previous = None
            for index, word in enumerate(words):
                starts = previous is None or previous in COMMAND_STARTS or previous in WRAPPERS
                # `name=(a b)` is an array, not a subshell.
                if previous == "(" and index >= 2 and words[index - 2].endswith("="):
                    starts = False
                if word == "az" and starts:
                    found.append((number, *command_of(words[index + 1:])))
                elif word != "az":
                    # A command the script tells its user to run ("run 'az login'") must exist too.
                    for suggestion in re.findall(r"(?<![\w$-])az ([^'`\"()]*)", word):
                        command, flags = command_of(suggestion.split())
                        if command:
                            found.append((number, command, flags))
                previous = word
    return found


def command_of(rest):
    """The command words and the flags of an `az` invocation's remaining tokens."""
    command, flags, in_command = [], [], True
    for word in rest:
        if word in COMMAND_ENDS:
            break
        if word.startswith("-") and len(word) > 1 and word != "--":
            in_command = False
            flag = word.split("=", 1)[0]
            if "$" not in flag and flag not in flags:
                flags.append(flag)
        elif in_command:
            if "$" in word or not re.fullmatch(r"[a-z][a-z0-9-]*", word):
                in_command = False
            else:
                command.append(word)
    return command, flags


def main(argv):
    if len(argv) < 2 or argv[0] not in ("--list", "--az"):
        raise SystemExit(__doc__)
    az = None
    if argv[0] == "--az":
        az, scripts = argv[1], argv[2:]
    else:
        scripts = argv[1:]
    found = [(script, *entry) for script in scripts for entry in invocations(script)]
    if az is None:
        for script, line, command, flags in found:
            print(json.dumps({"script": script, "line": line, "command": command, "flags": flags}))
        return 0
    helps, problems = {}, []
    for script, line, command, flags in found:
        where = f"{script}:{line}: az {' '.join(command)}"
        key = tuple(command)
        if not command:
            problems.append(f"{where}: no command words after `az`")
            continue
        if key not in helps:
            done = subprocess.run([az, *command, "--help"], capture_output=True, text=True)
            helps[key] = (done.returncode, done.stdout + done.stderr)
        code, text = helps[key]
        if code != 0 or "is not in the 'az" in text or "misspelled or not recognized" in text:
            said = [l for l in text.splitlines() if "ERROR" in l or "misspelled" in l or "not in the" in l]
            problems.append(f"{where}: no such command in this Azure CLI ({(said or ['exit ' + str(code)])[0].strip()})")
            continue
        for flag in flags:
            if not re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text):
                problems.append(f"{where}: `{flag}` is not in `az {' '.join(command)} --help`")
    commands = len(helps)
    checked = sum(len(flags) for _, _, _, flags in found)
    if problems:
        print("az-cli-check: these invocations do not match the Azure CLI:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 1
    print(f"az-cli-check: {len(found)} invocations of {commands} commands, {checked} flags: all found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
