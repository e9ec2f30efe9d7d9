"""nccl_parser: fixture logs in nccl-tests' real format, failure reasons, and fuzzing (parse never raises)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudai_nb.workloads import nccl_parser
from cloudai_nb.workloads.nccl_parser import NcclGpu, NcclResult, parse, parse_file, to_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nccl"
ALL_LOGS = sorted(p.name for p in FIXTURES.glob("*.log"))


def load(name: str) -> NcclResult:
    return parse_file(FIXTURES / name)


# name, rows, collectives, avg, out_of_bounds, ok, gpu_type, ranks, truncated, failure (substring or None)
CASES = [
    ("allreduce_8xh100.log", 31, ["all_reduce"], 171.755, 0, True, "NVIDIA H100 80GB HBM3", 8, False, None),
    ("mpi_allgather_2x8.log", 11, ["all_gather"], 35.5941, 0, True, "NVIDIA H100 80GB HBM3", 16, False, None),
    ("single_group_srun.log", 11, ["collective_1"], 55.7782, 0, True, "NVIDIA L40S", 4, False, None),
    (
        "two_collectives.log",
        16,
        ["all_reduce", "alltoall"],
        (279.899 + 58.3669) / 2,
        0,
        True,
        "NVIDIA B200",
        8,
        False,
        None,
    ),
    (
        "crashed_after_header.log",
        0,
        ["collective_1"],
        None,
        None,
        None,
        "NVIDIA H100 80GB HBM3",
        8,
        True,
        "no result table: the log ends after the header (crashed?)",
    ),
    (
        "cut_mid_table.log",
        16,
        ["collective_1"],
        None,
        None,
        None,
        "NVIDIA H100 80GB HBM3",
        8,
        True,
        "no '# Avg bus bandwidth' line: the run did not finish",
    ),
    (
        "nccl_failure.log",
        21,
        ["collective_1"],
        None,
        None,
        None,
        "NVIDIA H100 80GB HBM3",
        16,
        True,
        "NCCL failure at common.cu:1005: remote process exited or there was a network error",
    ),
    (
        "oob_failed.log",
        14,
        ["collective_1"],
        65.7193,
        3,
        False,
        "NVIDIA A100-SXM4-80GB",
        8,
        False,
        "out of bounds values: 3 FAILED",
    ),
]


def test_every_fixture_has_a_case():
    assert sorted(c[0] for c in CASES) == ALL_LOGS


@pytest.mark.parametrize(
    ("name", "n_rows", "collectives", "avg", "oob", "oob_ok", "gpu_type", "ranks", "truncated", "failure"),
    CASES,
)
def test_fixture_summary(name, n_rows, collectives, avg, oob, oob_ok, gpu_type, ranks, truncated, failure):
    r = load(name)
    assert len(r.rows) == n_rows
    assert r.collectives == collectives
    assert r.avg_busbw_gbps == (pytest.approx(avg) if avg is not None else None)
    assert r.out_of_bounds == oob
    assert r.out_of_bounds_ok is oob_ok
    assert r.gpu_type == gpu_type
    assert r.ranks == ranks
    assert len(r.gpus) == ranks
    assert r.truncated is truncated
    reason = r.failure_reason()
    if failure is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(failure), reason


# name, index, (size, count, dtype, redop, root, oop t/alg/bus/wrong, ip t/alg/bus/wrong)
ROWS = [
    (
        "allreduce_8xh100.log",
        0,
        (8, 2, "float", "sum", -1, 14.54, 0.0, 0.0, 0, 15.09, 0.0, 0.0, 0),
    ),
    (
        "allreduce_8xh100.log",
        -1,
        (8589934592, 2147483648, "float", "sum", -1, 32602.0, 263.48, 461.09, 0, 33064.0, 259.79, 454.64, 0),
    ),
    (
        "mpi_allgather_2x8.log",
        5,  # the row with an NCCL INFO line glued between its two column groups
        (33554432, 524288, "float", "none", -1, 761.7, 44.05, 41.30, 0, 743.0, 45.16, 42.34, 0),
    ),
    (
        "single_group_srun.log",
        0,
        (65536, 8192, "bfloat16", "sum", -1, 11.90, 5.51, 4.13, None, None, None, None, None),
    ),
    (
        "oob_failed.log",
        6,
        (65536, 16384, "float", "sum", -1, 14.47, 4.53, 7.93, 1, 14.43, 4.54, 7.95, 1),
    ),
]


@pytest.mark.parametrize(("name", "index", "expected"), ROWS)
def test_fixture_rows(name, index, expected):
    row = load(name).rows[index]
    got = (
        row.size_b,
        row.count,
        row.dtype,
        row.redop,
        row.root,
        row.oop_time_us,
        row.oop_algbw_gbps,
        row.oop_busbw_gbps,
        row.oop_wrong,
        row.ip_time_us,
        row.ip_algbw_gbps,
        row.ip_busbw_gbps,
        row.ip_wrong,
    )
    for g, e in zip(got, expected, strict=True):
        assert g == (pytest.approx(e) if isinstance(e, float) else e)


def test_sizes_run_8b_to_8gb_in_powers_of_two():
    r = load("allreduce_8xh100.log")
    assert [row.size_b for row in r.rows] == [2**k for k in range(3, 34)]
    assert r.gpus[0] == NcclGpu(0, "dgx-h100-017", 0, "NVIDIA H100 80GB HBM3")
    assert r.errors == []


def test_mpi_log_hosts_and_info_lines():
    r = load("mpi_allgather_2x8.log")
    assert {g.host for g in r.gpus} == {"node-a07", "node-a08"}
    assert [g.rank for g in r.gpus] == list(range(16))
    assert r.errors == []  # INFO lines are not errors
    assert all(row.collective == "all_gather" for row in r.rows)


def test_two_collectives_tag_rows():
    r = load("two_collectives.log")
    assert [row.collective for row in r.rows] == ["all_reduce"] * 8 + ["alltoall"] * 8
    assert r.avg_busbw_by_collective == {"all_reduce": 279.899, "alltoall": 58.3669}
    assert r.rows[8].redop == "none"


def test_unnamed_collectives_are_numbered():
    text = (FIXTURES / "two_collectives.log").read_text()
    text = "\n".join(
        line for line in text.splitlines() if "Collective test" not in line and "_perf" not in line
    )
    r = parse(text)
    assert r.collectives == ["collective_1", "collective_2"]
    assert len(r.rows) == 16


def test_nccl_failure_errors_collected():
    r = load("nccl_failure.log")
    assert sum("NCCL WARN" in e for e in r.errors) == 2
    assert sum("Test failure" in e for e in r.errors) == 3
    assert any("Test NCCL failure" in e for e in r.errors)


def test_test_failure_only():
    text = "# nThread 1 nGpus 1 minBytes 8 maxBytes 8 step: 2(factor)\n .. node1 pid 12: Test failure common.cu:401\n"
    assert parse(text).failure_reason() == "Test failure at common.cu:401"


def test_cuda_failure_is_fatal():
    text = "node1: Test CUDA failure common.cu:732 'out of memory'\n .. node1 pid 9: Test failure common.cu:1130\n"
    assert parse(text).failure_reason() == "CUDA failure at common.cu:732: out of memory"


def test_warn_alone_is_not_a_failure():
    text = (FIXTURES / "allreduce_8xh100.log").read_text()
    text = "host1:12:12 [0] misc/cudawrap.cc:33 NCCL WARN Cuda failure 'driver shutting down'\n" + text
    r = parse(text)
    assert len(r.errors) == 1
    assert r.failure_reason() is None


def test_crash_reason_mentions_last_warn():
    text = (
        "# nThread 1 nGpus 8 minBytes 8 maxBytes 8 step: 2(factor)\n"
        "host1:12:12 [0] transport.cc:165 NCCL WARN Error: invalid usage\n"
    )
    reason = parse(text).failure_reason()
    assert reason is not None
    assert reason.startswith("no result table")
    assert "invalid usage" in reason


def test_empty_and_garbage():
    assert parse("").failure_reason() == "no nccl-tests output found (no header, no result table)"
    r = parse("hello\nworld 1 2 3\n\x00\x01")
    assert r.rows == [] and r.failure_reason() is not None


def test_rows_without_avg_in_second_collective():
    text = (FIXTURES / "two_collectives.log").read_text()
    cut = text[: text.rindex("# Out of bounds")]
    r = parse(cut)
    assert r.truncated
    assert r.unfinished == ["alltoall"]
    assert r.failure_reason() == "no '# Avg bus bandwidth' line for alltoall: the run did not finish"


def test_min_bw_failed():
    text = (FIXTURES / "allreduce_8xh100.log").read_text().replace("171.755 ", "171.755 FAILED")
    r = parse(text)
    assert r.avg_busbw_ok is False
    assert r.failure_reason() == "average bus bandwidth 171.755 GB/s is below NCCL_TESTS_MIN_BW"


def test_wrong_printed_with_g_format():
    text = (FIXTURES / "allreduce_8xh100.log").read_text()
    r = parse(
        text.replace(
            "     float     sum      -1    14.54    0.00    0.00      0",
            "     float     sum      -1    14.54    0.00    0.00  1e+06",
        )
    )
    assert r.rows[0].oop_wrong == 1_000_000


def test_srun_label_with_two_digit_rank_and_stderr_tag():
    text = (
        "10: node9:5:5 [2] NCCL INFO hello\n"
        "[1,3]<stderr>:node9:5:5 [3] enqueue.cc:1 NCCL WARN oops\n"
        "0: #       size         count      type   redop    root     time   algbw   busbw #wrong\n"
        "0:         1024           256     float     sum       0    10.00    0.10    0.10      0\n"
        "0: # Avg bus bandwidth    : 0.1\n"
    )
    r = parse(text)
    assert len(r.rows) == 1 and r.rows[0].root == 0 and r.rows[0].ip_time_us is None
    assert r.errors == ["node9:5:5 [3] enqueue.cc:1 NCCL WARN oops"]
    assert r.failure_reason() is None


def test_to_rows():
    r = load("allreduce_8xh100.log")
    rows = to_rows(r)
    assert len(rows) == 31 * 8 + 1
    first = rows[0]
    assert first == {
        "metric": "time_oop",
        "value": 14.54,
        "unit": "us",
        "size_b": 8,
        "count": 2,
        "dtype": "float",
        "redop": "sum",
        "collective": "all_reduce",
    }
    assert [x["metric"] for x in rows[:8]] == [
        "time_oop",
        "algbw_oop",
        "busbw_oop",
        "wrong_oop",
        "time_ip",
        "algbw_ip",
        "busbw_ip",
        "wrong_ip",
    ]
    assert rows[-1] == {"metric": "avg_busbw", "value": 171.755, "unit": "GB/s", "collective": "all_reduce"}


def test_to_rows_single_group_skips_missing():
    rows = to_rows(load("single_group_srun.log"))
    assert {x["metric"] for x in rows} == {"time_oop", "algbw_oop", "busbw_oop", "avg_busbw"}  # #wrong is N/A


def test_to_rows_two_collectives_two_averages():
    rows = [x for x in to_rows(load("two_collectives.log")) if x["metric"] == "avg_busbw"]
    assert [x["collective"] for x in rows] == ["all_reduce", "alltoall"]


def test_parse_file_missing(tmp_path):
    r = parse_file(tmp_path / "nope.txt")
    assert r.failure_reason() is not None


def test_parse_file_bad_bytes(tmp_path):
    p = tmp_path / "stdout.txt"
    p.write_bytes((FIXTURES / "allreduce_8xh100.log").read_bytes() + b"\xff\xfe garbage\n")
    assert len(parse_file(p).rows) == 31


def test_speed_30_size_log():
    text = (FIXTURES / "allreduce_8xh100.log").read_text()
    parse(text)
    n = 1000
    start = time.perf_counter()
    for _ in range(n):
        parse(text)
    per_log = (time.perf_counter() - start) / n
    print(f"parse: {per_log * 1e6:.0f} us per 31-size log")
    assert per_log < 0.005  # target well under 1 ms; generous bound for slow CI machines


# ------------------------------------------------------------------ property tests

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIXTURE_LINES = {name: (FIXTURES / name).read_text().splitlines() for name in ALL_LOGS}
LOG_BITS = [
    "# Avg bus bandwidth    : ",
    "# Out of bounds values : ",
    "#  Rank  0 Group  0 Pid 1 on h device  0 [0x1b] ",
    "# nThread 1 nGpus 1",
    "#       size         count      type   redop    root     time   algbw   busbw #wrong",
    "out-of-place",
    "in-place",
    "[1,0]<stdout>:",
    "0: ",
    "h:1:2 [0] NCCL INFO ",
    "h:1:2 [0] x.cc:1 NCCL WARN ",
    "Test failure ",
    "Test NCCL failure a.cu:1 '",
    "N/A",
    "nan",
    "-1",
    "1e+06",
    "  8  2  float  sum  -1  ",
    "all_reduce_perf",
    "# Collective test starting: ",
    "\n",
    " ",
]


def _check(result: NcclResult) -> None:
    assert result.parser_error is None
    reason = result.failure_reason()
    assert reason is None or isinstance(reason, str)
    to_rows(result)


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_text(text):
    _check(nccl_parser._parse_unchecked(text))


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(LOG_BITS), st.text(max_size=12)), max_size=60).map("".join))
def test_fuzz_log_like_text(text):
    _check(nccl_parser._parse_unchecked(text))


@FUZZ
@given(
    name=st.sampled_from(ALL_LOGS),
    data=st.data(),
)
def test_fuzz_mutated_fixtures(name, data):
    lines = list(FIXTURE_LINES[name])
    ops = data.draw(
        st.lists(st.tuples(st.sampled_from(["del", "dup", "cut"]), st.integers(0, 10_000)), max_size=8)
    )
    for op, pos in ops:
        if not lines:
            break
        i = pos % len(lines)
        if op == "del":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        else:
            lines[i] = lines[i][: pos % (len(lines[i]) + 1)]
    text = "\n".join(lines)
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    result = nccl_parser._parse_unchecked(text)
    _check(result)
    # Rows that survive are always complete, well-formed rows of the original log.
    assert all(row.size_b >= 0 and row.dtype for row in result.rows)
