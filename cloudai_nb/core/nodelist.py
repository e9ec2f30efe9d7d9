"""Slurm-style host lists: expand ``node-[001-003]`` into names and compress names back.

Examples::

    >>> expand("node-[001-003],login")
    ['node-001', 'node-002', 'node-003', 'login']
    >>> expand("rack[0-1]-gpu[0-1]")
    ['rack0-gpu0', 'rack0-gpu1', 'rack1-gpu0', 'rack1-gpu1']
    >>> compress(["n3", "n1", "n2", "n7", "login", "n010"])
    'login,n[1-3,7],n010'

Grammar accepted by :func:`expand`: top-level elements separated by commas (whitespace around an
element is ignored); each element is literal text mixed with bracket groups ``[a-b,c,...]`` of
ASCII decimal numbers or ascending ranges. Several groups in one element form a cartesian product,
the leftmost group varying slowest. A range is zero padded to the width of its start
(``n[08-10]`` gives ``n08 n09 n10``, ``n[8-10]`` gives ``n8 n9 n10``).

Canonical order (what :func:`compress` sorts by and ``expand(compress(names))`` returns) is
:func:`node_sort_key`: a name is split around its trailing-most run of ASCII digits into
``prefix``, ``number`` and ``suffix``, and names sort by ``(prefix, suffix, width of the digit
string, numeric value)``. A name without digits sorts as ``(name, "", 0, 0)``. So
``expand(compress(x)) == sorted(set(x), key=node_sort_key)`` and compress is idempotent.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

__all__ = [
    "MAX_NAMES",
    "NodeListError",
    "compress",
    "expand",
    "is_nodelist_spec",
    "node_sort_key",
    "split_top_level",
]

MAX_NAMES = 1_000_000
"""Upper bound on how many names one spec may expand to (counted before duplicate removal)."""

_DIGITS = frozenset("0123456789")
_BAD_NAME_CHAR = re.compile(r"[\[\],\s]")
_SHOW_MAX = 60

# One range inside brackets: (first, last, zero-pad width).
_Range = tuple[int, int, int]
# One element: literal strings and bracket groups, in order.
_Part = str | tuple[_Range, ...]


class NodeListError(ValueError):
    """A node list (or a node name given to :func:`compress`) is malformed.

    ``str(err)`` is one line naming the offending text, the reason and, where known, the 0-based
    character position. ``spec``, ``reason`` and ``position`` hold the pieces for re-wrapping.
    """

    def __init__(self, spec: str, reason: str, position: int | None = None, *, what: str = "node list"):
        self.spec = spec
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"bad {what} {_show(spec)}: {reason}{where}")


def _show(text: str) -> str:
    if len(text) > _SHOW_MAX:
        text = text[: _SHOW_MAX - 3] + "..."
    return repr(text)


def _is_number(text: str) -> bool:
    return bool(text) and all(ch in _DIGITS for ch in text)


def _split(spec: str) -> list[tuple[int, str]]:
    """Split on top-level commas, returning ``(offset, piece)`` pairs; check bracket balance."""
    pieces: list[tuple[int, str]] = []
    depth = 0
    start = 0
    open_at = -1
    for i, ch in enumerate(spec):
        if ch == "[":
            if depth == 0:
                open_at = i
            depth += 1
        elif ch == "]":
            if depth == 0:
                raise NodeListError(spec, "unmatched ']'", i)
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append((start, spec[start:i]))
            start = i + 1
    if depth:
        raise NodeListError(spec, "unclosed '['", open_at)
    pieces.append((start, spec[start:]))
    return pieces


def split_top_level(spec: str) -> list[str]:
    """Split ``spec`` on commas that are not inside brackets.

    Pieces are returned verbatim (no stripping; empty pieces kept), e.g.
    ``split_top_level("a,n[1,2],,b") == ["a", "n[1,2]", "", "b"]``. Raises :class:`NodeListError`
    on an unmatched ``]`` or an unclosed ``[``.
    """
    return [piece for _, piece in _split(spec)]


def _parse_range(spec: str, item: str, pos: int) -> _Range:
    if not item:
        raise NodeListError(spec, "empty range item", pos)
    lo_text, dash, hi_text = item.partition("-")
    if not _is_number(lo_text) or (dash and not _is_number(hi_text)):
        raise NodeListError(spec, f"non-numeric range {item!r}", pos)
    try:
        lo = int(lo_text)
        hi = int(hi_text) if dash else lo
    except ValueError:  # beyond the interpreter's int/str digit limit
        raise NodeListError(spec, f"number too long in {_show(item)}", pos) from None
    if hi < lo:
        raise NodeListError(spec, f"range {lo_text}-{hi_text} is descending", pos)
    return lo, hi, len(lo_text)


def _parse_element(spec: str, offset: int, raw: str) -> tuple[list[_Part], int]:
    """Parse one top-level element; return its parts and how many names it expands to."""
    text = raw.lstrip()
    base = offset + len(raw) - len(text)
    text = text.rstrip()
    if not text:
        raise NodeListError(spec, "empty element", base)
    parts: list[_Part] = []
    count = 1
    i = 0
    lit_start = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            raise NodeListError(spec, "whitespace in name", base + i)
        if ch == "]":
            raise NodeListError(spec, "unmatched ']'", base + i)
        if ch != "[":
            i += 1
            continue
        if lit_start < i:
            parts.append(text[lit_start:i])
        j = i + 1
        while j < n and text[j] not in "[]":
            if text[j].isspace():
                raise NodeListError(spec, "whitespace in brackets", base + j)
            j += 1
        if j == n:
            raise NodeListError(spec, "unclosed '['", base + i)
        if text[j] == "[":
            raise NodeListError(spec, "nested '['", base + j)
        if j == i + 1:
            raise NodeListError(spec, "empty brackets '[]'", base + i)
        ranges: list[_Range] = []
        item_pos = i + 1
        for item in text[i + 1 : j].split(","):
            ranges.append(_parse_range(spec, item, base + item_pos))
            item_pos += len(item) + 1
        count *= sum(hi - lo + 1 for lo, hi, _ in ranges)
        if count > MAX_NAMES:
            raise NodeListError(spec, f"expands to more than {MAX_NAMES} names", base)
        parts.append(tuple(ranges))
        i = lit_start = j + 1
    if lit_start < n:
        parts.append(text[lit_start:])
    return parts, count


def _parse(spec: str) -> list[list[_Part]]:
    if not spec.strip():
        raise NodeListError(spec, "empty node list")
    elements: list[list[_Part]] = []
    total = 0
    for offset, raw in _split(spec):
        parts, count = _parse_element(spec, offset, raw)
        total += count
        if total > MAX_NAMES:
            raise NodeListError(spec, f"expands to more than {MAX_NAMES} names", offset)
        elements.append(parts)
    return elements


def _choices(part: _Part) -> list[str]:
    if isinstance(part, str):
        return [part]
    return [str(k).zfill(width) for lo, hi, width in part for k in range(lo, hi + 1)]


def expand(spec: str) -> list[str]:
    """Expand a Slurm-style host list into names, in order, duplicates removed (first kept).

    ``expand("n[1-3,7],login") == ["n1", "n2", "n3", "n7", "login"]``. Raises
    :class:`NodeListError` for empty lists or elements, unbalanced, nested or empty brackets,
    non-numeric or descending ranges, whitespace inside a name, and more than :data:`MAX_NAMES`
    names.
    """
    names: dict[str, None] = {}
    for parts in _parse(spec):
        for combo in itertools.product(*(_choices(p) for p in parts)):
            names["".join(combo)] = None
    return list(names)


def is_nodelist_spec(text: str) -> bool:
    """Return True when :func:`expand` would accept ``text`` (checked without expanding it)."""
    if not isinstance(text, str):
        return False
    try:
        _parse(text)
    except NodeListError:
        return False
    return True


def _split_name(name: str) -> tuple[str, str, str] | None:
    """Split around the trailing-most run of ASCII digits: ``(prefix, digits, suffix)``."""
    end = len(name)
    while end and name[end - 1] not in _DIGITS:
        end -= 1
    if not end:
        return None
    start = end - 1
    while start and name[start - 1] in _DIGITS:
        start -= 1
    return name[:start], name[start:end], name[end:]


def node_sort_key(name: str) -> tuple[str, str, int, int]:
    """Canonical sort key: ``(prefix, suffix, digit width, number)``; ``(name, "", 0, 0)`` if no digits."""
    split = _split_name(name)
    if split is None:
        return name, "", 0, 0
    prefix, digits, suffix = split
    try:
        return prefix, suffix, len(digits), int(digits)
    except ValueError:  # too many digits for int(): treat the whole name as a literal
        return name, "", 0, 0


def _check_name(name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"node names must be str, got {type(name).__name__}")
    if not name:
        raise NodeListError(name, "empty name", what="node name")
    bad = _BAD_NAME_CHAR.search(name)
    if bad is None:
        return
    i, ch = bad.start(), bad.group()
    reason = "whitespace in name" if ch.isspace() else f"{ch!r} not allowed in a name"
    raise NodeListError(name, reason, i, what="node name")


def _format_group(prefix: str, suffix: str, width: int, numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"{prefix}{str(numbers[0]).zfill(width)}{suffix}"
    runs: list[str] = []
    lo = prev = numbers[0]
    for k in [*numbers[1:], None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        first = str(lo).zfill(width)
        runs.append(first if lo == prev else f"{first}-{str(prev).zfill(width)}")
        if k is not None:
            lo = prev = k
    return f"{prefix}[{','.join(runs)}]{suffix}"


def compress(names: Iterable[str]) -> str:
    """Inverse of :func:`expand`: ``compress(["n2", "n1", "n3", "n7"]) == "n[1-3,7]"``.

    Names are de-duplicated and sorted by :func:`node_sort_key`; names sharing prefix, suffix and
    digit width around their trailing-most number are merged into one bracket group with ranges
    collapsed (zero padding kept). Names without digits are listed as they are. An empty input
    gives ``""``. Raises :class:`NodeListError` for an empty name or one containing ``[``, ``]``,
    ``,`` or whitespace.
    """
    if isinstance(names, str):
        raise TypeError("compress() takes an iterable of names, not a single str")
    groups: dict[tuple[str, str, int], list[int]] = {}
    for name in set(names):
        _check_name(name)
        prefix, suffix, width, number = node_sort_key(name)
        # a name without digits has width 0 and its whole text as prefix: a group of its own
        groups.setdefault((prefix, suffix, width), []).append(number)
    return ",".join(
        key[0] if key[2] == 0 else _format_group(*key, sorted(groups[key])) for key in sorted(groups)
    )
