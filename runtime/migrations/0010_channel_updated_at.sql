-- Channels are changed in place (the legacy PUT /v1/admin/budget updates its
-- `default` channel through the generic update, which sets updated_at like
-- every other configuration table): they get the column too.
ALTER TABLE notification_channels
    ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
