-- The notifier releases a delivery's slot after each failed attempt instead
-- of sleeping in it (issue 12): the row says when it is due again and when
-- its first attempt was made (the delivery's time bound counts from there).
ALTER TABLE alert_deliveries
    ADD COLUMN next_attempt_at  TIMESTAMPTZ,
    ADD COLUMN first_attempt_at TIMESTAMPTZ;

-- Pending rows, by when they are due.
DROP INDEX alert_deliveries_pending;
CREATE INDEX alert_deliveries_pending ON alert_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;
