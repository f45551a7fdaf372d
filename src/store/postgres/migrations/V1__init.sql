-- hookbus schema, version 1. Runs with search_path set to the bus's schema.
-- Records are the versioned codec bytes the sled store writes too; the
-- columns beside them are what queries, claims and leases need.
-- See docs/postgres-schema.md for what each table and index is for.

CREATE SEQUENCE ids START 1;

CREATE TABLE endpoints (
    id bigint PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE endpoint_states (
    endpoint bigint PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE endpoint_tenants (
    endpoint bigint PRIMARY KEY,
    tenant text NOT NULL
);

CREATE TABLE events (
    id bytea PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE deliveries (
    endpoint bigint NOT NULL,
    event bytea NOT NULL,
    finished boolean NOT NULL,
    failed boolean NOT NULL,
    in_flight boolean NOT NULL DEFAULT false,
    updated_ms bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (endpoint, event)
);
CREATE INDEX deliveries_unfinished ON deliveries (endpoint, event) WHERE NOT finished;
CREATE INDEX deliveries_by_event ON deliveries (event);

CREATE TABLE cancelled (
    endpoint bigint NOT NULL,
    event bytea NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (endpoint, event)
);

CREATE TABLE attempts (
    seq bigserial PRIMARY KEY,
    endpoint bigint NOT NULL,
    event bytea NOT NULL,
    attempt integer NOT NULL,
    started_ms bigint NOT NULL,
    record bytea NOT NULL,
    UNIQUE (endpoint, event, attempt, started_ms)
);
CREATE INDEX attempts_by_endpoint ON attempts (endpoint, seq);
CREATE INDEX attempts_by_event ON attempts (event);

CREATE TABLE idempotency (
    tenant text NOT NULL,
    key text NOT NULL,
    event bytea NOT NULL,
    created_ms bigint NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX idempotency_by_event ON idempotency (event);

CREATE TABLE tenants (
    key text PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE tenant_deletions (
    seq bigint PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE endpoint_leases (
    endpoint bigint PRIMARY KEY,
    owner text NOT NULL,
    until timestamptz NOT NULL
);
CREATE INDEX endpoint_leases_by_owner ON endpoint_leases (owner);

CREATE TABLE replicas (
    id text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
