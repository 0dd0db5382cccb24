"""Run the real Pulumi program in-process under SDK mocks, as `pulumi preview` would run it.

Runtime state in the SDK is global: run one stack per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import runpy
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func

from meridian.engine.mocks import MeridianMocks, UnknownStackReference
from meridian.engine.recorder import REDACTED, RecordingMonitor, Registration, is_resource
from meridian.errors import ProgramFailed
from stackconfig import Overrides, engine_config, memory, zone

PROJECT = "meridian"
ORGANIZATION = "organization"
PLATFORM_KEY = "meridian:platform"  # a cell stack's config names its platform  # what a self-managed backend names every stack's organization
# Packages the program imports from its own directory (meridian itself imports some of them too).
PROGRAM_PACKAGES = ("components", "stackconfig", "service")


@dataclass
class ProgramRun:
    stack: str
    resource_count: int
    seconds: float
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    wire_outputs: dict[str, Any] = field(default_factory=dict)
    """The outputs as the engine keeps them in the stack's state (unknowns as its sentinel, secrets
    still secret): what another stack's StackReference reads."""
    stacks_read: list[str] = field(default_factory=list)  # the stacks its StackReferences named (qualified)
    revealed: dict[str, Any] = field(default_factory=dict)  # the outputs asked for by `reveal`, secrets in clear


async def _resolve(value: Any) -> Any:
    out = pulumi.Output.from_input(value)
    if await out.is_secret():
        return REDACTED
    if not await out.is_known():
        return None
    return await out.future()


def run_program(
    project_dir: Path,
    stack: str,
    *,
    record: bool = True,
    on_register=None,
    overrides: Overrides | None = None,
    first_preview: bool = False,
    stack_outputs: Mapping[str, dict[str, Any]] | None = None,
    reveal: Sequence[str] = (),
) -> ProgramRun:
    """Run `__main__.py` of `project_dir` for `stack`; with `record`, keep every registration.
    `first_preview`: computed outputs of resources being created are unknown, as in a first `pulumi preview`.
    `stack_outputs`: stack name -> its `wire_outputs`, what the program's StackReferences read
    (default: a cell's platform's, from a run of it in a process of its own: `referenced_outputs`).
    `reveal`: exported outputs to return in clear (`ProgramRun.revealed`), secrets too: the event
    loop their values resolve on is closed when this returns."""
    config = engine_config(project_dir, stack, overrides)
    if stack_outputs is None:  # a cell reads its platform's outputs: previewed first, in a process of its own
        stack_outputs = referenced_outputs(project_dir, config.get(PLATFORM_KEY), first_preview=first_preview)
    with program_loop() as loop:
        return _run(project_dir, stack, config, loop, record, on_register, first_preview, stack_outputs, reveal)


def _run(
    project_dir: Path,
    stack: str,
    config: dict[str, str],
    loop: asyncio.AbstractEventLoop,
    record: bool,
    on_register: Any,
    first_preview: bool,
    stack_outputs: Mapping[str, dict[str, Any]],
    reveal: Sequence[str],
) -> ProgramRun:
    pulumi.runtime.set_all_config(config)
    references = {qualified(name): outputs for name, outputs in (stack_outputs or {}).items()}
    mocks = MeridianMocks(config.get("aws:region"), first_preview=first_preview, stack_outputs=references)
    monitor: MockMonitor = RecordingMonitor(mocks, on_register) if record else _CountingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=monitor, organization=ORGANIZATION)

    os.chdir(project_dir)
    held, known = memory.held(), zone.known_entries()
    use_project_modules(project_dir)
    if held:  # stack files held in memory (a zone's synthetic cells): the program's own stackconfig reads them too
        importlib.import_module("stackconfig.memory").hold(held)

    def program() -> None:
        _program_learns(known)
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    started = time.perf_counter()
    try:
        loop.run_until_complete(run_pulumi_func(program))
    except pulumi.RunError as exc:
        raise ProgramFailed(f"the program stopped: {exc}") from None
    except UnknownStackReference as exc:
        raise ProgramFailed(f"stack {stack}: {exc}") from None
    except Exception as exc:  # the program's own bug: report it as the engine would
        raise ProgramFailed(f"the program raised {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - started

    root = pulumi.runtime.settings.get_root_resource()
    exported = root.outputs if root else {}
    wire = MessageToDict(loop.run_until_complete(rpc.serialize_properties(exported, {})))
    revealed = {k: loop.run_until_complete(pulumi.Output.from_input(exported[k]).future()) for k in reveal}
    if not record:
        return ProgramRun(stack, monitor.count, seconds, wire_outputs=wire, stacks_read=mocks.stacks_read, revealed=revealed)
    outputs = {k: loop.run_until_complete(_resolve(v)) for k, v in exported.items()}
    regs = monitor.registrations
    count = sum(is_resource(r.type, r.custom) for r in regs)
    return ProgramRun(stack, count, seconds, regs, outputs, wire, stacks_read=mocks.stacks_read, revealed=revealed)


def _program_learns(known: zone.KnownEntries) -> None:
    """The program's own `stackconfig` (imported from its project) takes the zone's stack files this
    process has read (stackconfig.zone.learn), so its zone check does not parse them again. A project
    whose `stackconfig` cannot take them (a base commit from before it could) reads them itself."""
    if not known[1]:
        return
    try:
        program_zone = importlib.import_module("stackconfig.zone")
    except ModuleNotFoundError as exc:
        if exc.name not in ("stackconfig", "stackconfig.zone"):
            raise
        return
    learn = getattr(program_zone, "learn", None)
    if learn is not None:
        learn(known)


@contextlib.contextmanager
def program_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The event loop a program runs on, closed afterwards with every loop made for it.

    The SDK's mock monitor registers each resource on a thread of the loop's default executor and
    gives each such thread an event loop of its own (`pulumi.runtime.sync_await._ensure_event_loop`),
    which nothing closes: left to the garbage collector, each unclosed loop (and its self-pipe
    sockets) is a `ResourceWarning` from `BaseEventLoop.__del__`, printed as "Exception ignored" on
    stderr whenever the collector runs late (at a worker process's exit, under load). So the
    executor's threads get their loop here, from its initializer, and every one is closed once the
    executor has shut down, after the main loop is wound down as `asyncio.run` does it."""
    thread_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def thread_loop() -> None:
        own = asyncio.new_event_loop()
        asyncio.set_event_loop(own)
        with lock:
            thread_loops.append(own)

    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="program", initializer=thread_loop))
    asyncio.set_event_loop(loop)
    try:
        yield loop
    finally:
        try:
            _cancel_pending(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # joins its threads
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            for own in thread_loops:
                own.close()


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the program left running (a failed program leaves its registrations' tasks) and
    let each finish its cancellation, as `asyncio.run` does before it closes its loop."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def qualified(stack: str) -> str:
    """A stack's name as a StackReference in this project names it (`organization/meridian/us`)."""
    return stack if "/" in stack else f"{ORGANIZATION}/{PROJECT}/{stack}"


def stack_wire_outputs(project_dir: Path, stack: str, *, first_preview: bool = False) -> dict[str, Any]:
    """Run `stack` bare and return its outputs as its state would hold them. Runs in a process of its
    own (`referenced_outputs`): the SDK's runtime state is global, one stack per process."""
    return run_program(project_dir, stack, record=False, first_preview=first_preview).wire_outputs


def use_project_modules(project_dir: Path) -> None:
    """Make the program import `components` (and `stackconfig`, `service`) from `project_dir`, as `pulumi` run
    there would: first on the path, and any copy already imported from elsewhere (meridian imports
    `stackconfig` itself) forgotten, or a copied project would run this checkout's components."""
    project = project_dir.resolve()
    while str(project) in sys.path:
        sys.path.remove(str(project))
    sys.path.insert(0, str(project))
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in PROGRAM_PACKAGES:
            continue
        origin = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", []) or []), None)
        if origin is None or not Path(origin).resolve().is_relative_to(project):
            del sys.modules[name]


class _CountingMonitor(MockMonitor):
    """The bare floor: plain mock monitor, counting custom resources and nothing more."""

    def __init__(self, mocks: Any):
        super().__init__(mocks)
        self.count = 0

    def RegisterResource(self, request: Any) -> Any:
        if is_resource(request.type, request.custom):
            self.count += 1
        return super().RegisterResource(request)


def platform_context(
    project_dir: Path, platform: str, *, first_preview: bool = False
) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    """A cell's platform previewed in a process of its own and recorded: the outputs the cell's
    StackReference reads (`referenced_outputs`) and, from the same run, the platform's resources as
    the pack sees them (policy `Subject`s), for the cell's stack rules to judge beside its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            outputs, subjects = pool.submit(_recorded, project_dir, platform, first_preview=first_preview).result()
        except ProgramFailed as exc:
            raise ProgramFailed(f"platform stack {platform} (previewed first, for its outputs and resources): {exc}") from None
    return {platform: outputs}, subjects


def _recorded(project_dir: Path, stack: str, *, first_preview: bool) -> tuple[dict[str, Any], list[Any]]:
    from meridian.engine.policy.wire import Subject

    run = run_program(project_dir, stack, record=True, first_preview=first_preview)
    return run.wire_outputs, [Subject.from_registration(r) for r in run.registrations]


def referenced_outputs(project_dir: Path, platform: str | None, *, first_preview: bool = False) -> dict[str, dict[str, Any]]:
    """The outputs a stack's StackReferences read: a cell's platform's, from a run of the platform in
    a process of its own (the SDK's runtime state is global: one stack per process), as its state
    would hold them (unknowns stay unknown); nothing for a platform stack."""
    if platform is None:
        return {}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            outputs = pool.submit(stack_wire_outputs, project_dir, platform, first_preview=first_preview).result()
        except ProgramFailed as exc:
            raise ProgramFailed(f"platform stack {platform} (previewed first, for its outputs): {exc}") from None
    return {platform: outputs}
