"""The job form: ipywidgets generated from a workload's ``cmd_args`` model.

Every input is made by one table from the field's kind (`WIDGETS`); all the logic (text to values,
errors per field, preview, TOML) lives in `cloudai_nb.api.forms.FormModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as widgets

from cloudai_nb.api.forms import FieldSpec, FormModel, format_value, steps_label
from cloudai_nb.api.run import Run
from cloudai_nb.api.session import Session
from cloudai_nb.core import registry
from cloudai_nb.core.errors import CloudAINbError
from cloudai_nb.core.models import TestDefinition

LAYOUT = widgets.Layout(width="420px")
STYLE = {"description_width": "160px"}


def _text(spec: FieldSpec, value: str) -> widgets.Widget:
    return widgets.Text(
        value=value, description=spec.name, placeholder=spec.help[:60], layout=LAYOUT, style=STYLE
    )


def _choice(spec: FieldSpec, value: str) -> widgets.Widget:
    # Text, not a dropdown: several choices separated by commas make a sweep; the help lists them
    hint = "one of: " + ", ".join(str(c) for c in spec.choices)
    return widgets.Combobox(
        value=value,
        options=[str(c) for c in spec.choices],
        ensure_option=False,
        description=spec.name,
        placeholder=hint[:60],
        layout=LAYOUT,
        style=STYLE,
    )


def _bool(spec: FieldSpec, value: str) -> widgets.Widget:
    return widgets.Checkbox(value=value == "True", description=spec.name, indent=False, style=STYLE)


def _table(spec: FieldSpec, value: str) -> widgets.Widget:
    return widgets.Textarea(
        value=value, description=spec.name, placeholder="KEY = VALUE per line", layout=LAYOUT, style=STYLE
    )


# kind of field -> the input that edits it
WIDGETS: dict[str, Callable[[FieldSpec, str], widgets.Widget]] = {
    "int": _text,
    "float": _text,
    "str": _text,
    "path": _text,
    "choice": _choice,
    "bool": _bool,
    "table": _table,
}


class JobForm:
    """Workload and system pickers, one input per field, Preview / Submit / Copy as TOML."""

    def __init__(
        self, session: Session, workload: str | None = None, *, test: TestDefinition | None = None
    ) -> None:
        self.session = session
        names = sorted(str(k) for k in registry.workloads)
        chosen = test.test_template_name if test is not None else (workload or "Sleep")
        if chosen not in names:
            raise CloudAINbError(f"unknown workload {chosen!r}; registered: {', '.join(names)}")
        self.workload_picker = widgets.Dropdown(
            options=names, value=chosen, description="workload", style=STYLE
        )
        self.system_picker = widgets.Dropdown(
            options=sorted(session.systems), value=session.system.name, description="system", style=STYLE
        )
        self.name_input = widgets.Text(description="name", layout=LAYOUT, style=STYLE)
        self.fields_box = widgets.VBox()
        self.run_box = widgets.VBox()
        self.steps = widgets.HTML()
        self.preview_button = widgets.Button(description="Preview", icon="eye")
        self.submit_button = widgets.Button(description="Submit", button_style="primary", icon="play")
        self.toml_button = widgets.Button(description="Copy as TOML", icon="code")
        self.output = widgets.HTML()
        self.run_area = widgets.VBox()
        self.runs: list[Run] = []
        self.inputs: dict[str, widgets.Widget] = {}
        self.errors: dict[str, widgets.HTML] = {}
        self.preview_button.on_click(lambda _: self.show_preview())
        self.submit_button.on_click(lambda _: self.submit())
        self.toml_button.on_click(lambda _: self.show_toml())
        self.workload_picker.observe(lambda change: self.load(FormModel(change["new"])), names="value")
        self.name_input.observe(lambda _: self.validate(), names="value")
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.workload_picker, self.system_picker]),
                self.name_input,
                self.fields_box,
                self.run_box,
                self.steps,
                widgets.HBox([self.preview_button, self.submit_button, self.toml_button]),
                self.output,
                self.run_area,
            ]
        )
        self.load(FormModel.from_test(test) if test is not None else FormModel(chosen))

    # -- building --------------------------------------------------------------------------------

    def load(self, model: FormModel) -> None:
        """Show ``model``'s fields (a new workload, or values from a test)."""
        self.model = model
        self.inputs, self.errors = {}, {}
        rows = [
            self._row(spec.name, WIDGETS[spec.kind](spec, model.texts[spec.name]), spec.help)
            for spec in model.specs
        ]
        self.fields_box.children = rows
        run_specs = [
            FieldSpec("num_nodes", "int", 1, "nodes per job; a list sweeps", minimum=1),
            FieldSpec(
                "time_limit",
                "str",
                None,
                "Slurm time limit, e.g. 30 or 1:00:00",
                optional=True,
                sweepable=False,
            ),
            FieldSpec("iterations", "int", 1, "times to run, one after another", minimum=1, sweepable=False),
            FieldSpec("extra_env_vars", "table", {}, "environment variables, KEY = VALUE per line"),
        ]
        self.run_box.children = [
            self._row(spec.name, WIDGETS[spec.kind](spec, model.run_texts[spec.name]), spec.help, run=True)
            for spec in run_specs
        ]
        self.name_input.value = model.name
        self.validate()

    def _row(self, name: str, widget: widgets.Widget, help_text: str, run: bool = False) -> widgets.Widget:
        self.inputs[name] = widget
        error = widgets.HTML()
        self.errors[name] = error
        widget.observe(lambda _: self._changed(name, run), names="value")
        widget.tooltip = help_text
        return widgets.VBox([widget, widgets.HTML(f"<small>{escape(help_text)}</small>"), error])

    # -- reacting --------------------------------------------------------------------------------

    def _changed(self, name: str, run: bool) -> None:
        widget = self.inputs[name]
        text = str(widget.value)
        if run:
            self.model.run_texts[name] = text
        else:
            self.model.texts[name] = text
        self.validate()

    def validate(self) -> bool:
        """Show each error next to its field; Submit only while the form is valid."""
        self.model.name = self.name_input.value.strip() or self.model.name
        result = self.model.result()
        for name, box in self.errors.items():
            message = result.errors.get(name)
            box.value = f'<span style="color:#c62828">{escape(message)}</span>' if message else ""
        unknown = {k: v for k, v in result.errors.items() if k not in self.errors}
        self.steps.value = (
            f"<b>{steps_label(result)}</b>"
            if result.ok
            else '<span style="color:#c62828">'
            + escape("; ".join(f"{k}: {v}" for k, v in unknown.items()) or "fix the fields in red")
            + "</span>"
        )
        self.submit_button.disabled = not result.ok
        self.preview_button.disabled = not result.ok
        self.toml_button.disabled = not result.ok
        return result.ok

    def _system(self) -> Any:
        return self.session.systems[self.system_picker.value]

    def show_preview(self) -> str:
        text = self.model.preview(self._system())
        self.output.value = f"<pre>{escape(text)}</pre>"
        return text

    def show_toml(self) -> str:
        text = self.model.toml()
        self.output.value = f"<pre>{escape(text)}</pre>"
        return text

    def submit(self) -> Run | None:
        if not self.validate():
            return None
        from cloudai_nb.notebook.view import view_of

        run = self.session.run(self.model.scenario(), system=self.system_picker.value)
        self.runs.append(run)
        self.run_area.children = (*self.run_area.children, view_of(run).widget)
        return run

    def set(self, name: str, value: Any) -> None:
        """Set a field as a user would (tests, and pre-filling from code)."""
        widget = self.inputs[name]
        if isinstance(value, bool) or isinstance(widget, widgets.Checkbox):
            widget.value = bool(value)
            return
        spec = next((s for s in self.model.specs if s.name == name), None)
        widget.value = format_value(spec, value) if spec is not None else _text_of(value)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _text_of(value: Any) -> str:
    """A run field's value as form text (``[1, 2]`` -> ``1, 2``; a table as KEY = VALUE lines)."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k} = {v}" for k, v in value.items())
    return "" if value is None else str(value)


def form(
    session: Session,
    workload: str | None = None,
    *,
    test: TestDefinition | None = None,
    run: Run | None = None,
) -> JobForm:
    """A job form for ``workload``, or pre-filled from a test definition or a finished run."""
    if run is not None:
        first = run.jobs[0].test_run if run.jobs else None
        if first is None:
            raise CloudAINbError(f"run {run.path.name} has no jobs to copy")
        original = run.scenario_run.scenario.get(first.id)
        built = JobForm(session, test=original.test)
        built.load(FormModel.from_test(original.test, original))
        return built
    return JobForm(session, workload, test=test)
