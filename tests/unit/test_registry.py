from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from cloudai_nb.core import config, registry
from cloudai_nb.core.errors import RegistryError
from cloudai_nb.core.models import CmdArgs, TestDefinition
from cloudai_nb.core.registry import Registry
from cloudai_nb.core.system import StandaloneSystem


class Base:
    pass


class Child(Base):
    pass


class GrandChild(Child):
    pass


def test_register_get_and_decorator():
    reg: Registry[str, object] = Registry("thing")
    reg.register("a", 1)

    @reg.register("b")
    class B:
        pass

    assert reg.get("a") == 1
    assert reg.get("b") is B
    assert set(reg) >= {"a", "b"}


def test_duplicate_raises_unless_replace():
    reg: Registry[str, int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match=r"thing 'a' is already registered.*replace=True"):
        reg.register("a", 2)
    reg.register("a", 2, replace=True)
    assert reg.get("a") == 2


def test_missing_key_lists_registered_and_suggests():
    reg: Registry[str, int] = Registry("workload")
    reg.register("Sleep", 1)
    reg.register("NcclTest", 2)
    with pytest.raises(RegistryError) as err:
        reg.get("Slep")
    assert "did you mean 'Sleep'" in str(err.value)
    assert "registered: NcclTest, Sleep" in str(err.value)


def test_subclass_aware_lookup_prefers_closest():
    reg: Registry[tuple[type, type], str] = Registry("command builder")
    reg.register((Base, Base), "generic")
    reg.register((Child, Base), "child-system")
    reg.register((Base, Child), "child-workload")
    assert reg.get((GrandChild, Base)) == "child-system"
    assert reg.get((Base, GrandChild)) == "child-workload"
    # equal distance: the system (first element) wins
    assert reg.get((Child, Child)) == "child-system"
    with pytest.raises(RegistryError):
        reg.get((int, Base))


def test_builtins_are_registered():
    assert {"Sleep", "BashCmd", "NcclTest", "Fio"} <= set(registry.workloads)
    assert {"standalone", "slurm"} <= set(registry.systems)


class EchoArgs(CmdArgs):
    text: str = Field(default="hi", description="What to echo.")


class EchoTest(TestDefinition):
    test_template_name: Literal["Echo"] = "Echo"
    cmd_args: EchoArgs = Field(default_factory=EchoArgs)


class MyStandalone(StandaloneSystem):
    """A replacement standalone system with one more setting."""

    greeting: str = "hello"


def test_user_registers_workload_and_replaces_system(monkeypatch):
    monkeypatch.setattr(registry.workloads, "_items", dict(registry.workloads._items))
    monkeypatch.setattr(registry.systems, "_items", dict(registry.systems._items))

    registry.workloads.register("Echo", EchoTest)
    test = config.test_from_dict(
        {"name": "e", "test_template_name": "Echo", "cmd_args": {"text": ["a", "b"]}}
    )
    assert isinstance(test, EchoTest)
    assert test.sweep == {"text": ["a", "b"]}

    with pytest.raises(RegistryError):
        registry.systems.register("standalone", MyStandalone)
    registry.systems.register("standalone", MyStandalone, replace=True)
    system = config.system_from_dict({"name": "x", "scheduler": "standalone", "greeting": "hey"})
    assert isinstance(system, MyStandalone)
    assert system.greeting == "hey"


def test_broken_plugin_is_reported_not_fatal(monkeypatch, caplog):
    class BrokenEntryPoint:
        name = "broken"
        value = "nowhere:hook"

        def load(self):
            raise ImportError("No module named 'nowhere'")

    import importlib.metadata

    monkeypatch.setattr(registry, "_plugin_state", "unloaded")
    monkeypatch.setattr(registry, "plugin_errors", [])
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [BrokenEntryPoint()])
    for reg in vars(registry).values():
        if isinstance(reg, Registry):
            monkeypatch.setattr(reg, "_items", {})
    assert "Sleep" in registry.workloads  # built-ins still load
    assert len(registry.plugin_errors) == 1
    assert "plugin 'broken' (nowhere:hook) failed to load" in registry.plugin_errors[0]
    assert "No module named 'nowhere'" in caplog.text
