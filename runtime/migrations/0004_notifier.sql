-- The notifier's dispatchers look for pending deliveries (never claimed, or
-- claimed by an instance that died) every second: keep that lookup on the
-- few pending rows, not the whole delivery history.
CREATE INDEX alert_deliveries_pending ON alert_deliveries (claimed_at)
    WHERE delivered_at IS NULL AND dead_lettered_at IS NULL;
