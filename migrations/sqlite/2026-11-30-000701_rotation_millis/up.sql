-- The refresh-token grace interval is judged to the millisecond: a session's exchange times
-- (rotated_at, burst_at) move from Unix seconds to Unix milliseconds.
UPDATE sessions SET rotated_at = rotated_at * 1000 WHERE rotated_at IS NOT NULL;
UPDATE sessions SET burst_at = burst_at * 1000 WHERE burst_at IS NOT NULL;
