-- Bounded purges of what sign-in leaves behind (issue 14): failed sign-ins
-- older than a day (at each failure) and sessions a day past their expiry
-- (at each sign-in) are deleted a hundred at a time, found through these
-- indexes.
CREATE INDEX login_failures_at ON login_failures (at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
