"""The example notebooks (notebooks/*.ipynb): they run cleanly, and their committed outputs are checked.

(a) Every notebook runs in a fresh kernel (nbclient) in a temporary copy of notebooks/, so nothing is
written into the repository; a cell fails the test with an ``error`` output, and also with
"UsageError" or "Traceback" in its stderr: a magic's UsageError and an exception inside a widget
callback never produce an ``error`` output (see /work/shared/JUPYTER.md).
(b) nbval's comparison of committed outputs is real: a copy of 01_quickstart.ipynb with one value
changed in a committed DataFrame fails ``pytest --nbval``, the unmodified copy passes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.integration.slurm_helpers import slurm_cluster  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
SLURM = {"02_slurm.ipynb"}
SANITIZE = NOTEBOOKS / "sanitize.cfg"
CELL_TIMEOUT_S = 120

PARAMS = [pytest.param(name, id=name, marks=[pytest.mark.slurm] if name in SLURM else []) for name in NAMES]


def copy_notebooks(tmp_path: Path) -> Path:
    """notebooks/ without what running them leaves behind (results/, install/)."""
    target = tmp_path / "notebooks"
    shutil.copytree(
        NOTEBOOKS,
        target,
        ignore=shutil.ignore_patterns("results", "install", ".ipynb_checkpoints", "slurm_local.toml"),
    )
    return target


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """Every error output, and every stderr stream that mentions a UsageError or a Traceback."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index} ({cell.source[:60]!r}): {output['ename']}: {output['evalue']}")
            elif (
                output.get("output_type") == "stream"
                and output.get("name") == "stderr"
                and ("UsageError" in output["text"] or "Traceback" in output["text"])
            ):
                found.append(f"cell {index} ({cell.source[:60]!r}) stderr: {output['text'][:2000]}")
    return found


# -- quick checks of what is committed --------------------------------------------------------------


def test_there_are_five_notebooks():
    assert [n[:2] for n in NAMES] == ["01", "02", "03", "04", "05"], NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_executed_and_clean(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{name} has no code cells"
    unexecuted = [cell.source[:60] for cell in code if cell.execution_count is None]
    assert not unexecuted, f"{name}: cells never executed: {unexecuted}"
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), f"{name} was not run top to bottom: {counts}"
    assert not problems(nb), problems(nb)


def test_sanitize_cfg_is_pairs_of_valid_regexes():
    text = SANITIZE.read_text()
    pairs = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)
    assert len(pairs) == text.count("regex: ") >= 8
    for pattern, _ in pairs:
        re.compile(pattern)


def test_the_shipped_nccl_run_is_small_and_complete():
    runs = list((NOTEBOOKS / "data").glob("nccl_run_*"))
    assert len(runs) == 1, runs
    files = [p for p in runs[0].rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 64 * 1024
    assert json.loads((runs[0] / "summary.json").read_text())["state"] == "COMPLETED"


# -- (a) every notebook runs cleanly in a fresh kernel ----------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.parametrize("name", PARAMS)
def test_notebook_runs_cleanly(request, name, tmp_path):
    from nbclient import NotebookClient

    if name in SLURM:
        request.getfixturevalue("slurm_cluster")
    before = repository_runs()
    folder = copy_notebooks(tmp_path)
    nb = nbformat.read(folder / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        allow_errors=True,  # collect every problem, then report them all
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    found = problems(nb)
    assert not found, f"{name}:\n" + "\n".join(found)
    assert any((folder / "results").iterdir()), "the runs should be under the copy"
    assert repository_runs() == before, "the notebook wrote runs into notebooks/results"


def repository_runs() -> set[str]:
    results = NOTEBOOKS / "results"
    return {p.name for p in results.iterdir()} if results.exists() else set()


# -- (b) nbval compares the committed outputs -------------------------------------------------------


def nbval(folder: Path, notebook: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            "--nbval-sanitize-with",
            str(folder / "sanitize.cfg"),
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(notebook),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def change_one_value(nb: nbformat.NotebookNode, old: str, new: str) -> int:
    """Replace ``old`` with ``new`` in the text/plain and text/html of DataFrame outputs; how many."""
    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "dataframe" not in data.get("text/html", ""):
                continue
            for mime in ("text/plain", "text/html"):
                if old in data.get(mime, ""):
                    data[mime] = data[mime].replace(old, new)
                    changed += 1
    return changed


@pytest.mark.slow
@pytest.mark.kernel
def test_nbval_compares_the_committed_outputs(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    shutil.copy(SANITIZE, folder / "sanitize.cfg")
    original = folder / "01_quickstart.ipynb"
    shutil.copy(NOTEBOOKS / original.name, original)

    passed = nbval(folder, original)
    assert passed.returncode == 0, passed.stdout[-5000:] + passed.stderr[-2000:]

    nb = nbformat.read(original, as_version=4)
    assert change_one_value(nb, "42.0", "43.0") == 2  # the `answer` metric, in both renderings
    edited = folder / "01_edited.ipynb"
    nbformat.write(nb, edited)
    failed = nbval(folder, edited)
    assert failed.returncode != 0, failed.stdout[-5000:]
    assert "43.0" in failed.stdout and "42.0" in failed.stdout, failed.stdout[-5000:]
