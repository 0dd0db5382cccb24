"""RTO and RPO from what the probe saw (pure functions, so they are tested on their own).

RTO: from the fault to the moment writes *and* reads through the front door work again: for each
kind, the first success after the last failure in the window (or the first success after the
fault, if none failed); the later of the two.
RPO: every write acknowledged in the phase's window must be in the serving database with the content
it was acknowledged with (client id and digest, see probe.py); those that are not are lost, listed
by client id. The RPO is the span of time whose acknowledged writes are gone: from the first lost
acknowledgement to the later of the fault and the last lost one (0 when nothing is lost). Counted
back from the fault, as an RPO objective is; extended past it when a write acknowledged after the
fault is lost too (an acknowledgement by a side that was later discarded), so no loss shortens it.
It is not bounded by when the probe started only because the probe starts a lead before the fault.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

from meridian.drills.probe import Outcome


@dataclass(frozen=True)
class Recovery:
    fault_t: float
    first_failure_t: float | None
    recovered_write_t: float | None
    recovered_read_t: float | None
    failed_requests: int

    @property
    def rto_s(self) -> float | None:
        if self.recovered_write_t is None or self.recovered_read_t is None:
            return None
        return round(max(self.recovered_write_t, self.recovered_read_t) - self.fault_t, 4)

    def to_dict(self) -> dict:
        return {**asdict(self), "rto_s": self.rto_s}


def recovery(outcomes: Iterable[Outcome], fault_t: float, end_t: float) -> Recovery:
    window = sorted((o for o in outcomes if fault_t <= o.t <= end_t), key=lambda o: o.t)
    failures = [o for o in window if not o.ok]

    def recovered(kind: str) -> float | None:
        mine = [o for o in window if o.kind == kind]
        last_failure = max((o.t for o in mine if not o.ok), default=None)
        after = [o.t for o in mine if o.ok and (last_failure is None or o.t > last_failure)]
        return min(after) if after else None

    return Recovery(fault_t, failures[0].t if failures else None, recovered("write"), recovered("read"), len(failures))


@dataclass(frozen=True)
class DataLoss:
    acknowledged: int
    lost_ids: list[str]  # client ids of acknowledged writes missing or changed
    rpo_s: float
    changed: int = 0  # of the lost: present under their id but with other content
    first_lost_t: float | None = None
    last_lost_t: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def data_loss(acknowledged: Iterable[Outcome], stored: dict[tuple[str, str], str | None], fault_t: float) -> DataLoss:
    """`stored`: (tenant, client id) -> the digest the stored content matches (None: it matches none)."""
    acks = [o for o in acknowledged if o.probe_id is not None]
    lost = sorted((o for o in acks if stored.get((o.tenant, o.probe_id)) != o.digest), key=lambda o: o.t)
    changed = sum(1 for o in lost if (o.tenant, o.probe_id) in stored)
    rpo = max(fault_t, lost[-1].t) - lost[0].t if lost else 0.0
    return DataLoss(
        len(acks),
        [o.probe_id for o in lost],
        round(max(0.0, rpo), 4),
        changed,
        lost[0].t if lost else None,
        lost[-1].t if lost else None,
    )


@dataclass(frozen=True)
class Objectives:
    """What the drill is judged against: the stack's DR objectives, scaled like the target's time."""

    rto_s: float  # the stack's failover objective (failover.rto_target_s), scaled
    rpo_s: float
    time_scale: float
    detection_s: float | None = None  # the failover detection bound (health checks x threshold + TTL), scaled
    restore_rto_s: float | None = None  # a restore from backup's budget (dr.rto_minutes), scaled

    def for_restore(self) -> Objectives:
        """A restore is judged against the DR restore budget, not the automatic failover objective."""
        return replace(self, rto_s=self.restore_rto_s if self.restore_rto_s is not None else self.rto_s)

    def judge(
        self, rec: Recovery | None, loss: DataLoss | None, *, zero_loss: bool, detected_s: float | None = None
    ) -> list[str]:
        """Every objective missed, as sentences (empty: all met). `zero_loss`: a planned switchover
        must lose no acknowledged write at all; `detected_s`: how long after the fault the health
        checks took the failed region out (judged against the detection bound)."""
        out = []
        if detected_s is not None and self.detection_s is not None and detected_s > self.detection_s:
            out.append(f"detection took {detected_s:.2f} s, beyond the bound {self.detection_s:.2f} s")
        if rec is not None:
            if rec.rto_s is None:
                out.append("the front door never served a good write and read after the fault")
            elif rec.rto_s > self.rto_s:
                out.append(f"RTO {rec.rto_s:.2f} s exceeds the objective {self.rto_s:.2f} s")
        if loss is not None:
            if zero_loss and loss.lost_ids:
                out.append(
                    f"{len(loss.lost_ids)} acknowledged writes lost in a planned switchover (must be 0): ids {loss.lost_ids[:20]}"
                )
            if loss.rpo_s > self.rpo_s:
                out.append(f"RPO {loss.rpo_s:.2f} s exceeds the objective {self.rpo_s:.2f} s")
        return out
