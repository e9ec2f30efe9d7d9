"""Which nodes a job asks for: counts, node lists and ``PARTITION:GROUP:N`` picked from live state."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cloudai_nb.core.errors import SubmissionError, did_you_mean
from cloudai_nb.core.nodelist import expand, node_sort_key
from cloudai_nb.core.system import SlurmSystem

GROUP_SPEC = re.compile(r"^(?P<partition>[^:\s]+):(?P<group>[^:\s]+):(?P<count>\d+|max_avail)$")

# Node states (sinfo %T) in the order they are preferred; others are not picked.
PREFERENCE = ("idle", "mixed", "completing", "allocated")


@dataclass(frozen=True)
class NodeRequest:
    """What the sbatch script asks for: a count, or an explicit list (and nodes to avoid)."""

    num_nodes: int
    nodelist: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    partition: str | None = None


def parse_sinfo_nodes(text: str) -> dict[str, str]:
    """``sinfo -h -N -o '%N|%T'`` -> ``{node: state}`` (one line per node and partition)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, state = line.strip().partition("|")
        if sep and name:
            states[name] = state.rstrip("*~#!%$@^-").lower()
    return states


def parse_sinfo_partitions(text: str) -> dict[str, dict[str, str]]:
    """``sinfo -h -N -o '%N|%T|%R'`` -> ``{partition: {node: state}}``."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0]:
            found.setdefault(parts[2], {})[parts[0]] = parts[1].rstrip("*~#!%$@^-").lower()
    return found


def needs_live_state(nodes: list[str]) -> bool:
    return any(GROUP_SPEC.match(spec) for spec in nodes)


def resolve(
    system: SlurmSystem,
    num_nodes: int,
    nodes: list[str],
    exclude: list[str],
    live: dict[str, str] | None = None,
) -> NodeRequest:
    """Turn a test run's node settings into a request, checking them against what exists.

    ``live`` maps node names to their current state (from `parse_sinfo_nodes`); without it (a dry
    run) group specs take the group's first nodes in name order.
    """
    excluded: list[str] = []
    for spec in exclude:
        excluded += expand(spec)
    chosen: list[str] = []
    partition: str | None = None
    for spec in nodes:
        match = GROUP_SPEC.match(spec)
        if not match:
            chosen += expand(spec)
            continue
        partition = match["partition"]
        members = _group_members(system, match["partition"], match["group"])
        candidates = [n for n in members if n not in excluded and n not in chosen]
        if live is not None:
            ready = [n for n in candidates if live.get(n) in PREFERENCE]
            ready.sort(key=lambda n: (PREFERENCE.index(live[n]), node_sort_key(n)))
        else:
            ready = sorted(candidates, key=node_sort_key)
        if match["count"] == "max_avail":
            idle = [n for n in ready if live is None or live.get(n) == "idle"]
            if not idle:
                raise SubmissionError(
                    f"{spec}: no idle node in group {match['group']} ({', '.join(members)})"
                )
            chosen += idle
            continue
        count = int(match["count"])
        if count > len(members):
            raise SubmissionError(
                f"{spec}: group {match['group']} has {len(members)} node(s): {', '.join(members)}"
            )
        if count > len(ready):
            raise SubmissionError(
                f"{spec}: only {len(ready)} of the group's {len(members)} nodes are up: {', '.join(ready) or 'none'}"
            )
        chosen += ready[:count]
    if live is not None:
        unknown = [n for n in chosen if n not in live]
        if unknown:
            raise SubmissionError(
                f"node(s) {', '.join(unknown)} do not exist; the cluster has: {', '.join(sorted(live, key=node_sort_key))}"
            )
    if chosen:
        return NodeRequest(len(chosen), tuple(chosen), tuple(excluded), partition)
    if live is not None:
        usable = [n for n in live if n not in excluded]
        if num_nodes > len(usable):
            raise SubmissionError(
                f"num_nodes = {num_nodes}, but the partition has {len(usable)} usable node(s): "
                + ", ".join(sorted(usable, key=node_sort_key))
            )
    return NodeRequest(num_nodes, (), tuple(excluded), partition)


def _group_members(system: SlurmSystem, partition_name: str, group_name: str) -> list[str]:
    partition = system.partition(partition_name)
    if partition is None:
        names = [p.name for p in system.partitions]
        raise SubmissionError(
            f"unknown partition {partition_name!r}{did_you_mean(partition_name, names)}; "
            f"the system has: {', '.join(names) or 'none'}"
        )
    group = next((g for g in partition.groups if g.name == group_name), None)
    if group is None:
        names = [g.name for g in partition.groups]
        raise SubmissionError(
            f"unknown group {group_name!r}{did_you_mean(group_name, names)} in partition {partition_name}; "
            f"groups: {', '.join(names) or 'none'}"
        )
    members: list[str] = []
    for spec in group.nodes:
        members += expand(spec)
    return members
