"""The analyzer calls of one preview, made from a process of their own.

`meridian preview` streams one `Analyze` per registration to the pack's analyzer while the program
runs. Made from the preview's own process, each call is a gRPC future: the call's start, the
channel's event thread and the answer all take the GIL from the program, whose single thread is
what a preview waits for (measured at 1,000 tenants, ~10 % of the preview process's CPU). The relay
takes those calls off it: the preview writes each registration to the relay's stdin as it comes (a
pickled `Subject`, one write), and the relay, on the other core, makes exactly the calls the
preview made (the same requests, in registration order, each after `Configure`), then sends
`AnalyzeStack` to the shards it is told of and writes back what came back, in the order the preview
collected it: every `Analyze` answer in registration order, then each shard's `AnalyzeStack`.

Frames both ways: one byte of kind, four of length (little-endian), the payload.
In: `HELLO` (the main analyzer's port), `SUBJECT` (a `Subject`'s fields, pickled: `subject_frame`), `CONTEXT` (the
same for another stack's resource the stack rules see beside this stack's, a cell's platform: in AnalyzeStack only,
never analyzed one by one), `STACK` (the ports to send AnalyzeStack to, pickled). Out: `ANSWER` (pickled (urn, serialized AnalyzeResponse); only
answers that are not empty), `FAILED` (pickled (urn, gRPC details): the call the preview would have
raised on, urn "" for AnalyzeStack), `DONE`. An end of input before `STACK` ends the relay quietly
(the preview stopped: the program failed, or the user interrupted it).

Run as `python -m meridian.engine.policy.relay`; imports only what the calls need.
"""

from __future__ import annotations

import pickle
import struct
import sys
from typing import Any, BinaryIO

HELLO, SUBJECT, CONTEXT, STACK = b"H", b"S", b"C", b"K"
ANSWER, FAILED, DONE = b"A", b"F", b"D"
_HEADER = struct.Struct("<cI")
STACK_TYPE = "pulumi:pulumi:Stack"
CALL_TIMEOUT_S = 600
# An Analyze call cancelled or timed out in transport is asked once more when its answer is
# collected (after the program): on a machine loaded far beyond its cores, thousands of calls queue
# at the analyzer, and one that waited past its deadline there was seen cancelled (1,000 tenants,
# load average 30). A second failure is reported as before.
_AGAIN_CODES = ("CANCELLED", "DEADLINE_EXCEEDED")


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def subject_frame(subject: Any, kind: bytes = SUBJECT) -> bytes:
    """A registration as the relay reads it: the `Subject`'s fields in their order, pickled as a tuple."""
    s = subject
    fields = (s.urn, s.type, s.name, s.wire, s.parent, s.provider, s.dependencies, s.property_dependencies, s.protect, s.custom)
    return frame(kind, pickle.dumps(fields, pickle.HIGHEST_PROTOCOL))


def read_frame(stream: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next frame, or None at the end of the stream (also mid-frame: the writer is gone)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    kind, length = _HEADER.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return kind, payload


def relay(inp: BinaryIO, out: BinaryIO) -> int:
    import grpc
    from pulumi.runtime.proto import analyzer_pb2

    again_codes = {getattr(grpc.StatusCode, name) for name in _AGAIN_CODES}

    from meridian.engine.policy.analyzer import _GRPC_OPTIONS, analyze_request, stack_part
    from meridian.engine.policy.wire import Subject

    channels: dict[int, Any] = {}

    def method(port: int, name: str, serializer: Any) -> Any:
        if port not in channels:
            channels[port] = grpc.insecure_channel(f"127.0.0.1:{port}", options=_GRPC_OPTIONS)
        return channels[port].unary_unary(
            f"/pulumirpc.Analyzer/{name}",
            request_serializer=serializer,
            response_deserializer=None,  # answers go back as they came: the preview decodes them
        )

    analyze = None
    # the AnalyzeStack request is built as the subjects come (each its part, with its provider, which
    # registers before whatever names it), so it is ready when the program ends
    parts, providers, pending, context = [], {}, [], []
    while True:
        got = read_frame(inp)
        if got is None:
            return 0  # the preview stopped before the stack was complete: nothing to answer
        kind, payload = got
        if kind == HELLO:
            analyze = method(pickle.loads(payload), "Analyze", analyzer_pb2.AnalyzeRequest.SerializeToString)
        elif kind == SUBJECT:
            subject = Subject(*pickle.loads(payload))
            if subject.type.startswith("pulumi:providers:"):
                providers[subject.urn] = subject
            parts.append(stack_part(subject, providers))
            if subject.type != STACK_TYPE:
                assert analyze is not None, "HELLO comes first"
                request = analyze_request(subject, providers)
                pending.append((subject.urn, request, analyze.future(request, timeout=CALL_TIMEOUT_S)))
        elif kind == CONTEXT:
            context.append(Subject(*pickle.loads(payload)))
        elif kind == STACK:
            providers.update((s.urn, s) for s in context if s.type.startswith("pulumi:providers:"))
            parts += [stack_part(s, providers) for s in context]  # after this stack's own, as before the relay
            request = b"".join(parts)
            del parts
            ports = pickle.loads(payload)
            stacks = [method(port, "AnalyzeStack", None).future(request, timeout=CALL_TIMEOUT_S) for port in ports]
            del request
            break
        else:
            raise ValueError(f"relay: unknown frame kind {kind!r}")
    for urn, request, future in [*pending, *(("", None, f) for f in stacks)]:
        try:
            answer = future.result()
        except grpc.RpcError as exc:
            answer = None
            if exc.code() in again_codes and request is not None:  # Analyze is a pure function of its request
                try:
                    answer = analyze.future(request, timeout=CALL_TIMEOUT_S).result()
                except grpc.RpcError as again:
                    exc = again
            if answer is None:
                out.write(frame(FAILED, pickle.dumps((urn, exc.details()))))
                out.flush()
                return 0
        if answer:  # an empty AnalyzeResponse serializes to no bytes at all: nothing to report
            out.write(frame(ANSWER, pickle.dumps((urn, answer))))
    out.write(frame(DONE))
    out.flush()
    return 0


def main() -> int:
    return relay(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
