-- hookbus schema, version 3: the endpoint-settings change log, so that a
-- publish on one replica routes by every endpoint change committed before
-- it began on any replica (see docs/postgres-schema.md).

-- One row: the number of the newest endpoint change. Every change takes
-- its row lock to bump it, so numbers are committed in order.
CREATE TABLE settings_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO settings_version (one, version) VALUES (true, 0);

-- Which endpoint each change touched; the newest ones only (older rows
-- are pruned: a replica further behind reads every endpoint again).
CREATE TABLE settings_changes (
    version bigint PRIMARY KEY,
    endpoint bigint NOT NULL
);
