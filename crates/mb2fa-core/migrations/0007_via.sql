-- 0007: through what a login came, when the PAM module ran the tool
-- ("pam service=sshd user=alice rhost=203.0.113.7 tty=ssh"). Older rows and
-- records of tools run by hand have ''.

ALTER TABLE audit ADD COLUMN via TEXT NOT NULL DEFAULT '';
