"""The local Slurm cluster for tests: started by the project's own script, shared by the session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm-cluster"


def cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, check=False)
    return done.returncode == 0


def ensure_cluster() -> None:
    """Use the running cluster, or start one (CI starts it in .ci/run; locally the tests may)."""
    if cluster_up():
        return
    if os.geteuid() != 0 or shutil.which("slurmctld") is None:
        require(False, "no Slurm cluster: run `bash scripts/slurm-cluster up --install` (as root)")
    done = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, check=False)
    require(done.returncode == 0, f"scripts/slurm-cluster up failed:\n{done.stdout}\n{done.stderr}")


def has_accounting() -> bool:
    done = subprocess.run(["sacct", "-n", "-X", "-j", "1"], capture_output=True, text=True, check=False)
    return done.returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    ensure_cluster()


def _conf() -> str:
    return str(Path(os.environ.get("CLOUDAI_NB_SLURM_DIR", "/tmp/cloudai-nb-slurm")) / "etc" / "slurm.conf")


def stop_controller() -> None:
    """Stop slurmctld only (the nodes and their jobs go on): clients then cannot reach it."""
    subprocess.run(["scontrol", "shutdown", "slurmctld"], check=True, capture_output=True)
    for _ in range(100):
        if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode != 0:
            return
        import time

        time.sleep(0.1)


def start_controller() -> None:
    subprocess.run(["slurmctld", "-f", _conf()], check=True, capture_output=True)
    for _ in range(100):
        if subprocess.run(["scontrol", "ping"], capture_output=True, check=False).returncode == 0:
            return
        import time

        time.sleep(0.1)
    raise RuntimeError("slurmctld did not come back")
