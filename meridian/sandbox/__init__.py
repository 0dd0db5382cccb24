"""The local sandbox: a stack's region pair from real parts on 127.0.0.1.

PostgreSQL primary ("primary region") + streaming replica ("dr region"), the reference service
(`service/`) per region, HAProxy as the Route 53 stand-in, optional fault proxies in front of the
databases and services. `up`, `down`, `status` live in `meridian.sandbox.core`; the pure parts
(port allocation, HAProxy config, failover scaling, manifest) in their own modules.
"""
