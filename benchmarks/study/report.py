"""Writing the studies' reports: tables.md and the marked blocks of RESULTS.md."""

from __future__ import annotations

import os


def splice(path: str, sections: dict[str, list[str]]) -> list[str]:
    """Replaces the text between `<!-- summarize:NAME -->` and `<!-- /summarize:NAME -->` in
    `path` with section NAME, so the hand-written report always shows the current tables.
    Returns the names it replaced; the file is rewritten only if every marker pair is intact."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    replaced = []
    for name, body in sections.items():
        start, end = f"<!-- summarize:{name} -->", f"<!-- /summarize:{name} -->"
        if start not in text:
            continue
        if text.count(start) != 1 or text.count(end) != 1 or text.index(end) < text.index(start):
            raise ValueError(f"{path}: the markers of section {name!r} are not one ordered pair")
        head, rest = text.split(start)
        _, tail = rest.split(end)
        text = head + start + "\n" + "\n".join(body) + "\n" + end + tail
        replaced.append(name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return replaced


def write_tables(
    path: str, heading: list[str], sections: dict[str, list[str]], titles: dict[str, str]
) -> str:
    """Writes every section under its title to `path` (markdown); returns the text."""
    lines = list(heading)
    for name, body in sections.items():
        lines += [f"## {titles[name]}", "", *body, ""]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text
