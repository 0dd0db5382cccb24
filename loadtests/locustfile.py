"""meridian's load suite: tenant-aware users against the front door, judged by the SLO gate.

    locust -f loadtests/locustfile.py --headless -u 20 -r 5 -t 30s --host URL [--stack us]

Each simulated user is one tenant of the stack (loadtests/tenant_users.py: keys
and plans from the sandbox manifest, the stack's outputs on AWS, or `--tenants-file`; the plan's
read/write mix; Retry-After honoured: 429s are counted as throttled, not failed).
The exit code is the SLO verdict (loadtests/slo.yaml + the stack config): 0 met, 1 breached.
`--shape steady|spike|soak` picks a stage table (loadtests/loadshapes.py) scaled by -u and -t.
"""

from __future__ import annotations

from loadshapes import StageShape  # noqa: F401  (Locust picks the shape class up from this module)
from tenant_users import TenantUser  # noqa: F401  (the user class Locust runs)

from meridian.slo.locust_plugin import install

install()
