"""Find the line of a key in TOML text, so a validation error can point at it.

``tomllib`` returns plain data without positions; this scanner rebuilds the key paths of a
document's headers and ``key = value`` lines (``[[Tests]]`` counted per parent), which is enough to
point at the line of a field such as ``Tests[2].cmd_args.iters`` or, failing that, at its table.
"""

from __future__ import annotations

Path = tuple[str | int, ...]


def _split_key(text: str) -> list[str]:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]`` (whitespace around dots ignored)."""
    parts: list[str] = []
    current = ""
    quote = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def _key_of(line: str) -> str | None:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return line[:i].strip()
        elif ch == "#":
            return None
    return None


def key_lines(text: str) -> dict[Path, int]:
    """Map every header and key path in ``text`` to its 1-based line number."""
    lines: dict[Path, int] = {}
    counters: dict[Path, int] = {}
    table: Path = ()
    in_multiline = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = ""
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[[") and "]]" in line:
            names = _split_key(line[2 : line.index("]]")])
            parent = _resolve((), names[:-1], counters)
            array: Path = (*parent, names[-1])
            index = counters.get(array, -1) + 1
            counters[array] = index
            table = (*array, index)
            lines.setdefault(array, number)
            lines[table] = number
            continue
        if line.startswith("[") and "]" in line:
            names = _split_key(line[1 : line.index("]")])
            table = (*_resolve((), names[:-1], counters), names[-1])
            lines[table] = number
            continue
        key = _key_of(line)
        if key is None:
            continue
        lines[(*table, *_split_key(key))] = number
        value = line.split("=", 1)[1]
        for delim in ('"""', "'''"):
            if value.count(delim) % 2 == 1:
                in_multiline = delim
    return lines


def _resolve(base: Path, names: list[str], counters: dict[Path, int]) -> Path:
    """Header names to a path, entering the current element of any array of tables on the way."""
    path: Path = base
    for name in names:
        path = (*path, name)
        if path in counters:
            path = (*path, counters[path])
    return path


def find_line(text: str, path: Path) -> int | None:
    """Line of ``path`` in ``text``, or of its closest enclosing key or table; ``None`` if unknown."""
    known = key_lines(text)
    for end in range(len(path), 0, -1):
        line = known.get(path[:end])
        if line is not None:
            return line
    return None
