"""The policy result of one run: violations, counts and where the analyzer's time went."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meridian.engine.policy.config import PackInfo
from meridian.engine.policy.wire import Violation


@dataclass
class PolicyTimings:
    startup_s: float = 0.0  # spawn -> answering GetAnalyzerInfo (runs while the program imports)
    startup_cpu_s: float | None = None  # the analyzers' CPU until they answered (importing the pack), all of them
    analyzer_cpu_s: float | None = None  # the analyzer's own CPU for Analyze + AnalyzeStack (startup excluded)
    during_program_cpu_s: float | None = None  # of it, spent while the program was still registering
    hidden_cpu_s: float | None = None  # of it, spent before anyone waited for it (program + report rendering)
    after_program_s: float = 0.0  # wall: program end -> evaluation done
    waited_s: float = 0.0  # wall the caller actually blocked on policy results: what policy adds to the run
    stack_s: float = 0.0  # wall of the AnalyzeStack call
    relay_cpu_s: float | None = None  # the relay's CPU (the Analyze calls made for the preview, engine.policy.relay)

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class PolicyReport:
    pack: PackInfo
    config_file: str
    violations: list[Violation]
    analyzed: int
    timings: PolicyTimings

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    def to_json(self) -> dict[str, Any]:
        levels = {}
        for v in self.violations:
            levels[v.level] = levels.get(v.level, 0) + 1
        return {
            "evaluated": True,
            "pack": f"{self.pack.name}@{self.pack.version}",
            "config": self.config_file,
            "policies": len(self.pack.policies),
            "resources_analyzed": self.analyzed,
            "counts": levels,
            "violations": [v.to_json() for v in self.violations],
            "timings": self.timings.to_json(),
        }
