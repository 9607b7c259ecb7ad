UPDATE sessions SET rotated_at = rotated_at / 1000 WHERE rotated_at IS NOT NULL;
UPDATE sessions SET burst_at = burst_at / 1000 WHERE burst_at IS NOT NULL;
