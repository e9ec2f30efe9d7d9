"""``cloudai-nb kernel install|uninstall``: the "Python 3 (CloudAI)" Jupyter kernelspec.

Its kernels start with ``--ext=cloudai_nb``, so the ``%cloudai_*`` magics exist in every notebook
that uses it, without ``%load_ext cloudai_nb``. The spec lives in ``kernel_ext/cloudai/kernel.json``
of a checkout (its ``{python}`` is replaced by this interpreter at install time); an installed
package without the checkout uses the same spec, embedded below. Where it goes follows
``python -m ipykernel install``: system-wide by default, ``--user``, ``--sys-prefix`` or ``--prefix``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from cloudai_nb.core.errors import CloudAINbError

KERNEL_NAME = "cloudai"
DISPLAY_NAME = "Python 3 (CloudAI)"
PYTHON_PLACEHOLDER = "{python}"
# kernel_ext/ next to the package in a checkout (an editable install, binder, CI).
SPEC_SOURCE = Path(__file__).resolve().parents[2] / "kernel_ext" / KERNEL_NAME
# The same as kernel_ext/cloudai/kernel.json (a test keeps them equal).
EMBEDDED_SPEC: dict[str, Any] = {
    "argv": [
        PYTHON_PLACEHOLDER,
        "-Xfrozen_modules=off",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
        "--ext=cloudai_nb",
    ],
    "display_name": DISPLAY_NAME,
    "language": "python",
    "metadata": {"debugger": True},
}
LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")
_VALID_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)  # jupyter_client's rule


class KernelSpecError(CloudAINbError):
    """The kernelspec could not be installed or removed."""


def kernel_spec(python: str | None = None, display_name: str | None = None) -> dict[str, Any]:
    """The kernel.json to install: ``{python}`` replaced by ``python`` (default: this interpreter)."""
    source = SPEC_SOURCE / "kernel.json"
    spec: dict[str, Any] = (
        json.loads(source.read_text()) if source.is_file() else json.loads(json.dumps(EMBEDDED_SPEC))
    )
    python = python or sys.executable
    spec["argv"] = [python if arg == PYTHON_PLACEHOLDER else arg for arg in spec["argv"]]
    if display_name:
        spec["display_name"] = display_name
    return spec


def _logo_dirs() -> list[Path]:
    dirs = [SPEC_SOURCE]
    # ipykernel's own logos, found without importing ipykernel (the cli layer must not).
    found = importlib.util.find_spec("ipykernel")
    if found is not None and found.submodule_search_locations:
        dirs += [Path(location) / "resources" for location in found.submodule_search_locations]
    return dirs


def _check_name(name: str) -> str:
    if not _VALID_NAME.match(name):
        raise KernelSpecError(f"invalid kernel name {name!r}: use letters, digits, '.', '_' and '-' only")
    return name.lower()


def install(args: argparse.Namespace) -> int:
    """Install the kernelspec; print where it went."""
    from jupyter_client.kernelspec import KernelSpecManager

    name = _check_name(getattr(args, "name", None) or KERNEL_NAME)
    user = bool(getattr(args, "user", False))
    prefix: str | None = getattr(args, "prefix", None)
    if getattr(args, "sys_prefix", False):
        prefix = sys.prefix
    if user and prefix:
        raise KernelSpecError("choose one of --user, --sys-prefix and --prefix")
    spec = kernel_spec(display_name=getattr(args, "display_name", None))
    with tempfile.TemporaryDirectory(prefix="cloudai-kernelspec-") as tmp:
        staged = Path(tmp) / name
        staged.mkdir()
        (staged / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in LOGOS:
            for folder in _logo_dirs():
                if (folder / logo).is_file():
                    shutil.copyfile(folder / logo, staged / logo)
                    break
        try:
            destination = KernelSpecManager().install_kernel_spec(
                str(staged), kernel_name=name, user=user, prefix=prefix
            )
        except OSError as exc:
            hint = "" if user or prefix else "; try --user or --sys-prefix"
            raise KernelSpecError(
                f"cannot install kernelspec {name!r}: {exc.strerror or exc} ({exc.filename or '?'}){hint}"
            ) from exc
    print(f"installed kernelspec {name!r} ({spec['display_name']}) in {destination}")
    print(f"its kernels run {spec['argv'][0]} and load cloudai_nb at start (no %load_ext needed)")
    return 0


def uninstall(args: argparse.Namespace) -> int:
    """Remove an installed kernelspec by name (wherever Jupyter finds it)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = _check_name(getattr(args, "name", None) or KERNEL_NAME)
    manager = KernelSpecManager()
    try:
        removed = manager.remove_kernel_spec(name)
    except (KeyError, NoSuchKernel) as exc:
        installed = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise KernelSpecError(f"no kernelspec named {name!r} (installed: {installed})") from exc
    except OSError as exc:
        raise KernelSpecError(f"cannot remove kernelspec {name!r}: {exc.strerror or exc}") from exc
    print(f"removed kernelspec {name!r} from {removed}")
    return 0
