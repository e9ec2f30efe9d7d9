"""scripts/slurm-cluster for real: nodes idle after `up`, jobs spread over c1..cN, `status` exit codes,
`up` idempotent, and (slow) the accounting mode with `sacct`.

The session fixture brings the cluster up through the script in the default scratch dir (or
$CLOUDAI_NB_SLURM_DIR) and takes it down again only if it was not up before the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration_helpers import wait_until

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "slurm-cluster"
DEFAULT_DIR = Path("/tmp/cloudai-nb-slurm")
NODES = 2
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
SLURM_BINARIES = ("slurmctld", "slurmd", "sbatch", "srun", "sinfo", "scontrol", "munged")
ACCOUNTING_BINARIES = ("slurmdbd", "sacct", "sacctmgr", "mariadbd", "mariadb-install-db")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def run_script(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def missing(binaries: tuple[str, ...]) -> list[str]:
    return [b for b in binaries if shutil.which(b, path=SBIN_PATH) is None]


def require_slurm(extra: tuple[str, ...] = ()) -> None:
    require(os.geteuid() == 0, "scripts/slurm-cluster needs root")
    absent = missing(SLURM_BINARIES + extra)
    require(not absent, f"Slurm is missing ({absent}): run `scripts/slurm-cluster up --install`")


@dataclass
class SlurmCluster:
    """The running local cluster: its scratch dir, node count and a client environment."""

    dir: Path
    nodes: int
    env: dict[str, str]

    def run(self, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)

    def sbatch(self, *args: str) -> str:
        result = self.run("sbatch", "--parsable", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol -o show job ID` as a dict (the fields this module reads have no spaces)."""
        result = self.run("scontrol", "-o", "show", "job", job_id)
        assert result.returncode == 0, result.stderr
        return dict(field.split("=", 1) for field in result.stdout.split() if "=" in field)

    def wait_job(self, job_id: str, timeout: float = 30) -> dict[str, str]:
        final: dict[str, str] = wait_until(
            lambda: (job := self.job(job_id))["JobState"] in FINAL_STATES and job,
            timeout=timeout,
            interval=0.1,
        )
        return final

    def idle_nodes(self) -> int:
        result = self.run("sinfo", "-h", "-t", "idle", "-o", "%D")
        return sum(int(line) for line in result.stdout.split()) if result.returncode == 0 else -1


def cluster_dir() -> Path:
    return Path(os.environ.get("CLOUDAI_NB_SLURM_DIR") or DEFAULT_DIR)


def client_env(scratch: Path) -> dict[str, str]:
    return {**os.environ, "SLURM_CONF": str(scratch / "etc" / "slurm.conf")}


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A plain NODES-node cluster (no accounting); reused when it already runs with that shape."""
    require_slurm()
    was_up = run_script("status").returncode == 0
    result = run_script("up", "--nodes", str(NODES))
    assert result.returncode == 0, f"slurm-cluster up failed:\n{result.stdout}\n{result.stderr}"
    scratch = cluster_dir()
    yield SlurmCluster(dir=scratch, nodes=NODES, env=client_env(scratch))
    if not was_up:
        run_script("down")


def ctld_pid(cluster: SlurmCluster) -> str:
    return (cluster.dir / "run" / "slurmctld.pid").read_text().strip()


# ---------------------------------------------------------------- without a cluster


def test_bad_usage_exits_1() -> None:
    for args in (["up", "--nodes", "0"], ["up", "--bogus"], ["frobnicate"], ["down", "--accounting"]):
        result = run_script(*args, timeout=30)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "error" in result.stderr


def test_not_root_exits_2() -> None:
    # The script comes on stdin and cwd is /, so the unprivileged user needs no access to the checkout.
    cmd = ["bash", "-s", "--", "status"]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser", path=SBIN_PATH)
        require(runuser is not None, "runuser (util-linux) is missing")
        assert runuser is not None
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    with SCRIPT.open() as script:
        result = subprocess.run(
            cmd, stdin=script, capture_output=True, text=True, timeout=30, cwd="/", check=False
        )
    assert result.returncode == 2, result
    assert "must run as root" in result.stderr


def test_status_and_down_of_an_empty_dir(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "scripts/slurm-cluster needs root")
    empty = tmp_path / "nothing-here"
    status = run_script("status", "--dir", str(empty), timeout=30)
    assert status.returncode == 3, status
    assert "down" in status.stdout
    down = run_script("down", "--dir", str(empty), timeout=30)
    assert down.returncode == 0, down
    assert "nothing runs" in down.stdout
    env_lines = run_script("env", "--dir", str(empty), timeout=30)
    assert env_lines.returncode == 3
    assert env_lines.stdout == ""


# ---------------------------------------------------------------- the session cluster


@pytest.mark.slurm
def test_all_nodes_idle_after_up(slurm_cluster: SlurmCluster) -> None:
    assert wait_until(lambda: slurm_cluster.idle_nodes() == slurm_cluster.nodes, timeout=10)
    nodes = slurm_cluster.run("sinfo", "-h", "-N", "-o", "%N %P %c %m")
    assert nodes.returncode == 0, nodes.stderr
    assert sorted(nodes.stdout.split("\n")[:-1]) == [f"c{n} debug* 4 1000" for n in range(1, NODES + 1)]
    assert Path("/etc/slurm/slurm.conf").readlink() == slurm_cluster.dir / "etc" / "slurm.conf"


@pytest.mark.slurm
def test_jobs_run_on_the_emulated_nodes(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    where = ("-o", f"{tmp_path}/slurm-%j.out", "--chdir", str(tmp_path))
    two = slurm_cluster.sbatch(
        *where, "-N", "2", "--ntasks-per-node=1", "--wrap", "srun printenv SLURMD_NODENAME"
    )
    one = slurm_cluster.sbatch(*where, "--wrap", "echo $SLURMD_NODENAME")
    failing = slurm_cluster.sbatch(*where, "--wrap", "exit 3")

    job = slurm_cluster.wait_job(two)
    assert (job["JobState"], job["ExitCode"], job["NodeList"]) == ("COMPLETED", "0:0", "c[1-2]")
    assert sorted((tmp_path / f"slurm-{two}.out").read_text().split()) == ["c1", "c2"]

    job = slurm_cluster.wait_job(one)
    assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0")
    assert (tmp_path / f"slurm-{one}.out").read_text().strip() == job["NodeList"]

    job = slurm_cluster.wait_job(failing)
    assert (job["JobState"], job["Reason"], job["ExitCode"]) == ("FAILED", "NonZeroExitCode", "3:0")
    # jobcomp/filetxt keeps a line per finished job in the scratch dir
    jobcomp = slurm_cluster.dir / "jobcomp.txt"
    assert wait_until(lambda: f"JobId={failing} " in jobcomp.read_text(), timeout=5)


@pytest.mark.slurm
def test_status_exit_code_when_up(slurm_cluster: SlurmCluster) -> None:
    result = run_script("status", timeout=30)
    assert result.returncode == 0, result
    assert "PARTITION" in result.stdout
    assert "slurmctld" in result.stdout
    assert result.stdout.count("slurmd c") == slurm_cluster.nodes
    env_lines = run_script("env", timeout=30)
    assert env_lines.returncode == 0
    assert f"export SLURM_CONF={slurm_cluster.dir}/etc/slurm.conf" in env_lines.stdout.splitlines()


@pytest.mark.slurm
def test_up_is_idempotent(slurm_cluster: SlurmCluster) -> None:
    before = ctld_pid(slurm_cluster)
    started = time.monotonic()
    result = run_script("up", "--nodes", str(slurm_cluster.nodes))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result
    assert "already up" in result.stdout
    assert elapsed < 5
    assert ctld_pid(slurm_cluster) == before
    assert slurm_cluster.idle_nodes() == slurm_cluster.nodes


@pytest.mark.slurm
def test_down_of_another_dir_leaves_the_cluster_alone(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    before = ctld_pid(slurm_cluster)
    down = run_script("down", "--dir", str(tmp_path / "other"), timeout=30)
    assert down.returncode == 0, down
    assert "nothing runs" in down.stdout
    # munged is machine-wide: it must survive while this cluster uses it
    assert run_script("status", timeout=30).returncode == 0
    assert slurm_cluster.idle_nodes() == slurm_cluster.nodes
    assert ctld_pid(slurm_cluster) == before


# Last in the module: it switches the cluster to accounting mode and back.
@pytest.mark.slurm
@pytest.mark.slow
def test_accounting_mode_sacct(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    require_slurm(ACCOUNTING_BINARIES)
    try:
        result = run_script("up", "--nodes", str(slurm_cluster.nodes), "--accounting")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert "accounting=on" in result.stdout
        # slurmdbd.conf holds the DB settings: slurmdbd insists on 0600
        assert (slurm_cluster.dir / "etc" / "slurmdbd.conf").stat().st_mode & 0o777 == 0o600

        job_id = slurm_cluster.sbatch("-o", f"{tmp_path}/slurm-%j.out", "--wrap", "exit 3")
        slurm_cluster.wait_job(job_id)

        def sacct_final() -> str | None:
            out = slurm_cluster.run("sacct", "-X", "-P", "-n", "-j", job_id, "-o", "JobID,State,ExitCode")
            assert out.returncode == 0, out.stderr
            return out.stdout.strip() if "FAILED" in out.stdout else None

        # sacct may lag a moment behind slurmctld
        assert wait_until(sacct_final, timeout=10) == f"{job_id}|FAILED|3:0"
    finally:
        restored = run_script("up", "--nodes", str(slurm_cluster.nodes))
        assert restored.returncode == 0, f"{restored.stdout}\n{restored.stderr}"
