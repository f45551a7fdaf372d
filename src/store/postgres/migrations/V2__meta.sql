-- hookbus schema, version 2: small values a feature keeps by name (the
-- portal's session-signing key and session revocations), as the sled
-- store keeps them under its meta keys.

CREATE TABLE meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
);
