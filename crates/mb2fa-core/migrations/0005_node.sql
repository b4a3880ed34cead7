-- 0005: which node wrote an audit record (its host name): on a cluster the
-- trail says where a login came through. Older rows have ''.

ALTER TABLE audit ADD COLUMN node TEXT NOT NULL DEFAULT '';
