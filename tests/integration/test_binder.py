"""binder/ (repo2docker) for real: the files agree with the project, postBuild installs the CloudAI
kernel into an environment, and `start` brings up a rootless Slurm cluster for the notebook user
(`scripts/slurm-cluster --rootless`) that runs jobs.

As root, the notebook user is $CLOUDAI_NB_TEST_USER (default `cloudaitest`, created with `useradd`
when missing) and everything runs through `runuser`; as a normal user, as that user. The rootless
clusters use their own dirs and free ports, so the root cluster of the other tests keeps running.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
BINDER = REPO / "binder"
SCRIPT = REPO / "scripts" / "slurm-cluster"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
ROOTLESS_BINARIES = ("slurmctld", "slurmd", "sbatch", "sinfo", "scontrol", "munged", "mungekey", "munge")
TEST_USER = os.environ.get("CLOUDAI_NB_TEST_USER", "cloudaitest")


def lines(path: Path) -> list[str]:
    return [
        line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- the files


def test_binder_scripts_are_executable_bash_with_set_e() -> None:
    for name in ("postBuild", "start"):
        path = BINDER / name
        assert path.is_file(), path
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
        text = path.read_text()
        assert text.startswith("#!"), f"{path}: no shebang"
        assert "bash" in text.splitlines()[0]
        assert re.search(r"^set -e", text, re.MULTILINE), f"{path}: no `set -e`"
        syntax = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, syntax.stderr
    assert lines(BINDER / "start")[-1] == 'exec "$@"'


def test_requirements_install_the_package() -> None:
    requirements = lines(BINDER / "requirements.txt")
    assert "-e ." in requirements
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {
        normalize(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0])
        for dep in itertools.chain(
            project["dependencies"], *project.get("optional-dependencies", {}).values()
        )
    }
    for requirement in requirements:
        if requirement.startswith("-"):
            continue
        name = normalize(re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0])
        installed = True
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            installed = False
        assert installed or name in declared, (
            f"binder/requirements.txt: {name} is neither installed nor declared"
        )


def test_apt_packages_exist() -> None:
    packages = lines(BINDER / "apt.txt")
    assert {"slurmctld", "slurmd", "slurm-client", "munge", "fio"} <= set(packages)
    require(shutil.which("apt-cache") is not None, "apt-cache is missing (not a Debian/Ubuntu machine)")
    known = subprocess.run(["apt-cache", "show", "coreutils"], capture_output=True, text=True, check=False)
    require(known.returncode == 0, "apt-cache knows no packages: run apt-get update")
    shown = subprocess.run(["apt-cache", "show", *packages], capture_output=True, text=True, check=False)
    unknown = [p for p in packages if f"Package: {p}\n" not in shown.stdout]
    assert not unknown, f"binder/apt.txt: apt-cache does not know {unknown}: {shown.stderr}"


# ---------------------------------------------------------------- postBuild


def cli_has_kernel_command() -> bool:
    done = subprocess.run(
        [sys.executable, "-m", "cloudai_nb", "kernel", "install", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.slow
def test_postbuild_installs_the_kernel_into_the_environment(tmp_path: Path) -> None:
    """postBuild in a throwaway environment that sees this one's packages (nothing lands in the venv)."""
    if not cli_has_kernel_command():
        pytest.skip("`cloudai-nb kernel` is not wired into cloudai_nb/cli/main.py yet")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=False)
    site_packages = next((env_dir / "lib").glob("python*/site-packages"))
    # addsitedir also runs this environment's .pth files (the editable install of cloudai_nb).
    parent = sysconfig.get_paths()["purelib"]
    (site_packages / "_parent_env.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{env_dir / 'bin'}:{SYSTEM_PATH}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
    }
    done = subprocess.run(
        ["bash", str(BINDER / "postBuild")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    spec = json.loads((env_dir / "share" / "jupyter" / "kernels" / "cloudai" / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (CloudAI)"
    assert spec["argv"][0] == str(env_dir / "bin" / "python")
    assert "--ext=cloudai_nb" in spec["argv"]
    settings = json.loads((env_dir / "share" / "jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["checkForUpdates"] is False
    server = json.loads((env_dir / "etc" / "jupyter" / "jupyter_server_config.json").read_text())
    assert server["MultiKernelManager"]["default_kernel_name"] == "cloudai"


# ---------------------------------------------------------------- the notebook user and rootless Slurm


@dataclass
class NotebookUser:
    name: str
    home: Path  # a fresh folder owned by the user, used as its HOME
    prefix: list[str]  # runuser -u NAME -- (empty when the tests already run as that user)

    def run(
        self, *cmd: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            "PATH": SYSTEM_PATH,
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "LANG": "C.UTF-8",
            **(env or {}),
        }
        return subprocess.run(
            [*self.prefix, "env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd],
            capture_output=True,
            text=True,
            cwd=self.home,
            timeout=timeout,
            check=False,
        )

    def script(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("bash", str(SCRIPT), *args, env=env)


def ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd", path=SBIN_PATH)
    require(useradd is not None, f"no user {name} and no useradd to create it")
    assert useradd is not None
    done = subprocess.run(
        [useradd, "-m", "-s", "/bin/bash", name], capture_output=True, text=True, check=False
    )
    require(done.returncode == 0, f"useradd {name} failed: {done.stderr}")


@pytest.fixture
def notebook_user() -> Iterator[NotebookUser]:
    absent = [b for b in ROOTLESS_BINARIES if shutil.which(b, path=SBIN_PATH) is None]
    require(
        not absent, f"Slurm/munge missing ({absent}): apt-get install slurmctld slurmd slurm-client munge"
    )
    if os.geteuid() == 0:
        runuser = shutil.which("runuser", path=SBIN_PATH)
        require(runuser is not None, "runuser (util-linux) is missing")
        assert runuser is not None
        ensure_user(TEST_USER)
        entry = pwd.getpwnam(TEST_USER)
        prefix = [runuser, "-u", TEST_USER, "--"]
    else:
        entry = pwd.getpwuid(os.geteuid())
        prefix = []
    # Short and under /tmp: the munge socket path must fit in 108 bytes, the user must reach it.
    home = Path(tempfile.mkdtemp(prefix="cloudai-binder-", dir="/tmp"))
    os.chown(home, entry.pw_uid, entry.pw_gid)
    home.chmod(0o755)
    user = NotebookUser(entry.pw_name, home, prefix)
    readable = user.run("test", "-r", str(SCRIPT), "-a", "-r", str(BINDER / "start"))
    require(readable.returncode == 0, f"{user.name} cannot read {REPO} (the checkout must be world-readable)")
    try:
        yield user
    finally:
        for scratch in (home / ".cloudai-slurm", home / "rootless"):
            if (scratch / "etc" / "slurm.conf").exists():
                user.script("down", "--rootless", "--dir", str(scratch))
        shutil.rmtree(home, ignore_errors=True)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def free_port_base(nodes: int = 2) -> int:
    """A base P with P (slurmctld), P+2 and P+11..P+10+nodes free."""
    start = 30000 + os.getpid() % 500 * 40
    for base in range(start, 64000, 40):
        if all(port_free(p) for p in (base, base + 2, *range(base + 11, base + 11 + nodes))):
            return base
    raise AssertionError("no free ports")


def root_cluster_status() -> int | None:
    if os.geteuid() != 0:
        return None
    return subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, check=False).returncode


@pytest.mark.slurm
@pytest.mark.slow
def test_start_runs_a_rootless_cluster_for_the_notebook_user(notebook_user: NotebookUser) -> None:
    root_before = root_cluster_status()
    base = free_port_base()
    command = (
        'echo "SLURM_CONF=$SLURM_CONF"; sinfo -h -o %D && '
        'sbatch --parsable --wait -o "$HOME/job-%j.out" --wrap "echo \\$SLURMD_NODENAME; id -un"'
    )
    done = notebook_user.run(
        str(BINDER / "start"), "bash", "-c", command, env={"CLOUDAI_NB_SLURM_PORT_BASE": str(base)}
    )
    scratch = notebook_user.home / ".cloudai-slurm"
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    out = done.stdout.splitlines()
    assert out[0] == f"SLURM_CONF={scratch}/etc/slurm.conf"
    assert out[1] == "2"  # idle nodes
    job_id = out[2].split(";")[0]
    assert (notebook_user.home / f"job-{job_id}.out").read_text().split() == ["c1", notebook_user.name]
    assert "Slurm is up" in done.stderr
    # the cluster keeps running after start's command (the notebook server) ... until `down`
    status = notebook_user.script("status", "--rootless", "--dir", str(scratch))
    assert status.returncode == 0, status
    down = notebook_user.script("down", "--rootless", "--dir", str(scratch))
    assert down.returncode == 0, down
    assert "munged stopped" in down.stdout
    assert notebook_user.script("status", "--rootless", "--dir", str(scratch)).returncode == 3
    assert root_cluster_status() == root_before


@pytest.mark.slurm
@pytest.mark.slow
def test_rootless_script_up_job_idempotent_down(notebook_user: NotebookUser) -> None:
    etc_conf = Path("/etc/slurm/slurm.conf")
    etc_before = etc_conf.readlink() if etc_conf.is_symlink() else etc_conf.exists()
    root_before = root_cluster_status()
    scratch = notebook_user.home / "rootless"
    base = free_port_base()
    up = notebook_user.script("up", "--rootless", "--dir", str(scratch), "--port-base", str(base))
    assert up.returncode == 0, f"{up.stdout}\n{up.stderr}"
    assert f"slurmctld port {base}" in up.stdout

    conf = scratch / "etc" / "slurm.conf"
    settings = dict(line.split("=", 1) for line in conf.read_text().splitlines() if "=" in line)
    assert settings["SlurmUser"] == notebook_user.name
    assert settings["SlurmctldPort"] == str(base)
    assert settings["AuthInfo"] == f"socket={scratch}/munge/munge.socket"
    key = scratch / "munge" / "munge.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.stat().st_uid == pwd.getpwnam(notebook_user.name).pw_uid

    env_lines = notebook_user.script("env", "--rootless", "--dir", str(scratch))
    assert env_lines.returncode == 0
    assert f"export SLURM_CONF={conf}" in env_lines.stdout.splitlines()

    client = {"SLURM_CONF": str(conf)}
    job = notebook_user.run(
        "sbatch", "--parsable", "--wait", "-o", "/dev/null", "--wrap", "exit 3", env=client
    )
    assert job.returncode == 3, job  # sbatch --wait exits with the job's code
    job_id = job.stdout.strip().split(";")[0]
    shown = notebook_user.run("scontrol", "-o", "show", "job", job_id, env=client)
    fields = dict(f.split("=", 1) for f in shown.stdout.split() if "=" in f)
    assert (fields["JobState"], fields["ExitCode"], fields["UserId"].split("(")[0]) == (
        "FAILED",
        "3:0",
        notebook_user.name,
    )

    again = notebook_user.script("up", "--rootless", "--dir", str(scratch), "--port-base", str(base))
    assert again.returncode == 0 and "already up" in again.stdout, again
    status = notebook_user.script("status", "--rootless", "--dir", str(scratch))
    assert status.returncode == 0 and "started by slurm-cluster" in status.stdout, status

    down = notebook_user.script("down", "--rootless", "--dir", str(scratch))
    assert down.returncode == 0, down
    assert notebook_user.script("status", "--rootless", "--dir", str(scratch)).returncode == 3
    # nothing outside the scratch dir changed, and the root cluster is as it was
    assert (etc_conf.readlink() if etc_conf.is_symlink() else etc_conf.exists()) == etc_before
    assert root_cluster_status() == root_before


def test_rootless_refusals(notebook_user: NotebookUser) -> None:
    scratch = str(notebook_user.home / "rootless")
    no_accounting = notebook_user.script("up", "--rootless", "--accounting", "--dir", scratch)
    assert no_accounting.returncode == 1 and "--accounting needs root" in no_accounting.stderr
    if os.geteuid() == 0:
        as_root = subprocess.run(
            ["bash", str(SCRIPT), "status", "--rootless", "--dir", scratch],
            capture_output=True,
            text=True,
            check=False,
        )
        assert as_root.returncode == 2 and "non-root" in as_root.stderr
    assert not (Path(scratch) / "etc").exists()
