"""sbatch scripts as golden files: regenerate with CLOUDAI_NB_UPDATE_GOLDEN=1 and review the diff."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from cloudai_nb.core import config
from cloudai_nb.core.errors import SubmissionError
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.engine.scenario_run import plan_jobs
from cloudai_nb.systems.slurm import nodes
from cloudai_nb.systems.slurm.backend import SlurmBackend
from cloudai_nb.systems.slurm.sbatch import dependency_option, env_file, sbatch_argv, sbatch_script

GOLDEN = Path(__file__).parent.parent / "golden"
RUN_DIR = Path("/runs/demo_2026-01-01_00-00-00")

SYSTEM = {
    "name": "golden",
    "scheduler": "slurm",
    "install_path": "/opt/install",
    "output_path": "/runs",
    "default_partition": "batch",
    "account": "bench",
    "gpus_per_node": 8,
    "ntasks_per_node": 8,
    "mpi": "pmix",
    "extra_sbatch_args": ["--exclusive", "--mem=0"],
    "extra_srun_args": "--cpu-bind=none",
    "global_env_vars": {"NCCL_IB_TIMEOUT": "20"},
    "partitions": [{"name": "batch", "groups": [{"name": "g1", "nodes": ["node-[001-004]"]}]}],
}


def job_for(scenario_toml: str, index: int = 0):
    system = config.system_from_dict(SYSTEM)
    assert isinstance(system, SlurmSystem)
    scenario = config.scenario_from_dict(config.parse_toml(scenario_toml))
    return system, plan_jobs(scenario, RUN_DIR)[index]


def render(scenario_toml: str, live: dict[str, str] | None = None) -> str:
    system, job = job_for(scenario_toml)
    run = job.test_run
    request = nodes.resolve(system, job.num_nodes, run.nodes, run.exclude_nodes, live=live)
    spec = SlurmBackend(system).spec(job, request)
    return sbatch_script(spec) + "\n# ---- env_vars.sh ----\n" + env_file(spec.env)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CLOUDAI_NB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; set CLOUDAI_NB_UPDATE_GOLDEN=1 to accept"


def test_nccl_in_a_container_on_two_nodes():
    check_golden(
        "sbatch_nccl.sh",
        render(
            """
            name = "demo"
            [[Tests]]
            id = "nccl"
            test_template_name = "NcclTest"
            num_nodes = 2
            time_limit = "00:20:00"
            extra_env_vars = {NCCL_DEBUG = "INFO"}
            [Tests.cmd_args]
            docker_image_url = "nvcr.io/nvidia/pytorch:24.02-py3"
            minbytes = "1M"
            maxbytes = "1G"
            """
        ),
    )


def test_group_nodes_picked_idle_first_and_excluded():
    check_golden(
        "sbatch_group.sh",
        render(
            """
            name = "demo"
            [[Tests]]
            id = "nap"
            test_template_name = "Sleep"
            nodes = ["batch:g1:2"]
            exclude_nodes = ["node-001"]
            """,
            live={"node-001": "idle", "node-002": "allocated", "node-003": "idle", "node-004": "down"},
        ),
    )


def test_injection_stays_inert(tmp_path):
    """A hostile argument reaches the script only as quoted text: bash -n parses, echo prints it."""
    hostile = '"; rm -rf ~; echo "$(touch pwned)'
    text = render(
        f"""
        name = "demo"
        [[Tests]]
        id = "x"
        test_template_name = "BashCmd"
        extra_env_vars = {{EVIL = {hostile!r}}}
        [Tests.cmd_args]
        cmd = {hostile!r}
        """.replace("'", "'''")
    )
    script = text.split("# ---- env_vars.sh ----")[0]
    env = text.split("# ---- env_vars.sh ----\n")[1]
    assert f"export EVIL={shlex.quote(hostile)}" in env
    assert shlex.join(["bash", "-c", hostile]) in script
    (tmp_path / "env.sh").write_text(env)
    out = subprocess.run(
        ["bash", "-c", f'source {tmp_path / "env.sh"}; printf %s "$EVIL"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert out.stdout == hostile
    assert not (tmp_path / "pwned").exists()
    subprocess.run(["bash", "-n", "-c", script], check=True)


def test_a_directive_value_with_a_quote_is_refused():
    system, job = job_for(
        """
        name = "demo"
        [[Tests]]
        id = "x"
        test_template_name = "Sleep"
        time_limit = "10"
        """
    )
    spec = SlurmBackend(system).spec(job, nodes.NodeRequest(1))
    bad = spec.__class__(**{**spec.__dict__, "account": 'a"b'})
    with pytest.raises(SubmissionError, match="contains a quote"):
        sbatch_script(bad)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["batch:g1:5"], "group g1 has 4 node(s): node-001, node-002, node-003, node-004"),
        (["batch:nope:1"], "unknown group 'nope' in partition batch; groups: g1"),
        (["bach:g1:1"], "unknown partition 'bach' (did you mean 'batch'?)"),
        (
            ["node-009"],
            "node(s) node-009 do not exist; the cluster has: node-001, node-002, node-003, node-004",
        ),
    ],
)
def test_impossible_node_requests_are_refused_naming_what_exists(spec, message):
    system = config.system_from_dict(SYSTEM)
    live = {f"node-00{i}": "idle" for i in range(1, 5)}
    with pytest.raises(SubmissionError) as err:
        nodes.resolve(system, 1, spec, [], live=live)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_too_many_nodes_for_the_partition():
    system = config.system_from_dict(SYSTEM)
    with pytest.raises(SubmissionError, match="num_nodes = 3, but the partition has 2 usable node"):
        nodes.resolve(system, 3, [], [], live={"c1": "idle", "c2": "idle"})  # type: ignore[arg-type]


def test_what_a_job_waits_for_becomes_one_dependency_option():
    after = [("ended", "12"), ("started", "10"), ("ended", "13"), ("succeeded", "9")]
    assert dependency_option(after) == "afterany:12:13,after:10,afterok:9"
    assert dependency_option([]) is None
    assert sbatch_argv(Path("/r/s.sh"), "afterok:9") == [
        "sbatch",
        "--parsable",
        "--dependency=afterok:9",
        "--kill-on-invalid-dep=yes",  # a dependency that can never be met ends the job
        "/r/s.sh",
    ]
    assert sbatch_argv(Path("/r/s.sh")) == ["sbatch", "--parsable", "/r/s.sh"]
