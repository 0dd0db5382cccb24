-- The reference service's schema. Applied once on the primary (the sandbox does it at `up`;
-- in a cluster, `python -m service migrate`); replicas receive it through replication.
CREATE TABLE IF NOT EXISTS events (
    id          bigserial PRIMARY KEY,
    tenant_id   text        NOT NULL,
    type        text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Every read is scoped to one tenant: the index leads with it.
CREATE INDEX IF NOT EXISTS events_tenant_id_idx ON events (tenant_id, id);
