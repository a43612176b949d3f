-- People, sign-in and roles (issue 14, item 2).
--
-- Users sign in with an email and a password (argon2id PHC string) and act
-- in an org through a membership whose role decides what they may do.
-- Sessions and invitations keep only the SHA-256 of their tokens; the raw
-- token exists only in the cookie or the invitation link.
CREATE TABLE users (
    id            UUID PRIMARY KEY,
    -- Stored lower-cased (the check keeps it so).
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email)),
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES orgs (id),
    user_id    UUID NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);

CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE invitations (
    id          UUID PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    email       TEXT NOT NULL CHECK (email = lower(email)),
    role        TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);

CREATE INDEX invitations_org ON invitations (org_id, created_at DESC);

CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    user_id      UUID NOT NULL REFERENCES users (id),
    org_id       TEXT NOT NULL REFERENCES orgs (id),
    csrf_token   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-ins by email (lower-cased), counted over a window by every
-- instance of the query API alike.
CREATE TABLE login_failures (
    email TEXT NOT NULL,
    at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX login_failures_email_at ON login_failures (email, at);
