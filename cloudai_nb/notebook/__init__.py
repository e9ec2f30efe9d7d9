"""The IPython extension: ``%load_ext cloudai_nb`` adds the ``%cloudai_*`` magics and the live view."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(ipython: Any) -> None:
    from cloudai_nb.api.driver import engine
    from cloudai_nb.api.run import Run
    from cloudai_nb.notebook.magics import CloudAIMagics
    from cloudai_nb.notebook.view import run_mimebundle

    # In a kernel the engine thread must not hold up a restart; the ledger keeps the runs.
    engine.daemon = True
    magics = CloudAIMagics(ipython)
    ipython.register_magics(magics)
    ipython.display_formatter.mimebundle_formatter.for_type(Run, run_mimebundle)
    ipython.user_ns.setdefault("cloudai_session", magics.session)


def unload_ipython_extension(ipython: Any) -> None:
    from cloudai_nb.api.run import Run
    from cloudai_nb.notebook.magics import CloudAIMagics

    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        for name in [n for n in manager.magics[kind] if n.startswith("cloudai_")]:
            del manager.magics[kind][name]
    manager.registry.pop(CloudAIMagics.__name__, None)
    ipython.display_formatter.mimebundle_formatter.pop(Run, None)
