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


def form(workload: str | None = None, system: str | None = None, *, test: Any = None, run: Any = None) -> Any:
    """``cloudai_nb.form()``: a job form in the notebook's session (see `%cloudai_form`)."""
    from IPython import get_ipython

    from cloudai_nb.api.session import Session
    from cloudai_nb.notebook.job_form import form as make_form

    shell = get_ipython()
    session = shell.user_ns.get("cloudai_session") if shell is not None else None
    if not isinstance(session, Session):
        session = Session()
    if system:
        session.use_system(system)
    return make_form(session, workload, test=test, run=run)
