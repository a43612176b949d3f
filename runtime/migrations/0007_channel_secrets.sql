-- Channel credentials at rest (issue 12): `url` and `secret` hold values
-- sealed by the components (runtime/src/secrets.rs: `enc:v1:<key id>:...`);
-- the database never sees the key, so rows written in clear before this are
-- sealed by the components' startup sweep or `admin reencrypt-secrets`.
-- `url_hint` is what the API shows of the URL: scheme, host and port.
ALTER TABLE notification_channels ADD COLUMN url_hint TEXT;
