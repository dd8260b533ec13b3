//! The SQL of the remote migrations that serve dashboards (issue 21): `taken_at` as a
//! timestamp, the daily counts that outlive retention, and comments on the whole schema.
//! They are listed, in order, in [`super::remote_db::REMOTE_MIGRATIONS`].
//!
//! Older daemons of the fleet keep running against the migrated database with their own
//! statements (they insert `taken_at` as text and know nothing of the daily table), so
//! everything here is derived by triggers on the tables every version writes: the new
//! columns and counts are right whichever version wrote the row. Each migration first
//! locks the tables it reads (`SHARE ROW EXCLUSIVE`, which waits for writers in flight and
//! holds new ones until commit), so a backfill and the trigger that takes over from it see
//! every row exactly once.

/// `kiosk_captures.taken_at` stays `TEXT`: PostgreSQL has no implicit cast from text to
/// `timestamptz`, so changing its type would make every older daemon's insert fail. The
/// parsed value lives in `taken_at_ts`, set by a trigger from the text on every insert and
/// on every update of `taken_at` (whoever writes), and backfilled here. A text that is not
/// an RFC 3339 date-time with an offset (the daemon refuses others, but an older or foreign
/// writer might not) gives NULL, never an error: a dashboard column must not stop a sync.
pub const TAKEN_AT_TS: &str = r#"
LOCK TABLE kiosk_captures IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE kiosk_captures ADD COLUMN IF NOT EXISTS taken_at_ts TIMESTAMPTZ;
CREATE OR REPLACE FUNCTION selfie_kiosk_parse_taken_at(t TEXT) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- With an explicit offset the value does not depend on the session's TimeZone.
    IF t IS NULL OR t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?([Zz]|[+-][0-9]{2}:?[0-9]{2})$' THEN
        RETURN NULL;
    END IF;
    BEGIN
        RETURN t::timestamptz;
    EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR invalid_time_zone_displacement_value THEN
        RETURN NULL;
    END;
END $$;
CREATE OR REPLACE FUNCTION selfie_kiosk_captures_taken_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.taken_at_ts := selfie_kiosk_parse_taken_at(NEW.taken_at);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS kiosk_captures_taken_at ON kiosk_captures;
CREATE TRIGGER kiosk_captures_taken_at BEFORE INSERT OR UPDATE OF taken_at ON kiosk_captures
    FOR EACH ROW EXECUTE FUNCTION selfie_kiosk_captures_taken_at();
UPDATE kiosk_captures SET taken_at_ts = selfie_kiosk_parse_taken_at(taken_at)
    WHERE taken_at IS NOT NULL AND taken_at_ts IS NULL;
"#;

/// `kiosk_daily`: per kiosk and UTC day (of `created_at`), the captures and the SMS sent
/// and failed. Counts only, nothing personal; retention and erasure delete captures and
/// SMS rows but never these.
///
/// - A capture counts once, when its row is first inserted: the sync's upsert of a row
///   already there (a re-sync) is an UPDATE, and `AFTER INSERT` row triggers do not fire
///   for it.
/// - An SMS counts in the bucket of its current status: a change of status moves it (a
///   failed SMS retried and sent is then one sent, not one failed and one sent); the same
///   status written again moves nothing. A row deleted later leaves its count in place.
/// - The UTC day: the database cannot know each kiosk's zone and a day must not depend
///   on the session that wrote the row.
/// - Existing rows are counted once by the backfill (only what retention has kept).
///
/// Per event: [`DAILY_EVENTS`].
pub const KIOSK_DAILY: &str = r#"
LOCK TABLE kiosk_captures, kiosk_sms_log IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE IF NOT EXISTS kiosk_daily (
    kiosk_id TEXT NOT NULL,
    day DATE NOT NULL,
    captures BIGINT NOT NULL DEFAULT 0,
    sms_sent BIGINT NOT NULL DEFAULT 0,
    sms_failed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kiosk_id, day)
);
CREATE INDEX IF NOT EXISTS kiosk_daily_day ON kiosk_daily (day);
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_add(TEXT, DATE, BIGINT, BIGINT, BIGINT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO kiosk_daily (kiosk_id, day, captures, sms_sent, sms_failed)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (kiosk_id, day) DO UPDATE SET
        captures = kiosk_daily.captures + excluded.captures,
        sms_sent = kiosk_daily.sms_sent + excluded.sms_sent,
        sms_failed = kiosk_daily.sms_failed + excluded.sms_failed
$$;
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_capture() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM selfie_kiosk_daily_add(NEW.kiosk_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1, 0, 0);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_sms() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sent BIGINT := 0;
    failed BIGINT := 0;
BEGIN
    IF NEW.status = 'sent' THEN sent := 1; ELSIF NEW.status = 'failed' THEN failed := 1; END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'sent' THEN sent := sent - 1;
        ELSIF OLD.status = 'failed' THEN failed := failed - 1; END IF;
    END IF;
    IF sent <> 0 OR failed <> 0 THEN
        PERFORM selfie_kiosk_daily_add(NEW.kiosk_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 0, sent, failed);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS kiosk_captures_daily ON kiosk_captures;
CREATE TRIGGER kiosk_captures_daily AFTER INSERT ON kiosk_captures
    FOR EACH ROW EXECUTE FUNCTION selfie_kiosk_daily_capture();
DROP TRIGGER IF EXISTS kiosk_sms_log_daily ON kiosk_sms_log;
CREATE TRIGGER kiosk_sms_log_daily AFTER INSERT OR UPDATE OF status ON kiosk_sms_log
    FOR EACH ROW EXECUTE FUNCTION selfie_kiosk_daily_sms();
INSERT INTO kiosk_daily (kiosk_id, day, captures, sms_sent, sms_failed)
SELECT kiosk_id, day, sum(c), sum(s), sum(f) FROM (
    SELECT kiosk_id, (created_at AT TIME ZONE 'UTC')::date AS day, 1 AS c, 0 AS s, 0 AS f
        FROM kiosk_captures
    UNION ALL
    SELECT kiosk_id, (created_at AT TIME ZONE 'UTC')::date, 0,
           (status = 'sent')::int, (status = 'failed')::int
        FROM kiosk_sms_log
) AS counted GROUP BY kiosk_id, day
ON CONFLICT (kiosk_id, day) DO NOTHING;
"#;

/// Comments on every table, column and function of the remote schema so far, for people
/// reading it in `psql` (`\d+`) or Grafana's query builder.
pub const COMMENTS: &str = r#"
COMMENT ON TABLE selfie_kiosk_migrations IS 'Remote schema versions applied by selfie-kiosk daemons (shared by every kiosk; never edited by hand).';
COMMENT ON COLUMN selfie_kiosk_migrations.version IS 'Migration number (position in the daemon''s list, from 1).';
COMMENT ON COLUMN selfie_kiosk_migrations.applied_at IS 'When the migration was applied (server clock).';
COMMENT ON COLUMN selfie_kiosk_migrations.applied_by IS 'Daemon version that applied it, e.g. "selfie-kiosk 0.1.0".';

COMMENT ON TABLE kiosk_captures IS 'Capture metadata synced by each kiosk (one row per kiosk and capture id); deleted with the capture by retention (RETENTION_DAYS) and erasure. Long-term counts are in kiosk_daily.';
COMMENT ON COLUMN kiosk_captures.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_captures.id IS 'Capture id (32 hex characters, or the id the touchscreen app chose), unique per kiosk.';
COMMENT ON COLUMN kiosk_captures.created_at IS 'When the kiosk stored the capture (kiosk clock).';
COMMENT ON COLUMN kiosk_captures.taken_at IS 'When the photo was taken, as the app sent it (RFC 3339 text, optional). Kept as text for older daemons; use taken_at_ts.';
COMMENT ON COLUMN kiosk_captures.taken_at_ts IS 'taken_at parsed as a timestamp, set by a trigger from the text (NULL when absent or not RFC 3339).';
COMMENT ON COLUMN kiosk_captures.background_id IS 'Background chosen for the photo, if any (the kiosk''s background id).';
COMMENT ON COLUMN kiosk_captures.bytes IS 'Size of the stored JPEG in bytes.';
COMMENT ON COLUMN kiosk_captures.width IS 'Image width in pixels.';
COMMENT ON COLUMN kiosk_captures.height IS 'Image height in pixels.';
COMMENT ON COLUMN kiosk_captures.sha256 IS 'SHA-256 of the stored JPEG (hex), to check the remote file.';
COMMENT ON COLUMN kiosk_captures.file_name IS 'Name of the image file in remote storage (REMOTE_STORAGE_URL + file_name).';
COMMENT ON COLUMN kiosk_captures.synced_at IS 'When the row was last written by the kiosk''s sync (server clock).';

COMMENT ON TABLE kiosk_sms_log IS 'SMS requested on each kiosk, without phone numbers (an HMAC only, for erasure requests); deleted with the capture by retention and erasure. Long-term counts are in kiosk_daily.';
COMMENT ON COLUMN kiosk_sms_log.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_sms_log.sms_id IS 'SMS id, unique per kiosk.';
COMMENT ON COLUMN kiosk_sms_log.capture_id IS 'The capture whose link was sent (kiosk_captures.id).';
COMMENT ON COLUMN kiosk_sms_log.phone_hmac IS 'HMAC-SHA-256 of the E.164 number keyed by the kiosk''s SECRET_KEY: finds rows to erase, cannot be reversed. Personal data: not granted to selfie_kiosk_readonly.';
COMMENT ON COLUMN kiosk_sms_log.status IS 'waiting_for_sync, queued, sent or failed.';
COMMENT ON COLUMN kiosk_sms_log.attempts IS 'Calls made to the SMS provider so far.';
COMMENT ON COLUMN kiosk_sms_log.created_at IS 'When the guest asked for the SMS (kiosk clock).';
COMMENT ON COLUMN kiosk_sms_log.sent_at IS 'When the provider accepted it (kiosk clock); NULL until sent.';
COMMENT ON COLUMN kiosk_sms_log.last_error IS 'Last provider or network error, without the number; NULL when none.';
COMMENT ON COLUMN kiosk_sms_log.updated_at IS 'When the row was last written by the kiosk (server clock).';

COMMENT ON TABLE kiosk_heartbeats IS 'Last heartbeat of each kiosk (one row per kiosk), written every KIOSK_HEARTBEAT_SECS while the database answers.';
COMMENT ON COLUMN kiosk_heartbeats.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_heartbeats.seen_at IS 'When the heartbeat arrived (server clock: boards without RTC cannot be trusted for staleness).';
COMMENT ON COLUMN kiosk_heartbeats.status IS 'ok, degraded (remote trouble, the kiosk works offline) or down (captures stopped).';
COMMENT ON COLUMN kiosk_heartbeats.version IS 'Daemon version.';
COMMENT ON COLUMN kiosk_heartbeats.report IS 'The whole /health report (JSON).';

COMMENT ON TABLE kiosk_heartbeat_history IS 'Past heartbeats of each kiosk, pruned by the kiosks themselves.';
COMMENT ON COLUMN kiosk_heartbeat_history.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_heartbeat_history.seen_at IS 'When the heartbeat arrived (server clock).';
COMMENT ON COLUMN kiosk_heartbeat_history.status IS 'ok, degraded or down.';
COMMENT ON COLUMN kiosk_heartbeat_history.report IS 'The whole /health report (JSON).';

COMMENT ON TABLE kiosk_daily IS 'Per kiosk and UTC day: captures and SMS sent/failed, kept by triggers whichever daemon version writes. Counts only: retention and erasure never delete them.';
COMMENT ON COLUMN kiosk_daily.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_daily.day IS 'UTC date of the capture''s or SMS''s created_at.';
COMMENT ON COLUMN kiosk_daily.captures IS 'Captures first synced for that day (a re-sync does not count again).';
COMMENT ON COLUMN kiosk_daily.sms_sent IS 'SMS of that day whose status is sent (each SMS counted once, in its current status).';
COMMENT ON COLUMN kiosk_daily.sms_failed IS 'SMS of that day whose status is failed (a failed SMS retried and sent moves to sms_sent).';

COMMENT ON FUNCTION selfie_kiosk_parse_taken_at(TEXT) IS 'RFC 3339 text to timestamptz, NULL when it is not one (never an error).';
COMMENT ON FUNCTION selfie_kiosk_captures_taken_at() IS 'Trigger: kiosk_captures.taken_at_ts from taken_at.';
COMMENT ON FUNCTION selfie_kiosk_daily_add(TEXT, DATE, BIGINT, BIGINT, BIGINT) IS 'Adds counts to a kiosk_daily row (kiosk, day, captures, sms_sent, sms_failed).';
COMMENT ON FUNCTION selfie_kiosk_daily_capture() IS 'Trigger: counts a newly inserted capture in kiosk_daily.';
COMMENT ON FUNCTION selfie_kiosk_daily_sms() IS 'Trigger: moves an SMS between kiosk_daily''s sent and failed counts when its status changes.';
"#;

/// `kiosk_daily_events`: the same counts per kiosk, event and UTC day, for captures that
/// belong to an event (`kiosk_captures.event_id`) and the SMS of those captures. The two
/// trigger functions of [`KIOSK_DAILY`] are replaced by ones that feed both tables; an SMS
/// finds its event through its capture's row (the SMS is only sent once the capture is
/// synced). Counts only, never deleted, like `kiosk_daily`.
pub const DAILY_EVENTS: &str = r#"
LOCK TABLE kiosk_captures, kiosk_sms_log IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE IF NOT EXISTS kiosk_daily_events (
    kiosk_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    day DATE NOT NULL,
    captures BIGINT NOT NULL DEFAULT 0,
    sms_sent BIGINT NOT NULL DEFAULT 0,
    sms_failed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kiosk_id, event_id, day)
);
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_event_add(TEXT, TEXT, DATE, BIGINT, BIGINT, BIGINT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO kiosk_daily_events (kiosk_id, event_id, day, captures, sms_sent, sms_failed)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (kiosk_id, event_id, day) DO UPDATE SET
        captures = kiosk_daily_events.captures + excluded.captures,
        sms_sent = kiosk_daily_events.sms_sent + excluded.sms_sent,
        sms_failed = kiosk_daily_events.sms_failed + excluded.sms_failed
$$;
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_capture() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM selfie_kiosk_daily_add(NEW.kiosk_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1, 0, 0);
    IF NEW.event_id IS NOT NULL THEN
        PERFORM selfie_kiosk_daily_event_add(NEW.kiosk_id, NEW.event_id,
            (NEW.created_at AT TIME ZONE 'UTC')::date, 1, 0, 0);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION selfie_kiosk_daily_sms() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    sent BIGINT := 0;
    failed BIGINT := 0;
    event TEXT;
BEGIN
    IF NEW.status = 'sent' THEN sent := 1; ELSIF NEW.status = 'failed' THEN failed := 1; END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.status = 'sent' THEN sent := sent - 1;
        ELSIF OLD.status = 'failed' THEN failed := failed - 1; END IF;
    END IF;
    IF sent <> 0 OR failed <> 0 THEN
        PERFORM selfie_kiosk_daily_add(NEW.kiosk_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 0, sent, failed);
        SELECT c.event_id INTO event FROM kiosk_captures c
            WHERE c.kiosk_id = NEW.kiosk_id AND c.id = NEW.capture_id;
        IF event IS NOT NULL THEN
            PERFORM selfie_kiosk_daily_event_add(NEW.kiosk_id, event,
                (NEW.created_at AT TIME ZONE 'UTC')::date, 0, sent, failed);
        END IF;
    END IF;
    RETURN NULL;
END $$;
INSERT INTO kiosk_daily_events (kiosk_id, event_id, day, captures, sms_sent, sms_failed)
SELECT kiosk_id, event_id, day, sum(c), sum(s), sum(f) FROM (
    SELECT kiosk_id, event_id, (created_at AT TIME ZONE 'UTC')::date AS day, 1 AS c, 0 AS s, 0 AS f
        FROM kiosk_captures WHERE event_id IS NOT NULL
    UNION ALL
    SELECT l.kiosk_id, c.event_id, (l.created_at AT TIME ZONE 'UTC')::date, 0,
           (l.status = 'sent')::int, (l.status = 'failed')::int
        FROM kiosk_sms_log l
        JOIN kiosk_captures c ON c.kiosk_id = l.kiosk_id AND c.id = l.capture_id
        WHERE c.event_id IS NOT NULL
) AS counted GROUP BY kiosk_id, event_id, day
ON CONFLICT (kiosk_id, event_id, day) DO NOTHING;
"#;

/// Comments on what the events, consent and heartbeat-figure migrations added, and on
/// [`DAILY_EVENTS`].
pub const COMMENTS_EVENTS: &str = r#"
COMMENT ON TABLE kiosk_events IS 'Events (a wedding, a fair day) opened on each kiosk by its staff; captures taken during one belong to it.';
COMMENT ON COLUMN kiosk_events.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_events.id IS 'Event id, unique per kiosk (kiosk_captures.event_id refers to it).';
COMMENT ON COLUMN kiosk_events.name IS 'The name staff gave it (shown on the guests'' share pages).';
COMMENT ON COLUMN kiosk_events.starts_at IS 'When it opens.';
COMMENT ON COLUMN kiosk_events.ends_at IS 'When it closes; NULL: open until closed.';
COMMENT ON COLUMN kiosk_events.updated_at IS 'When the kiosk last synced a change of it (server clock).';
COMMENT ON COLUMN kiosk_captures.event_id IS 'The event the capture belongs to (kiosk_events.id), NULL when none.';
COMMENT ON COLUMN kiosk_sms_log.consent IS 'Id of the consent text the guest agreed to when asking for the SMS (never the number).';
COMMENT ON COLUMN kiosk_heartbeat_history.version IS 'Daemon version from the report (generated).';
COMMENT ON COLUMN kiosk_heartbeat_history.backlog IS 'Pending sync jobs from the report (generated; NULL when absent).';
COMMENT ON COLUMN kiosk_heartbeat_history.oldest_pending_s IS 'Age in seconds of the oldest pending job (generated).';
COMMENT ON COLUMN kiosk_heartbeat_history.disk_free_bytes IS 'Free bytes on the data disk (generated).';
COMMENT ON COLUMN kiosk_heartbeat_history.sms_credits IS 'OVH SMS credits left (generated; NULL when SMS is off).';
COMMENT ON VIEW kiosk_status IS 'One row per kiosk from its last heartbeat; stale: not seen for three of its own heartbeat intervals.';
COMMENT ON COLUMN kiosk_status.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_status.last_seen IS 'Its last heartbeat (server clock).';
COMMENT ON COLUMN kiosk_status.status IS 'ok, degraded or down, as the kiosk reported it.';
COMMENT ON COLUMN kiosk_status.version IS 'Daemon version.';
COMMENT ON COLUMN kiosk_status.backlog IS 'Pending sync jobs.';
COMMENT ON COLUMN kiosk_status.oldest_pending_s IS 'Age in seconds of the oldest pending job.';
COMMENT ON COLUMN kiosk_status.disk_free_bytes IS 'Free bytes on the data disk.';
COMMENT ON COLUMN kiosk_status.sms_credits IS 'OVH SMS credits left.';
COMMENT ON COLUMN kiosk_status.stale IS 'True when no heartbeat came for three of the kiosk''s heartbeat intervals.';
COMMENT ON FUNCTION selfie_kiosk_jsonb_bigint(jsonb) IS 'A JSON number as bigint (floored), NULL when it is not a number or out of range.';
COMMENT ON TABLE kiosk_daily_events IS 'Per kiosk, event and UTC day: captures and SMS sent/failed of the event''s captures, kept by triggers. Counts only: retention and erasure never delete them.';
COMMENT ON COLUMN kiosk_daily_events.kiosk_id IS 'The kiosk''s KIOSK_ID.';
COMMENT ON COLUMN kiosk_daily_events.event_id IS 'The event (kiosk_events.id).';
COMMENT ON COLUMN kiosk_daily_events.day IS 'UTC day of the capture (for an SMS: of its request).';
COMMENT ON COLUMN kiosk_daily_events.captures IS 'Captures of the event synced that day.';
COMMENT ON COLUMN kiosk_daily_events.sms_sent IS 'SMS for the event''s captures now sent.';
COMMENT ON COLUMN kiosk_daily_events.sms_failed IS 'SMS for the event''s captures now failed.';
COMMENT ON FUNCTION selfie_kiosk_daily_event_add(TEXT, TEXT, DATE, BIGINT, BIGINT, BIGINT) IS 'Adds counts to a kiosk_daily_events row (kiosk, event, day, captures, sms_sent, sms_failed).';
"#;
