-- Identity: users, API keys and refresh tokens. Secrets are stored only as hashes
-- (Argon2id for passwords, SHA-256 for high-entropy keys and tokens).
CREATE TABLE users (
  id               TEXT PRIMARY KEY,
  username         TEXT NOT NULL UNIQUE,
  display_name     TEXT NOT NULL DEFAULT '',
  role             TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
  status           TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  password_hash    TEXT NOT NULL DEFAULT '',
  failed_logins    INTEGER NOT NULL DEFAULT 0,
  locked_until     TEXT,
  external_issuer  TEXT,
  external_subject TEXT,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  last_login_at    TEXT
);
CREATE UNIQUE INDEX users_external ON users (external_issuer, external_subject)
  WHERE external_issuer IS NOT NULL;

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  prefix       TEXT NOT NULL UNIQUE,
  key_hash     TEXT NOT NULL,
  role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'agent')),
  agent_id     TEXT,
  created_by   TEXT NOT NULL DEFAULT '',
  expires_at   TEXT,
  last_used_at TEXT,
  revoked_at   TEXT,
  created_at   TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  family_id  TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires_at TEXT NOT NULL,
  rotated_at TEXT,
  revoked_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
