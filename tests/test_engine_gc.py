"""The program's heap is frozen for the cyclic GC while the plan is built from it, and only then
(engine.pipeline._program_heap_frozen): every later collection walks it again, also after an error."""

from __future__ import annotations

import gc
import weakref

import pytest

from meridian.engine import pipeline
from meridian.engine.run import ProgramRun


@pytest.fixture(autouse=True)
def _nothing_frozen_before():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_plan_is_built_with_the_program_heap_frozen_and_it_is_thawed_after(monkeypatch):
    seen = {}
    program_object = {"made by": "the program"}  # tracked by the GC: frozen with the rest
    monkeypatch.setattr(pipeline, "run_program", lambda *a, **k: ProgramRun("us", 0, 0.0, [], {"o": program_object}))

    def estimate(resources, cfg, stack):
        seen["while the plan is built"] = gc.get_freeze_count()
        raise RuntimeError("the cost model failed")

    monkeypatch.setattr(pipeline, "estimate", estimate)
    with pytest.raises(RuntimeError, match="cost model failed"):
        pipeline.plan_stack(pipeline.Path("."), "us", cfg=None, policy=False)
    assert seen["while the plan is built"] > 0
    assert gc.get_freeze_count() == 0  # thawed although the plan failed


def test_the_program_s_cyclic_garbage_waits_for_the_thaw_and_is_collected_then():
    class Cycle:
        pass

    garbage = Cycle()
    garbage.me = garbage
    alive = weakref.ref(garbage)
    with pipeline._program_heap_frozen():
        del garbage
        gc.collect()
        assert alive() is not None  # frozen: no collection walks it
    gc.collect()
    assert alive() is None  # thawed: the next collection frees it
