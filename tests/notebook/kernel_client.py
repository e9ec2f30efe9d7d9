"""A real IPython kernel driven over jupyter_client, as a notebook frontend would."""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class Reply:
    status: str
    stdout: str = ""
    stderr: str = ""
    errors: list[str] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class Kernel:
    def __init__(self, cwd: str, kernel_name: str = "python3", extra_args: list[str] | None = None) -> None:
        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel(cwd=cwd, extra_arguments=extra_args or [])
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.idle_messages: list[dict[str, Any]] = []

    def execute(self, code: str, timeout: float = 60) -> Reply:
        started = time.monotonic()
        msg_id = self.kc.execute(code)
        reply = Reply("ok")
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                self.idle_messages.append(msg)
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    reply.stdout += content["text"]
                else:
                    reply.stderr += content["text"]
            elif kind == "error":
                reply.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind in ("execute_result", "display_data"):
                reply.data.append(content["data"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        shell = self.kc.get_shell_msg(timeout=timeout)
        reply.status = shell["content"]["status"]
        reply.seconds = time.monotonic() - started
        return reply

    def ok(self, code: str, timeout: float = 60) -> Reply:
        reply = self.execute(code, timeout)
        assert reply.status == "ok" and not reply.errors, (reply.errors, reply.stderr)
        return reply

    def collect_idle(self, seconds: float) -> list[dict[str, Any]]:
        """iopub messages that arrive while no cell runs (widget updates from the event loop)."""
        deadline = time.monotonic() + seconds
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                found.append(self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        return found

    def restart(self) -> None:
        self.km.restart_kernel(now=True)
        self.kc.wait_for_ready(timeout=60)
        self.drain()

    def drain(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                return

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
