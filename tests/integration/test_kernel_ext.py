"""kernel_ext/ for real: the "Python 3 (CloudAI)" kernelspec and ipython_kernel_config.py each start a
kernel that has the %cloudai_* magics without `%load_ext`. Nothing is installed outside tmp_path: the
kernelspec goes to a temp prefix (or HOME=tmp for --user) and kernels get a temp IPYTHONDIR.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloudai_nb.cli import kernel as kernel_cli
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
KERNEL_EXT = REPO / "kernel_ext"
MAGICS = ("cloudai_run", "cloudai_status", "cloudai_system", "cloudai_results")
PROBE = (
    "import json\n"
    "_ip = get_ipython()\n"
    f"print(json.dumps({{'magics': {{m: _ip.find_line_magic(m) is not None for m in {MAGICS!r}}}, "
    "'loaded': 'cloudai_nb' in _ip.extension_manager.loaded}))\n"
)


def namespace(**kw: Any) -> argparse.Namespace:
    args = {"user": False, "sys_prefix": False, "prefix": None, "name": None, "display_name": None}
    return argparse.Namespace(**{**args, **kw})


def kernel_env(tmp_path: Path, ipython_dir: Path | None = None) -> dict[str, str]:
    """The kernel's environment: its own IPYTHONDIR, so no config of this machine loads the extension."""
    ipython_dir = ipython_dir or tmp_path / "ipython-empty"
    ipython_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir)}
    env.pop("JUPYTER_PATH", None)
    return env


def probe(
    tmp_path: Path, kernel_name: str, env: dict[str, str], kernel_dirs: list[Path] | None = None
) -> Any:
    """Start the kernel, run PROBE, return its JSON (and fail with the kernel's stderr if it broke)."""
    require(importlib.util.find_spec("ipykernel") is not None, "ipykernel is not installed")
    import jupyter_client
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = KernelSpecManager(kernel_dirs=[str(d) for d in kernel_dirs]) if kernel_dirs else KernelSpecManager()
    km = jupyter_client.KernelManager(kernel_name=kernel_name, kernel_spec_manager=ksm)
    km.connection_file = str(tmp_path / f"kernel-{kernel_name}.json")
    km.start_kernel(env=env, cwd=str(tmp_path))
    kc = km.client()
    kc.start_channels()
    out: list[str] = []
    errors: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(PROBE, timeout=60, output_hook=hook)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", errors
    return json.loads("".join(out).strip().splitlines()[-1])


def installed_spec(dest: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((dest / "kernel.json").read_text())
    return spec


# ---------------------------------------------------------------- the files


def test_kernel_ext_files() -> None:
    spec = json.loads((KERNEL_EXT / "cloudai" / "kernel.json").read_text())
    assert spec == kernel_cli.EMBEDDED_SPEC, "kernel_ext/cloudai/kernel.json and cli/kernel.py disagree"
    assert spec["display_name"] == "Python 3 (CloudAI)"
    argv = spec["argv"]
    assert argv[0] == "{python}"
    assert argv[argv.index("-m") + 1] == "ipykernel_launcher"
    assert argv[argv.index("-f") + 1] == "{connection_file}"
    assert "--ext=cloudai_nb" in argv
    config = (KERNEL_EXT / "ipython_kernel_config.py").read_text()
    assert 'c.InteractiveShellApp.extensions = ["cloudai_nb"]' in config
    assert (KERNEL_EXT / "README.md").is_file()


def test_install_fills_in_this_python(tmp_path: Path) -> None:
    assert kernel_cli.install(namespace(prefix=str(tmp_path))) == 0
    dest = tmp_path / "share" / "jupyter" / "kernels" / "cloudai"
    spec = installed_spec(dest)
    assert spec["argv"][0] == sys.executable
    assert "{python}" not in spec["argv"]
    assert spec["display_name"] == "Python 3 (CloudAI)"
    assert (dest / "logo-64x64.png").is_file()
    # again, with another name and display name: a second spec next to the first
    args = namespace(prefix=str(tmp_path), name="CloudAI-2", display_name="CloudAI two")
    assert kernel_cli.install(args) == 0
    assert installed_spec(dest.parent / "cloudai-2")["display_name"] == "CloudAI two"


def test_install_rejects_a_bad_name_and_two_places(tmp_path: Path) -> None:
    with pytest.raises(kernel_cli.KernelSpecError, match="invalid kernel name"):
        kernel_cli.install(namespace(prefix=str(tmp_path), name="no spaces"))
    with pytest.raises(kernel_cli.KernelSpecError, match="choose one"):
        kernel_cli.install(namespace(user=True, sys_prefix=True))


# ---------------------------------------------------------------- real kernels


@pytest.mark.kernel
def test_kernelspec_kernel_has_the_magics_without_load_ext(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    assert kernel_cli.install(namespace(prefix=str(prefix))) == 0
    kernels = prefix / "share" / "jupyter" / "kernels"
    result = probe(tmp_path, "cloudai", kernel_env(tmp_path), kernel_dirs=[kernels])
    assert result == {"magics": dict.fromkeys(MAGICS, True), "loaded": True}


@pytest.mark.kernel
def test_plain_kernel_has_no_magics(tmp_path: Path) -> None:
    """The control: without the spec or the config, a python3 kernel has none (the probe works)."""
    result = probe(tmp_path, "python3", kernel_env(tmp_path))
    assert result == {"magics": dict.fromkeys(MAGICS, False), "loaded": False}


@pytest.mark.kernel
def test_ipython_kernel_config_route(tmp_path: Path) -> None:
    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    shutil.copy(KERNEL_EXT / "ipython_kernel_config.py", profile / "ipython_kernel_config.py")
    result = probe(tmp_path, "python3", kernel_env(tmp_path, ipython_dir))
    assert result == {"magics": dict.fromkeys(MAGICS, True), "loaded": True}


# ---------------------------------------------------------------- through `cloudai-nb kernel`


def cli_has_kernel_command() -> bool:
    """`cloudai-nb kernel` is wired into cloudai_nb/cli/main.py (asked the way the test calls it)."""
    done = subprocess.run(
        [sys.executable, "-m", "cloudai_nb", "kernel", "install", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode == 0


@pytest.mark.kernel
def test_cli_user_install_and_uninstall(tmp_path: Path) -> None:
    if not cli_has_kernel_command():
        pytest.skip("`cloudai-nb kernel` is not wired into cloudai_nb/cli/main.py yet")
    home = tmp_path / "home"
    home.mkdir()
    env = {**kernel_env(tmp_path), "HOME": str(home)}
    for var in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "XDG_DATA_HOME"):
        env.pop(var, None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cloudai_nb", "kernel", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    done = cli("install", "--user", "--name", "cloudai-test")
    assert done.returncode == 0, done.stderr
    kernels = home / ".local" / "share" / "jupyter" / "kernels"
    assert str(kernels / "cloudai-test") in done.stdout
    assert installed_spec(kernels / "cloudai-test")["argv"][0] == sys.executable
    result = probe(tmp_path, "cloudai-test", env, kernel_dirs=[kernels])
    assert result["loaded"] is True

    bad = cli("install", "--user", "--sys-prefix")
    assert bad.returncode == 2  # argparse: mutually exclusive
    done = cli("uninstall", "--name", "cloudai-test")
    assert done.returncode == 0, done.stderr
    assert not (kernels / "cloudai-test").exists()
    again = cli("uninstall", "--name", "cloudai-test")
    assert again.returncode == 1
    assert again.stderr.startswith("cloudai-nb: error: no kernelspec named 'cloudai-test'")
