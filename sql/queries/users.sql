-- name: lock-user-registration!
-- Serialises registrations for the length of the transaction, so that of two concurrent first
-- registrations only one sees no active admin and becomes admin.
SELECT pg_advisory_xact_lock(x'ec06a501'::int);

-- name: lock-admin-changes!
-- Serialises role and disabled changes for the length of the transaction, so two admins
-- demoting each other at once cannot leave the service without an active admin.
SELECT pg_advisory_xact_lock(x'ec06a502'::int);

-- name: active-admin-exists$
-- Whether someone can administer the service: an enabled admin other than the demo's account
-- (:demo_email, whose password nobody knows).
SELECT EXISTS (
    SELECT 1 FROM users
    WHERE role = 'admin' AND NOT disabled AND lower(email) <> lower(:demo_email)
);

-- name: account-exists-besides-demo$
-- Whether anyone but the demo's account (:demo_email) has an account: a closed install that
-- has one was set up by its operator.
SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) <> lower(:demo_email));

-- name: insert-user^
-- The e-mail index is on lower(email): a taken address (in any case) returns no row.
INSERT INTO users (email, name, password_hash, role)
VALUES (:email, :name, :password_hash, :role)
ON CONFLICT ((lower(email))) DO NOTHING
RETURNING id, email, name, role, disabled, token_version, created_at, updated_at;

-- name: get-user-for-login^
SELECT id, email, name, role, disabled, token_version, password_hash
FROM users
WHERE lower(email) = lower(:email);

-- name: get-user-for-token^
-- Everything the guard needs to accept a token, in one round trip.
SELECT id, email, name, role, disabled, token_version,
       EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = :jti) AS revoked
FROM users
WHERE id = :id;

-- name: get-user^
SELECT id, email, name, role, disabled, token_version, created_at, updated_at
FROM users
WHERE id = :id;

-- name: get-user-for-update^
SELECT id, email, name, role, disabled, token_version, password_hash, created_at, updated_at
FROM users
WHERE id = :id
FOR UPDATE;

-- name: list-users
SELECT id, email, name, role, disabled, created_at, updated_at
FROM users
ORDER BY id;

-- name: count-active-admins$
-- The demo's account (:demo_email) never counts: nobody can sign in as it.
SELECT count(*) FROM users
WHERE role = 'admin' AND NOT disabled AND lower(email) <> lower(:demo_email);

-- name: update-user-access^
-- Any change of role or disabled bumps token_version: tokens issued before stop working.
UPDATE users
SET role = :role, disabled = :disabled, token_version = token_version + 1, updated_at = now()
WHERE id = :id
RETURNING id, email, name, role, disabled, token_version, created_at, updated_at;

-- name: update-password-hash^
-- A new password: tokens issued before it stop working.
UPDATE users
SET password_hash = :password_hash, token_version = token_version + 1, updated_at = now()
WHERE id = :id
RETURNING id, email, name, role, disabled, token_version, created_at, updated_at;

-- name: rehash-password!
-- The same password under newer hash parameters: tokens stay valid. Conditional on the old
-- hash, so a password changed meanwhile is never overwritten.
UPDATE users
SET password_hash = :new_hash
WHERE id = :id AND password_hash = :old_hash;

-- name: get-password-hash$
SELECT password_hash FROM users WHERE id = :id;
