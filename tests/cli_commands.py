"""Find the `meridian ...` and `make ...` commands quoted in text (Markdown, workflow scripts) and check
that the CLI accepts them: each subcommand path answers `--help` (typer's CliRunner, in-process) and
every flag used appears in that help; each make target dry-runs (`make -n`).

Placeholders are fine where a value goes (`--stack STACK`, `DIR`); `a|b` at a subcommand position
means both (`meridian preview|cost --tenants N`); `[...]` marks optional parts.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from meridian.cli import app

ROOT = Path(__file__).resolve().parent.parent
_SEPARATORS = re.compile(r"\s(?:\|\||&&|\|)\s|;(?:\s|$)|\$\(|`")
_PREFIXES = {"sudo", "time", "exec", "if", "elif", "while", "until", "then", "do", "else", "!"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh"}


@dataclass(frozen=True)
class Quoted:
    where: str  # file:line
    text: str  # the command as quoted


@dataclass
class Command:
    where: str
    text: str
    tool: str  # "meridian" or "make"
    args: list[str] = field(default_factory=list)


def markdown_commands(path: Path) -> list[Quoted]:
    """Command lines of shell code blocks and inline code spans of a Markdown file."""
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out: list[Quoted] = []
    lines = path.read_text().splitlines()
    fence: tuple[str, str] | None = None  # (marker, language) while inside a block
    pending = ""
    for i, line in enumerate(lines, 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = (m.group(1), m.group(2).lower())
            continue
        if fence is not None:
            closing = line.strip()
            if set(closing) == {fence[0][0]} and len(closing) >= len(fence[0]):  # same character, at least as long
                fence = None
            elif fence[1] in _SHELL_LANGS:
                text = pending + line.strip()
                if text.endswith("\\"):
                    pending = text[:-1] + " "
                    continue
                pending = ""
                out.append(Quoted(f"{rel}:{i}", text.removeprefix("$ ")))
            continue
        out += [Quoted(f"{rel}:{i}", span) for span in re.findall(r"`([^`]+)`", line)]
    return out


def script_commands(script: str, where: str) -> list[Quoted]:
    """Lines of a shell script (a workflow `run:`), continuations joined."""
    out, pending = [], ""
    for i, line in enumerate(script.splitlines(), 1):
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        out.append(Quoted(f"{where}+{i}", text))
    return out


def _tokens(segment: str) -> list[str]:
    segment = segment.split(" #", 1)[0]  # a trailing comment
    try:
        return shlex.split(segment)
    except ValueError:
        return segment.split()


def commands_in(quoted: list[Quoted]) -> list[Command]:
    """The `meridian` and `make` invocations in quoted text, one per shell segment."""
    out = []
    for q in quoted:
        for segment in _SEPARATORS.split(q.text):
            tokens = _tokens(segment)
            while tokens and (tokens[0] in _PREFIXES or _ASSIGNMENT.match(tokens[0])):
                tokens = tokens[1:]
            if not tokens:
                continue
            head = tokens[0]
            if head.split("/")[-1] == "meridian":
                out.append(Command(q.where, q.text, "meridian", tokens[1:]))
            elif head.split("/")[-1].startswith("python") and tokens[1:3] == ["-m", "meridian"]:
                out.append(Command(q.where, q.text, "meridian", tokens[3:]))
            elif head == "make":
                out.append(Command(q.where, q.text, "make", tokens[1:]))
    return out


# --- meridian ---------------------------------------------------------------------------------


@cache
def _root():
    return typer.main.get_command(app)


def _strip(token: str) -> str:
    return token.strip("[]")


def command_paths(args: list[str]) -> list[tuple[list[str], list[str]]]:
    """(subcommand path, flags used) for each reading of `args` (`a|b` at a subcommand position -> both).
    An unknown subcommand ends the path: the caller's `--help` check then fails on it."""
    results: list[tuple[list[str], list[str]]] = []

    def walk(node, path: list[str], rest: list[str]) -> None:  # a click command (typer vendors click: duck-typed)
        tokens = [_strip(t) for t in rest]
        tokens = [t for t in tokens if t]
        if hasattr(node, "commands") and tokens and not tokens[0].startswith("-"):
            names = tokens[0].split("|")
            known = [n for n in names if n in node.commands]
            if known:
                for name in known:
                    walk(node.commands[name], [*path, name], tokens[1:])
                return
            if all(p.param_type_name != "argument" for p in node.params):
                results.append(([*path, tokens[0]], flags_in(tokens[1:])))  # an unknown subcommand
                return
        results.append((path, flags_in(tokens)))

    walk(_root(), [], args)
    return results


def flags_in(tokens: list[str]) -> list[str]:
    return [t.split("=", 1)[0] for t in tokens if t.startswith("-") and t != "-"]


@cache
def help_text(path: tuple[str, ...]) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"})
    return result.exit_code, result.output


def check_meridian(cmd: Command) -> list[str]:
    """What is wrong with one `meridian ...` invocation; empty when the CLI accepts it."""
    problems = []
    for path, flags in command_paths(cmd.args):
        code, text = help_text(tuple(path))
        label = " ".join(["meridian", *path])
        if code != 0:
            problems.append(f"{cmd.where}: `{label} --help` exits {code} (quoted: {cmd.text!r})")
            continue
        declared = declared_flags(tuple(path))
        for flag in flags:
            # declared by the command, and shown in its help (not merely mentioned in another option's text)
            if flag not in declared or not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text):
                problems.append(f"{cmd.where}: `{label}` has no flag {flag} (quoted: {cmd.text!r})")
    return problems


def declared_flags(path: tuple[str, ...]) -> set[str]:
    node = _root()
    for name in path:
        node = node.commands[name]
    return {"--help", "-h"} | {o for p in node.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


# --- make -------------------------------------------------------------------------------------


@cache
def make_dry_run(args: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr


def make_targets(args: list[str]) -> tuple[str, ...]:
    """Targets and VAR=value assignments; options (and the directory of `-C DIR`) dropped."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("-C", "-f", "-j"):
            skip = True
        elif not arg.startswith("-") and _strip(arg):
            out.append(_strip(arg))
    return tuple(out)


def check_make(cmd: Command) -> list[str]:
    args = make_targets(cmd.args)
    if not args:
        return []  # `make` alone: the default target
    code, err = make_dry_run(args)
    return [] if code == 0 else [f"{cmd.where}: `make -n {' '.join(args)}` fails: {err.strip()[-300:]} (quoted: {cmd.text!r})"]


def check(cmd: Command) -> list[str]:
    return check_meridian(cmd) if cmd.tool == "meridian" else check_make(cmd)
