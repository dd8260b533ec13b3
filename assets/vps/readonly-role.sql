-- A read-only role for dashboards (Grafana), `selfie-kiosk fleet` and staff with psql:
-- SELECT on every table and view of the kiosks' remote schema, now and later (default
-- privileges), never a write, and never the SMS log's phone-number HMAC (personal data).
--
-- Run once as a superuser (or a role with CREATEROLE that can grant on the kiosks'
-- tables), in the kiosks' database, naming the role that owns the tables (the user in the
-- kiosks' REMOTE_DATABASE_URL: the daemons create them):
--
--   psql -v owner=kiosk -f readonly-role.sql postgresql://postgres@localhost/kiosk
--
-- It can be run again (after an upgrade, for instance): every statement is idempotent.
-- Then give each person or tool a login of its own in the role, e.g. for Grafana:
--
--   CREATE ROLE grafana LOGIN PASSWORD '…' IN ROLE selfie_kiosk_readonly;
--   ALTER ROLE grafana SET default_transaction_read_only = on;
--
-- and, in Grafana's PostgreSQL data source, that user (TLS as for the kiosks).
\set ON_ERROR_STOP on

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'selfie_kiosk_readonly') AS create_role \gset
\if :create_role
CREATE ROLE selfie_kiosk_readonly NOLOGIN;
\endif
COMMENT ON ROLE selfie_kiosk_readonly IS 'Read-only access to the selfie-kiosk remote schema (dashboards, fleet); phone HMACs excluded.';

GRANT CONNECT ON DATABASE :"DBNAME" TO selfie_kiosk_readonly;
GRANT USAGE ON SCHEMA public TO selfie_kiosk_readonly;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO selfie_kiosk_readonly;
-- Tables and views the kiosks' migrations add later.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT ON TABLES TO selfie_kiosk_readonly;

-- The SMS log without phone_hmac: the table-level grant above would include it.
REVOKE SELECT ON kiosk_sms_log FROM selfie_kiosk_readonly;
GRANT SELECT (kiosk_id, sms_id, capture_id, status, attempts, created_at, sent_at,
              last_error, updated_at)
    ON kiosk_sms_log TO selfie_kiosk_readonly;

-- No writes granted to this role, even if someone granted them before. (PostgreSQL < 15
-- lets every role create tables in schema public through PUBLIC; there, also run
-- `REVOKE CREATE ON SCHEMA public FROM PUBLIC`, which concerns every role.)
REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON ALL TABLES IN SCHEMA public FROM selfie_kiosk_readonly;
REVOKE CREATE ON SCHEMA public FROM selfie_kiosk_readonly;
