"""The reference service: a tenant-aware HTTP API over PostgreSQL (Starlette + uvicorn + asyncpg).

The same code runs in the local sandbox (one process per region) and in the Pulumi workload
(the image built from `service/Dockerfile`). Pieces:

- `settings`: the service's config (region, DSNs, tenants with hashed API keys and quotas, and where
  the cells' tenant files are);
- `tenants`: the tenants served: the settings' own plus those tenant files, followed while it runs;
- `auth`: API key -> tenant;
- `quotas`: per-tenant token buckets from the plan quotas (429 + Retry-After);
- `store`: the PostgreSQL store (writes through a multi-host DSN to whichever node is primary,
  reads from the region's own node);
- `validation`: the bounds of every input (size, depth, characters PostgreSQL can store, int64);
- `openapi`: the OpenAPI 3.1 contract, built from the routes and those bounds (`GET /openapi.json`);
- `app`: the Starlette application; `__main__`: `python -m service --config FILE`.
"""
