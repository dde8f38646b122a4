-- name: revoke-token!
INSERT INTO revoked_tokens (jti, expires_at)
VALUES (:jti, :expires_at)
ON CONFLICT (jti) DO NOTHING;

-- name: purge-revoked-tokens!
-- A revoked token past its expiry is refused anyway: its row is no longer needed.
DELETE FROM revoked_tokens WHERE expires_at < now();

-- name: lock-login-key!
-- Attempts for one e-mail or one client address are checked and recorded one at a time, so a
-- burst of concurrent guesses cannot all pass the check before any of them is written.
SELECT pg_advisory_xact_lock(x'ec06a503'::int, :key);

-- name: add-login-attempt<!
INSERT INTO login_failures (email, client)
VALUES (lower(:email), :client)
RETURNING id;

-- name: login-attempts-block$
-- Seconds until an attempt would be allowed, or NULL when it is: refused while :max_failures
-- recorded attempts of the e-mail, or of the client address, fall in the window; allowed again
-- when the max_failures-th newest of them leaves it.
WITH blocking AS (
    SELECT (SELECT at FROM login_failures
            WHERE lower(email) = lower(:email) AND at > now() - make_interval(secs => :window)
            ORDER BY at DESC OFFSET :max_failures - 1 LIMIT 1) AS email_at,
           (SELECT at FROM login_failures
            WHERE client = :client AND at > now() - make_interval(secs => :window)
            ORDER BY at DESC OFFSET :max_failures - 1 LIMIT 1) AS client_at
)
SELECT CASE
    WHEN email_at IS NULL AND client_at IS NULL THEN NULL
    ELSE GREATEST(1, ceil(extract(epoch FROM
        GREATEST(email_at, client_at) + make_interval(secs => :window) - now())))::int
END
FROM blocking;

-- name: clear-login-failures!
-- A successful login forgives the e-mail's earlier failures.
DELETE FROM login_failures WHERE lower(email) = lower(:email);

-- name: purge-login-failures!
DELETE FROM login_failures WHERE at < now() - make_interval(secs => :window);
