"""Render the configuration reference of a config file as a markdown table.

    python tools/config_reference.py configs/default.py            # markdown on stdout
    python tools/config_reference.py configs/beauty.py:sasrec,kdsr  # get_config("sasrec,kdsr")
    python tools/config_reference.py configs/default.py --check    # exit 1 on undocumented fields

Every leaf field of the loaded config becomes one row: its dotted name, its default value and
its comment. Comments are read from the source, not from the config object:

1. the `# comment` after the field's own assignment in the config file (`config.x.y = 1  # ...`);
2. for fields of a sub-config built elsewhere (e.g. `config.features = sibling_config(...)`),
   the `# comment` after the assignment that ends with the same attribute path (longest match)
   in the files that build it: config files named by a `"....py"` string in the call and the
   `corrkd_jax` modules they import (e.g. `base_config` in `corrkd_jax/features/config.py`);
3. else the comment-only line(s) right above its assignment, or above the run of uncommented
   assignments it ends (`# Stage-1 settings` covers `config.features = ...` and the line after).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import io
import os
import sys
import tokenize
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from corrkd_jax.trainer.config_files import load_config_file


@dataclasses.dataclass(frozen=True)
class Assignment:
    """One `root.a.b = value  # comment` statement of a source file."""

    path: tuple[str, ...]  # attribute chain after the root name, e.g. ("data", "root")
    line: int  # 1-based line of the statement's start
    comment: str  # trailing comment ("" when none)
    block_comment: str  # comment-only lines heading the statement's block ("" when none)
    value: ast.expr  # the assigned expression


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    """One row of the reference."""

    name: str  # dotted field name, e.g. "data.root"
    default: Any  # the value `get_config()` gives it
    comment: str  # what the field means ("" when no comment was found)


def _attribute_chain(node: ast.expr) -> tuple[str, ...] | None:
    """`config.data.root` -> ("data", "root"); None for anything but `name.attr[.attr...]`."""
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not chain:
        return None
    return tuple(reversed(chain))


def _comments(source: str) -> tuple[dict[int, str], set[int]]:
    """(line -> text of its `#` comment, lines that hold only a comment)."""
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
        elif token.type not in (
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            code_lines.update(range(token.start[0], token.end[0] + 1))
    return comments, set(comments) - code_lines


def parse_assignments(path: str) -> list[Assignment]:
    """Every attribute assignment (`x.a.b = ...`) of the Python file at `path`, in order.

    Raises:
        ValueError: the file is not valid Python (names the file and line).
    """
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid Python ({err.msg})") from None
    comments, comment_only = _comments(source)
    statements = [node for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))]
    statements.sort(key=lambda node: node.lineno)

    def trailing(node: ast.stmt) -> str:
        # On the last line of a multi-line statement, or else on its first.
        return comments.get(node.end_lineno) or comments.get(node.lineno, "")

    # Lines of assignments without their own comment: a heading comment extends over them.
    undocumented = {
        line
        for node in statements
        if not trailing(node)
        for line in range(node.lineno, node.end_lineno + 1)
    }
    records = []
    for node in statements:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        comment = trailing(node)
        # Walk up over undocumented assignments to the comment lines heading the block.
        line = node.lineno - 1
        while line in undocumented and line not in comment_only:
            line -= 1
        heading: list[str] = []
        while line in comment_only:
            heading.insert(0, comments[line])
            line -= 1
        for target in targets:
            chain = _attribute_chain(target)
            if chain is not None and node.value is not None:
                records.append(
                    Assignment(chain, node.lineno, comment, " ".join(heading), node.value)
                )
    return records


def _related_sources(path: str, value: ast.expr, seen: set[str]) -> list[str]:
    """Files that build a sub-config: `.py` strings in `value` (relative to `path`'s folder)
    and, recursively, those files and the `corrkd_jax` modules they import."""
    found: list[str] = []
    folder = os.path.dirname(os.path.abspath(path))
    for node in ast.walk(value):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.endswith(".py")
        ):
            candidate = os.path.normpath(os.path.join(folder, node.value))
            if os.path.isfile(candidate):
                found.extend(_with_imports(candidate, seen))
    return found


def _with_imports(path: str, seen: set[str]) -> list[str]:
    """`path` and the source files of the `corrkd_jax` modules it imports (recursively)."""
    if path in seen:
        return []
    seen.add(path)
    files = [path]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.split(".")[0] != "corrkd_jax":
                continue
            spec = importlib.util.find_spec(name)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                files.extend(_with_imports(spec.origin, seen))
    return files


def _leaves(
    config: ml_collections.ConfigDict, prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], Any]]:
    """(path, value) of every non-ConfigDict field, depth first, keys sorted."""
    for key in config.keys():
        value = config[key]
        if isinstance(value, ml_collections.ConfigDict):
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _is_config_dict_call(value: ast.expr) -> bool:
    """True for `ml_collections.ConfigDict()` / `ConfigDict()` (an empty section)."""
    return (
        isinstance(value, ast.Call)
        and not value.args
        and not value.keywords
        and (getattr(value.func, "attr", None) or getattr(value.func, "id", None)) == "ConfigDict"
    )


def _split_spec(spec: str) -> tuple[str, str | None]:
    """`file.py[:arg]` -> (file, arg or None), as `--config file.py:arg` does."""
    path, sep, arg = spec.partition(".py:")
    if sep:
        return path + ".py", arg
    return spec, None


def config_fields(spec: str) -> list[FieldDoc]:
    """The reference rows of a config file, in the order its fields are assigned.

    Args:
        spec: `path/to/config.py` or `path/to/config.py:arg` (calls `get_config(arg)`).

    Returns:
        One `FieldDoc` per leaf field (a non-ConfigDict value); `comment` is "" for fields no
        comment documents.
    """
    path, arg = _split_spec(spec)
    config = load_config_file(path, arg)
    own = {a.path: a for a in parse_assignments(path)}
    # Sub-configs built by a call (not an empty ConfigDict()): their comments live elsewhere.
    seen = {os.path.abspath(path)}
    foreign: dict[tuple[str, ...], list[Assignment]] = {}
    for record in own.values():
        if isinstance(record.value, ast.Call) and not _is_config_dict_call(record.value):
            sources = _related_sources(path, record.value, seen)
            foreign[record.path] = [a for src in sources for a in parse_assignments(src)]
    rows = []
    for order, (leaf, value) in enumerate(_leaves(config)):
        prefixes = [leaf[:n] for n in range(len(leaf), 0, -1) if leaf[:n] in own]
        anchor = own[prefixes[0]] if prefixes else None
        comment = anchor.comment if anchor is not None and anchor.path == leaf else ""
        if not comment:
            comment = _foreign_comment(leaf, foreign)
        if not comment and anchor is not None:
            comment = anchor.comment or anchor.block_comment
        line = anchor.line if anchor is not None else sys.maxsize
        rows.append((line, order, FieldDoc(".".join(leaf), value, comment)))
    rows.sort(key=lambda row: row[:2])
    return [row[2] for row in rows]


def _foreign_comment(
    leaf: tuple[str, ...], foreign: dict[tuple[str, ...], list[Assignment]]
) -> str:
    """The comment of the longest-matching assignment in the files building `leaf`'s section."""
    for prefix, records in foreign.items():
        if leaf[: len(prefix)] != prefix:
            continue
        rest = leaf[len(prefix) :]
        best: Assignment | None = None
        for record in records:
            n = len(record.path)
            if (
                record.comment
                and n <= len(rest)
                and rest[-n:] == record.path
                and (best is None or n > len(best.path))
            ):
                best = record
        if best is not None:
            return best.comment
    return ""


def format_value(value: Any) -> str:
    """A Python-literal rendering: strings quoted, tuples in parentheses."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in value.items()) + "}"
        )
    return repr(value)


def _cell(text: str) -> str:
    # GitHub tables split on every unescaped pipe, code spans included.
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(fields: Sequence[FieldDoc]) -> str:
    """The rows as a GitHub markdown table: field | default | meaning."""
    lines = ["| field | default | meaning |", "|---|---|---|"]
    for field in fields:
        lines.append(
            f"| `{field.name}` | `{_cell(format_value(field.default))}` | {_cell(field.comment)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1: `--check` found undocumented fields)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "config",
        help="config file, optionally with :arg (e.g. "
        "configs/default.py or configs/beauty.py:sasrec,kdsr)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="print nothing; exit 1 listing the fields without a comment",
    )
    args = parser.parse_args(argv)
    fields = config_fields(args.config)
    if args.check:
        missing = [field.name for field in fields if not field.comment]
        for name in missing:
            print(f"{args.config}: field {name} has no comment", file=sys.stderr)
        return 1 if missing else 0
    sys.stdout.write(render_markdown(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
