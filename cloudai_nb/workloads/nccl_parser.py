"""A pure parser for NVIDIA nccl-tests output (``all_reduce_perf`` and friends).

The format follows nccl-tests' ``src/common.cu``: a ``# nThread ...`` header, ``# Using devices`` and one
``#  Rank  0 Group  0 Pid 123 on host device  0 [0x1b] NVIDIA H100 80GB HBM3`` line per rank, the column
header (``size count type redop root`` then one ``time algbw busbw #wrong`` group per placement:
out-of-place, in-place), one row per message size, then ``# Out of bounds values : 0 OK`` and
``# Avg bus bandwidth    : 123.456``. Newer versions add ``# nccl-tests version ...`` and
``# Collective test starting: all_reduce_perf`` / ``# Collective test concluded: ...`` lines.

Real logs are messier, and `parse` copes with: OpenMPI ``--tag-output`` prefixes (``[1,0]<stdout>:``),
``srun --label`` prefixes (``0: ``), NCCL INFO/WARN lines anywhere (even glued onto a half-printed row),
tables with a single column group, ``N/A`` in ``#wrong`` (``-c 0``), several binaries run one after
another, and logs cut off anywhere. `parse` never raises; `NcclResult.failure_reason` says why a run
did not succeed. Standard library only: no pandas here.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["NcclGpu", "NcclResult", "NcclRow", "parse", "parse_file", "to_rows"]


@dataclass
class NcclRow:
    """One message size of one collective: the out-of-place group and, when printed, the in-place one."""

    collective: str
    size_b: int
    count: int
    dtype: str
    redop: str
    root: int | None  # None when the table has no root column
    oop_time_us: float
    oop_algbw_gbps: float
    oop_busbw_gbps: float
    oop_wrong: int | None  # None for "N/A" (run with -c 0)
    ip_time_us: float | None = None
    ip_algbw_gbps: float | None = None
    ip_busbw_gbps: float | None = None
    ip_wrong: int | None = None


class NcclGpu(NamedTuple):
    rank: int
    host: str
    device: int
    name: str


@dataclass
class NcclResult:
    rows: list[NcclRow] = field(default_factory=list)
    avg_busbw_gbps: float | None = None  # the mean of the per-collective averages when several ran
    out_of_bounds: int | None = None  # summed over collectives
    out_of_bounds_ok: bool | None = None
    gpus: list[NcclGpu] = field(default_factory=list)
    gpu_type: str | None = None
    ranks: int = 0
    collectives: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    truncated: bool = False
    # Beyond the basics:
    avg_busbw_by_collective: dict[str, float] = field(default_factory=dict)
    avg_busbw_ok: bool | None = None  # False when NCCL_TESTS_MIN_BW was set and the average missed it
    unfinished: list[str] = field(default_factory=list)  # collectives without an Avg line
    header_seen: bool = False
    parser_error: str | None = None  # set only if the parser itself hit a bug (it then returns this)

    def failure_reason(self) -> str | None:
        """Why the run failed, as a short sentence; None when it succeeded."""
        if self.parser_error is not None:
            return f"could not parse the log: {self.parser_error}"
        fatal = _first_fatal(self.errors)
        if fatal is not None:
            return fatal
        if not self.rows:
            why = (
                "no result table: the log ends after the header (crashed?)"
                if self.header_seen
                else "no nccl-tests output found (no header, no result table)"
            )
            return why + _last_warn_suffix(self.errors)
        if self.unfinished:
            if len(self.collectives) > 1:
                names = ", ".join(self.unfinished)
                return f"no '# Avg bus bandwidth' line for {names}: the run did not finish"
            return "no '# Avg bus bandwidth' line: the run did not finish" + _last_warn_suffix(self.errors)
        if self.out_of_bounds_ok is False:
            return f"out of bounds values: {self.out_of_bounds} FAILED"
        if self.out_of_bounds is None:
            wrong = sum((r.oop_wrong or 0) + (r.ip_wrong or 0) for r in self.rows)
            if wrong:
                return f"wrong values: {wrong} elements reported in the #wrong columns"
        if self.avg_busbw_ok is False:
            return f"average bus bandwidth {self.avg_busbw_gbps:g} GB/s is below NCCL_TESTS_MIN_BW"
        return None


# --------------------------------------------------------------------------------------------------
# Line recognition

_MPI_TAG = re.compile(r"\[\d+,\d+\]<(?:stdout|stderr|stddiag)>:\s?")
_SRUN_LABEL = re.compile(r"\s*\d+: ")
_NCCL_LOG = re.compile(r":\d+:\d+ \[\d+\] (?:\S+ )?NCCL (INFO|WARN|TRACE|ABORT|VERSION)\b")
_DEVICE = re.compile(
    r"#\s*Rank\s+(\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)\s+\[[^\]]*\]\s*(.*?)\s*$"
)
_BINARY = re.compile(r"(?:^|[\s/=\"'])([a-z][a-z0-9_]*?)_perf(?:_mpi)?(?=$|[\s;:\"'])")
_FAILURE = re.compile(r"Test (?:(NCCL|CUDA) )?failure\s+(\S+)(?:\s+'(.*?)'?\s*$)?")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_MAX_ERRORS = 50


def _strip_prefix(line: str) -> str:
    if line.startswith("["):
        m = _MPI_TAG.match(line)
        if m:
            return line[m.end() :]
    elif line[:1].isdigit() or line[:1] == " ":
        m = _SRUN_LABEL.match(line)
        if m:
            return line[m.end() :]
    return line


def _collective_name(binary: str) -> str:
    name = binary.rsplit("/", 1)[-1]
    if name.endswith("_mpi"):
        name = name[:-4]
    if name.endswith("_perf"):
        name = name[:-5]
    return name


def _split_glued_log(text: str, hosts: set[str]) -> tuple[str, str]:
    """Split ``'<row fragment><host>:pid:tid [dev] NCCL INFO ...'`` into fragment and log message."""
    m = _NCCL_LOG.search(text)
    if m is None:
        return text, ""
    end = m.start()
    start = end
    while start > 0 and text[start - 1] in _HOST_CHARS:
        start -= 1
    word = text[start:end]
    for host in hosts:
        if word.endswith(host):
            cut = end - len(host)
            return text[:cut], text[cut:]
    # Unknown host: the row fragment ends in digits, the host name starts at the first letter.
    for i, ch in enumerate(word):
        if ch.isalpha():
            return text[: start + i], text[start + i :]
    return text[:start], text[start:]


def _number(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def _wrong(tok: str) -> tuple[bool, int | None]:
    """``#wrong`` is printed with %g (``0``, ``12``, ``1e+06``) or ``N/A``; old versions print an error."""
    if tok == "N/A":
        return True, None
    try:
        value = float(tok)
    except ValueError:
        return False, None
    if math.isnan(value) or math.isinf(value):
        return True, None
    count = int(value)
    return True, 1 if count == 0 and value > 0 else count


class _Table:
    __slots__ = (
        "avg",
        "avg_ok",
        "done",
        "groups",
        "has_header",
        "has_root",
        "name",
        "oob",
        "oob_ok",
        "rows",
        "started",
    )

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.groups: list[str] | None = None  # ["oop", "ip"] from the column header
        self.has_root = True
        self.has_header = False  # the column header was printed
        self.started = False  # the "# nThread ..." header was printed
        self.rows: list[NcclRow] = []
        self.avg: float | None = None
        self.avg_ok: bool | None = None
        self.oob: int | None = None
        self.oob_ok: bool | None = None
        self.done = False


class _Parser:
    def __init__(self) -> None:
        self.tables: list[_Table] = []
        self.cur: _Table | None = None
        self.pending_name: str | None = None
        self.pending_labels: list[str] | None = None
        self.fragment: list[str] | None = None  # a row split by a glued NCCL log line
        self.gpus: dict[tuple[int, str, int], NcclGpu] = {}
        self.hosts: set[str] = set()
        self.errors: list[str] = []
        self.header_seen = False
        self.partial_last = False

    # -- tables --
    def new_table(self) -> _Table:
        table = _Table(self.pending_name)
        self.pending_name = None
        self.tables.append(table)
        self.cur = table
        self.fragment = None
        return table

    def table_for_rows(self) -> _Table:
        cur = self.cur
        if cur is None or cur.done:
            return self.new_table()
        return cur

    # -- lines --
    def feed(self, raw: str) -> None:
        line = _strip_prefix(raw)
        text = line.strip()
        if not text:
            return
        first = text[0]
        if first == "#":
            self.fragment = None
            self.comment(text)
        elif first.isdigit() or first == "-":
            self.maybe_row(text)
        else:
            self.other(text)

    def add_error(self, text: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(text[:500])

    def other(self, text: str) -> None:
        if "NCCL" in text and _NCCL_LOG.search(text):
            if "NCCL WARN" in text:
                self.add_error(text)
            return
        if "failure" in text and (
            "Test failure" in text or "Test NCCL failure" in text or "Test CUDA failure" in text
        ):
            self.add_error(text)
            return
        if "Test timeout" in text:
            self.add_error(text)
            return
        if "_perf" in text:
            m = _BINARY.search(text)
            if m:
                self.pending_name = _collective_name(m.group(1))
                cur = self.cur
                if cur is not None and cur.name is None and not cur.rows:
                    cur.name = self.pending_name
                    self.pending_name = None
            return
        if self.fragment is not None:
            # a continuation of a row whose first piece had a log glued onto it, e.g. "  743.0  45.16 ..."
            self.maybe_row(text)

    def comment(self, text: str) -> None:
        body = text[1:].strip()
        if not body:
            return
        if body.startswith("Rank"):
            m = _DEVICE.match(text)
            if m:
                rank, host, device, name = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
                self.hosts.add(host)
                self.gpus.setdefault((rank, host, device), NcclGpu(rank, host, device, name))
            return
        if body.startswith("nThread"):
            self.header_seen = True
            cur = self.cur
            if cur is None or cur.rows or cur.has_header or cur.done or cur.started:
                cur = self.new_table()
            cur.started = True
            return
        if body.startswith("Collective test starting:"):
            self.header_seen = True
            self.pending_name = _collective_name(body.split(":", 1)[1].strip() or "unknown")
            cur = self.cur
            if cur is not None and (cur.rows or cur.has_header or cur.done):
                self.cur = None
            return
        if body.startswith("Collective test concluded"):
            if self.cur is not None:
                self.cur.done = True
            return
        if body.startswith("Out of bounds values"):
            self.out_of_bounds(body)
            return
        if body.startswith("Avg bus bandwidth"):
            self.avg(body)
            return
        if "out-of-place" in body or "in-place" in body:
            labels = []
            for word in body.split():
                if word == "out-of-place":
                    labels.append("oop")
                elif word == "in-place":
                    labels.append("ip")
            self.pending_labels = labels
            return
        if "busbw" in body and "size" in body:
            self.column_header(body)

    def column_header(self, body: str) -> None:
        self.header_seen = True
        words = body.split()
        n_groups = max(1, min(2, words.count("busbw")))
        labels = self.pending_labels
        self.pending_labels = None
        groups = labels if labels and len(labels) == n_groups else ["oop", "ip"][:n_groups]
        cur = self.cur
        if cur is None or cur.rows or cur.has_header or cur.done:
            cur = self.new_table()
        cur.groups = groups
        cur.has_root = "root" in words
        cur.has_header = True

    def out_of_bounds(self, body: str) -> None:
        words = body.split(":", 1)[-1].split()
        if not words:
            return
        try:
            count = int(words[0])
        except ValueError:
            return
        table = self.cur if self.cur is not None else self.new_table()
        table.oob = count
        table.oob_ok = (words[1] == "OK") if len(words) > 1 else count == 0

    def avg(self, body: str) -> None:
        words = body.split(":", 1)[-1].split()
        value = _number(words[0]) if words else None
        if value is None:
            return
        table = self.cur if self.cur is not None else self.new_table()
        table.avg = value
        if len(words) > 1 and words[1] in ("OK", "FAILED"):
            table.avg_ok = words[1] == "OK"
        table.done = True

    def maybe_row(self, text: str) -> None:
        log = ""
        if "NCCL" in text:
            text, log = _split_glued_log(text, self.hosts)
        tokens = text.split()
        fragment = self.fragment
        if fragment is not None:
            if tokens and _number(tokens[0]) is not None and not (tokens[0].isdigit() and len(tokens) >= 8):
                tokens = fragment + tokens
            self.fragment = None
        if log:
            self.other(log)
        if not tokens:
            return
        if not self.row(tokens):
            if log and len(tokens) >= 5 and tokens[0].isdigit() and tokens[1].isdigit():
                self.fragment = tokens  # the rest of the row follows on the next line
            elif log == "":
                self.other_fallback(text)

    def other_fallback(self, text: str) -> None:
        """A line starting with a digit that is no row: a host-named log line, an error, or a cut-off row."""
        if "NCCL" in text or "failure" in text or "_perf" in text or "Test timeout" in text:
            self.other(text)
            return
        tokens = text.split()
        if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
            self.partial_last = True  # a row cut short (the log ends mid-line)

    def row(self, tokens: list[str]) -> bool:
        n = len(tokens)
        if n < 8 or not tokens[0].isdigit() or not tokens[1].isdigit():
            return False
        cur = self.cur
        if cur is not None and cur.groups is not None and not cur.done:
            n_groups = len(cur.groups)
            has_root = cur.has_root
            if n != 4 + has_root + 4 * n_groups:
                return False
        elif (n - 5) % 4 == 0 and 1 <= (n - 5) // 4 <= 2:
            n_groups, has_root = (n - 5) // 4, True
        elif (n - 4) % 4 == 0 and 1 <= (n - 4) // 4 <= 2:
            n_groups, has_root = (n - 4) // 4, False
        else:
            return False
        dtype, redop = tokens[2], tokens[3]
        if not dtype[:1].isalpha() or not redop[:1].isalpha():
            return False
        root: int | None = None
        i = 4
        if has_root:
            try:
                root = int(tokens[4])
            except ValueError:
                return False
            i = 5
        values: list[tuple[float, float, float, int | None]] = []
        for _ in range(n_groups):
            t, a, b = _number(tokens[i]), _number(tokens[i + 1]), _number(tokens[i + 2])
            ok, wrong = _wrong(tokens[i + 3])
            if t is None or a is None or b is None or not ok:
                return False
            values.append((t, a, b, wrong))
            i += 4
        table = self.table_for_rows()
        if table.groups is None:
            table.groups = ["oop", "ip"][:n_groups]
            table.has_root = has_root
        by_group = dict(zip(table.groups, values, strict=False))
        oop = by_group.get("oop")
        ip = by_group.get("ip")
        first = oop if oop is not None else ip
        if first is None:  # pragma: no cover - groups always hold oop or ip
            return False
        table.rows.append(
            NcclRow(
                collective="",
                size_b=int(tokens[0]),
                count=int(tokens[1]),
                dtype=dtype,
                redop=redop,
                root=root,
                oop_time_us=first[0],
                oop_algbw_gbps=first[1],
                oop_busbw_gbps=first[2],
                oop_wrong=first[3],
                ip_time_us=ip[0] if ip is not None and oop is not None else None,
                ip_algbw_gbps=ip[1] if ip is not None and oop is not None else None,
                ip_busbw_gbps=ip[2] if ip is not None and oop is not None else None,
                ip_wrong=ip[3] if ip is not None and oop is not None else None,
            )
        )
        self.partial_last = False
        return True

    # -- result --
    def result(self) -> NcclResult:
        res = NcclResult(errors=self.errors, header_seen=self.header_seen)
        res.gpus = list(self.gpus.values())
        res.ranks = len({g.rank for g in res.gpus})
        if res.gpus:
            res.gpu_type = Counter(g.name for g in res.gpus).most_common(1)[0][0]
        tables = [t for t in self.tables if t.rows or t.has_header or t.started or t.avg is not None]
        avgs: list[float] = []
        oob_total: int | None = None
        oob_ok: bool | None = None
        for index, table in enumerate(tables, start=1):
            name = table.name or f"collective_{index}"
            if name not in res.collectives:
                res.collectives.append(name)
            for row in table.rows:
                row.collective = name
            res.rows.extend(table.rows)
            if table.avg is None:
                if name not in res.unfinished:
                    res.unfinished.append(name)
            else:
                avgs.append(table.avg)
                res.avg_busbw_by_collective[name] = table.avg
            if table.avg_ok is not None:
                res.avg_busbw_ok = table.avg_ok and res.avg_busbw_ok is not False
            if table.oob is not None:
                oob_total = (oob_total or 0) + table.oob
                oob_ok = bool(table.oob_ok) and oob_ok is not False
        if avgs:
            res.avg_busbw_gbps = avgs[0] if len(avgs) == 1 else sum(avgs) / len(avgs)
        res.out_of_bounds, res.out_of_bounds_ok = oob_total, oob_ok
        res.truncated = bool(res.unfinished) or self.partial_last or self.fragment is not None
        return res


def _first_fatal(errors: list[str]) -> str | None:
    """The root cause among nccl-tests' failure lines: an NCCL/CUDA failure first, else a Test failure."""
    best: tuple[int, str] | None = None
    for line in errors:
        if "NCCL WARN" in line:
            continue
        m = _FAILURE.search(line)
        if m:
            kind, where, detail = m.group(1), m.group(2), m.group(3)
            if kind:
                msg = f"{kind} failure at {where}"
                if detail:
                    msg += f": {detail.strip()}"
                return msg
            if best is None:
                best = (1, f"Test failure at {where}")
        elif "Test timeout" in line and best is None:
            best = (0, line.strip())
    return best[1] if best else None


def _last_warn_suffix(errors: list[str]) -> str:
    for line in reversed(errors):
        if "NCCL WARN" in line:
            return "; last NCCL WARN: " + line.split("NCCL WARN", 1)[1].strip()[:200]
    return ""


def _parse_unchecked(text: str) -> NcclResult:
    parser = _Parser()
    for line in text.splitlines():
        parser.feed(line)
    return parser.result()


def parse(text: str) -> NcclResult:
    """Parse nccl-tests stdout (or stdout+stderr). Never raises: odd input gives a failure reason."""
    try:
        return _parse_unchecked(text)
    except Exception as exc:  # a parser bug must not fail a benchmark run; say so instead
        return NcclResult(parser_error=f"{type(exc).__name__}: {exc}")


def parse_file(path: str | Path) -> NcclResult:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return NcclResult(errors=[f"cannot read {path}: {exc.strerror or exc}"])
    return parse(text)


_METRICS = (
    ("time_oop", "oop_time_us", "us"),
    ("algbw_oop", "oop_algbw_gbps", "GB/s"),
    ("busbw_oop", "oop_busbw_gbps", "GB/s"),
    ("wrong_oop", "oop_wrong", "count"),
    ("time_ip", "ip_time_us", "us"),
    ("algbw_ip", "ip_algbw_gbps", "GB/s"),
    ("busbw_ip", "ip_busbw_gbps", "GB/s"),
    ("wrong_ip", "ip_wrong", "count"),
)


def to_rows(result: NcclResult) -> list[dict[str, Any]]:
    """Tidy rows for a results DataFrame: one per table cell that has a value, then the averages."""
    out: list[dict[str, Any]] = []
    for row in result.rows:
        for metric, attr, unit in _METRICS:
            value = getattr(row, attr)
            if value is None:
                continue
            out.append(
                {
                    "metric": metric,
                    "value": float(value),
                    "unit": unit,
                    "size_b": row.size_b,
                    "count": row.count,
                    "dtype": row.dtype,
                    "redop": row.redop,
                    "collective": row.collective,
                }
            )
    for name, avg in result.avg_busbw_by_collective.items():
        out.append({"metric": "avg_busbw", "value": avg, "unit": "GB/s", "collective": name})
    return out
