-- 0003: learned clock drift. The offsets (in steps, relative to the server
-- clock) at which the last accepted codes matched, newest last, comma
-- separated; drift_steps follows them when they agree.

ALTER TABLE accounts ADD COLUMN recent_offsets TEXT NOT NULL DEFAULT '';
