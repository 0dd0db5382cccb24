"""The relay (meridian.engine.policy.relay) makes the analyzer calls the preview used to make itself:
the same requests, in registration order, and every answer back in the order the preview collected
them; a failed call is reported as the preview reported it, and a relay that dies is an error, never
a report without its answers.

A stand-in analyzer (a gRPC server answering from a table) shows what the relay sent; the real pack
through the relay is `tests/test_policy_pack.py::test_streaming_with_a_stack_helper_finds_what_evaluate_finds`.
"""

from __future__ import annotations

import io
import pickle
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from meridian.engine.policy.analyzer import analyze_request, stack_request
from meridian.engine.policy.config import PackInfo, PolicyInfo, PolicyPackError
from meridian.engine.policy.relay import (
    ANSWER,
    DONE,
    FAILED,
    HELLO,
    STACK,
    frame,
    read_frame,
    relay,
    subject_frame,
)
from meridian.engine.policy.stream import PolicyStream
from meridian.engine.policy.wire import Subject


def _subjects() -> list[Subject]:
    provider = Subject("urn:p", "pulumi:providers:aws", "p", b"\x0a\x00", custom=True)
    stack = Subject("urn:stack", "pulumi:pulumi:Stack", "meridian-us", b"", custom=False)
    out = [stack, provider]
    for i in range(5):
        out.append(
            Subject(
                f"urn:r{i}",
                "aws:s3/bucket:Bucket",
                f"r{i}",
                b"",
                parent="urn:stack",
                provider="urn:p",
                dependencies=["urn:p"],
                property_dependencies={"x": ["urn:p"]},
                protect=i % 2 == 0,
            )
        )
    return out


class _StandIn(analyzer_pb2_grpc.AnalyzerServicer):
    """Records every request; a diagnostic for `urn:r1`, a failure for `fail`, one stack diagnostic."""

    def __init__(self, fail: str = "", cancel: str = "", cancels: int = 0):
        self.analyzed: list[bytes] = []
        self.stacks: list[bytes] = []
        self.fail, self.cancel, self.cancels = fail, cancel, cancels

    def Analyze(self, request, context):
        self.analyzed.append(request.SerializeToString())
        if request.urn == self.fail:
            context.abort(grpc.StatusCode.INTERNAL, f"rule crashed on {request.urn}")
        if request.urn == self.cancel and self.cancels > 0:
            self.cancels -= 1
            context.abort(grpc.StatusCode.CANCELLED, "CANCELLED")
        response = analyzer_pb2.AnalyzeResponse()
        if request.urn == "urn:r1":
            response.diagnostics.add(policyName="r", message="bad bucket", urn=request.urn, enforcementLevel=1)
        return response

    def AnalyzeStack(self, request, context):
        self.stacks.append(request.SerializeToString())
        response = analyzer_pb2.AnalyzeResponse()
        response.diagnostics.add(policyName="s", message="bad stack", enforcementLevel=1)
        return response


@pytest.fixture
def stand_in():
    servers = []

    def start(fail: str = "", **cancelling) -> tuple[_StandIn, int]:
        servicer = _StandIn(fail, **cancelling)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        analyzer_pb2_grpc.add_AnalyzerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return servicer, port

    yield start
    for server in servers:
        server.stop(None)


def _frames(data: bytes) -> list[tuple[bytes, bytes]]:
    stream, out = io.BytesIO(data), []
    while (got := read_frame(stream)) is not None:
        out.append(got)
    return out


def test_a_subject_crosses_to_the_relay_whole():
    """Every field, in the order Subject declares them: a field added to Subject and not to the
    frame, or two swapped, fails here."""
    subject = Subject("u", "t", "n", b"w", "pa", "pr", ["d"], {"k": ["v"]}, True, False)
    ((kind, payload),) = _frames(subject_frame(subject))
    assert Subject(*pickle.loads(payload)) == subject
    assert len(pickle.loads(payload)) == len(Subject.__dataclass_fields__)


def test_the_relay_sends_the_preview_s_requests_and_answers_in_its_order(stand_in):
    main, main_port = stand_in()
    helper, helper_port = stand_in()
    subjects = _subjects()
    providers = {s.urn: s for s in subjects if s.type.startswith("pulumi:providers:")}
    inp = frame(HELLO, pickle.dumps(main_port)) + b"".join(subject_frame(s) for s in subjects)
    inp += frame(STACK, pickle.dumps([helper_port, main_port]))
    out = io.BytesIO()
    assert relay(io.BytesIO(inp), out) == 0
    # each Analyze request byte for byte what the preview built, every resource but the stack
    expected = [analyze_request(s, providers).SerializeToString() for s in subjects if s.type != "pulumi:pulumi:Stack"]
    assert sorted(main.analyzed) == sorted(expected)
    assert helper.analyzed == []
    # AnalyzeStack to both shards, with every resource (the stack too), as the preview built it
    whole = analyzer_pb2.AnalyzeStackRequest.FromString(stack_request(subjects, providers)).SerializeToString()
    assert main.stacks == helper.stacks == [whole]
    answers = _frames(out.getvalue())
    assert [k for k, _ in answers] == [ANSWER, ANSWER, ANSWER, DONE]  # empty answers are not sent
    decoded = [pickle.loads(p) for _, p in answers[:-1]]
    assert [urn for urn, _ in decoded] == ["urn:r1", "", ""]  # Analyze first, then each shard as given
    assert analyzer_pb2.AnalyzeResponse.FromString(decoded[0][1]).diagnostics[0].message == "bad bucket"


def test_a_failed_call_is_reported_with_its_resource(stand_in):
    _, port = stand_in(fail="urn:r3")
    inp = frame(HELLO, pickle.dumps(port)) + b"".join(subject_frame(s) for s in _subjects())
    out = io.BytesIO()
    relay(io.BytesIO(inp + frame(STACK, pickle.dumps([port]))), out)
    kinds = [k for k, _ in _frames(out.getvalue())]
    assert kinds == [ANSWER, FAILED]  # r1's answer, then r3's failure; nothing after it, no DONE
    urn, detail = pickle.loads(_frames(out.getvalue())[-1][1])
    assert urn == "urn:r3" and "rule crashed on urn:r3" in detail


def test_a_call_cancelled_in_transport_is_asked_once_more_and_only_once(stand_in):
    for cancels, expected in ((1, [ANSWER, ANSWER, DONE]), (2, [ANSWER, FAILED])):  # r1, the stack; or r1, r2 failed
        servicer, port = stand_in(cancel="urn:r2", cancels=cancels)
        inp = frame(HELLO, pickle.dumps(port)) + b"".join(subject_frame(s) for s in _subjects())
        out = io.BytesIO()
        relay(io.BytesIO(inp + frame(STACK, pickle.dumps([port]))), out)
        assert [k for k, _ in _frames(out.getvalue())] == expected
        r2 = [r for r in servicer.analyzed if b"urn:r2" in r]
        assert len(r2) == 2 and r2[0] == r2[1]  # the same request again, never a third time


def test_an_end_of_input_before_the_stack_is_a_quiet_end(stand_in):
    _, port = stand_in()
    inp = frame(HELLO, pickle.dumps(port)) + subject_frame(_subjects()[2])
    out = io.BytesIO()
    assert relay(io.BytesIO(inp[:-3]), out) == 0  # cut mid-frame, as a preview killed mid-write leaves it
    assert out.getvalue() == b""


class _FakeAnalyzer:
    """What PolicyStream asks of an analyzer, answering on a stand-in's port."""

    def __init__(self, port: int):
        self.port, self.startup_seconds, self.cpu_at_ready = port, 0.0, 0.0
        rule = PolicyInfo("r", "", "mandatory", "", "resource", {}, (), "", ())
        self.info = PackInfo("stand-in", "1", "", (rule,), {})

    def wait_ready(self):
        return self.info

    def configure(self, config, stack=""):
        pass

    def cpu_seconds(self):
        return 0.0


def _stream(port: int) -> PolicyStream:
    return PolicyStream(_FakeAnalyzer(port), {}, Path("config.json"), "test")


def test_the_stream_reports_through_the_relay(stand_in, monkeypatch):
    monkeypatch.setattr("meridian.engine.policy.stream.effective_config", lambda info, file_config, source: {})
    _, port = stand_in()
    stream = _stream(port)
    for s in _subjects():
        stream.on_register(_Reg(s))
    report = stream.finish()
    assert sorted((v.policy, v.urn, v.message) for v in report.violations) == [
        ("r", "urn:r1", "bad bucket"),
        ("s", "", "bad stack"),
    ]
    assert report.analyzed == 6 and report.timings.relay_cpu_s is not None


def test_a_failed_call_fails_the_stream_as_before(stand_in, monkeypatch):
    monkeypatch.setattr("meridian.engine.policy.stream.effective_config", lambda info, file_config, source: {})
    _, port = stand_in(fail="urn:r2")
    stream = _stream(port)
    for s in _subjects():
        stream.on_register(_Reg(s))
    with pytest.raises(PolicyPackError, match="failed in Analyze on urn:r2: rule crashed on urn:r2"):
        stream.finish()


def test_a_relay_that_dies_is_an_error_not_a_clean_report(stand_in, monkeypatch):
    monkeypatch.setattr("meridian.engine.policy.stream.effective_config", lambda info, file_config, source: {})
    _, port = stand_in()
    stream = _stream(port)
    subjects = _subjects()
    stream.on_register(_Reg(subjects[0]))
    stream._relay._proc.kill()
    stream._relay._proc.wait()
    done = threading.Event()

    def register_rest():
        for s in subjects[1:]:
            stream.on_register(_Reg(s))
        done.set()

    register_rest()
    assert done.is_set()  # a dead relay never blocks the program
    with pytest.raises(PolicyPackError, match="relay to the policy pack stopped"):
        stream.finish()


class _Reg:
    """What RecordingMonitor hands `on_register`."""

    def __init__(self, s: Subject):
        self.urn, self.type, self.name, self.wire, self.parent = s.urn, s.type, s.name, s.wire, s.parent
        self.provider_urn, self.dependencies, self.property_dependencies = s.provider, s.dependencies, s.property_dependencies
        self.protect, self.custom = s.protect, s.custom
