"""The public surface: what `import cloudai_nb` promises, and that it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import cloudai_nb


def test_exported_members_exist():
    for name in cloudai_nb.__all__:
        assert getattr(cloudai_nb, name) is not None, name


def test_import_loads_neither_pydantic_pandas_nor_ipython():
    code = "import sys, cloudai_nb; print(sorted(m for m in ('pydantic', 'pandas', 'IPython', 'ipywidgets') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_is_the_api_run():
    from cloudai_nb.api import run

    assert cloudai_nb.run is run
