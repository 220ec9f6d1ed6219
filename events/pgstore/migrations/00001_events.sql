-- +goose Up
-- The append-only log (DESIGN §3). tx_id is the appending transaction's id: global readers only
-- return rows whose transaction is older than every transaction still running, so an event that
-- commits late can never be skipped by a reader that has already moved past its neighbours.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version),
    -- EventStoreDB's ids are unique per stream, not globally; the same here.
    CONSTRAINT events_stream_event_id_key UNIQUE (stream_id, event_id),
    CONSTRAINT events_stream_version_nonnegative CHECK (stream_version >= 0)
);

-- Global reads walk the log in (tx_id, global_position) order.
CREATE INDEX events_log_order_idx ON events (tx_id, global_position);

-- pgstore_append is the whole append in one statement, so that it costs one round trip:
-- per-stream advisory lock, idempotency check, expected-version check, multi-row insert and a
-- wake-up notification delivered at commit. Called on its own it runs in the statement's implicit
-- transaction; inside an explicit transaction the lock and the rows stay until that one ends.
--
-- p_kind: 0 any, 1 no stream, 2 stream exists, 3 exact (p_expected = the last event's version).
-- outcome: 'ok' (appended), 'duplicate' (the same batch is already stored: the result is the
-- original one), 'wrong' (the expectation failed, or the batch reuses ids stored elsewhere in the
-- stream; actual = the stream's last version, -1 when empty).
-- +goose StatementBegin
CREATE FUNCTION pgstore_append(
    p_stream text, p_kind int, p_expected bigint,
    p_ids uuid[], p_types text[], p_data text[], p_metadata text[],
    OUT outcome text, OUT actual bigint, OUT next_version bigint,
    OUT commit_pos bigint, OUT prepare_pos bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    n       int := cardinality(p_ids);
    first_v bigint;
    matched int;
BEGIN
    -- Marks this transaction as an appender before it writes anything (so before it has a
    -- transaction id): pgstore_horizon() reads these marks to find the oldest append still in
    -- flight. Shared, so appenders never wait for each other here.
    PERFORM pg_advisory_xact_lock_shared(1885827957, 0);
    -- Serialises appends to one stream only; different streams never wait for each other
    -- (barring a hash collision, which only costs a wait). The two-key form with pgstore's own
    -- class key ('pgst') keeps clear of other users of single-key advisory locks.
    PERFORM pg_advisory_xact_lock(1885827956, hashtext(p_stream));
    SELECT coalesce(max(e.stream_version), -1) INTO actual FROM events e WHERE e.stream_id = p_stream;

    SELECT e.stream_version INTO first_v FROM events e
     WHERE e.stream_id = p_stream AND e.event_id = p_ids[1];
    IF FOUND THEN
        -- A resend: idempotent only if the whole batch is stored in order from first_v on, and
        -- the expectation points at the same place it did the first time.
        SELECT count(*) INTO matched
          FROM unnest(p_ids) WITH ORDINALITY AS b(id, i)
          JOIN events e ON e.stream_id = p_stream
                       AND e.stream_version = first_v + b.i - 1
                       AND e.event_id = b.id;
        IF matched = n AND (p_kind IN (0, 2)
                            OR (p_kind = 1 AND first_v = 0)
                            OR (p_kind = 3 AND first_v = p_expected + 1)) THEN
            SELECT 'duplicate', e.stream_version, e.tx_id::text::bigint, e.global_position
              INTO outcome, next_version, commit_pos, prepare_pos
              FROM events e
             WHERE e.stream_id = p_stream AND e.stream_version = first_v + n - 1;
            RETURN;
        END IF;
        outcome := 'wrong';
        RETURN;
    END IF;

    IF (p_kind = 1 AND actual <> -1)
       OR (p_kind = 2 AND actual = -1)
       OR (p_kind = 3 AND actual <> p_expected) THEN
        outcome := 'wrong';
        RETURN;
    END IF;

    -- A later id of the batch already stored in the stream would break the per-stream id
    -- uniqueness; report it as a conflict so that the caller reloads the stream.
    IF n > 1 AND EXISTS (SELECT 1 FROM events e WHERE e.stream_id = p_stream AND e.event_id = ANY (p_ids[2:])) THEN
        outcome := 'wrong';
        RETURN;
    END IF;

    INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
    SELECT p_stream, actual + b.i, b.id, b.typ, b.d::jsonb, b.m::jsonb
      FROM unnest(p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS b(id, typ, d, m, i)
     ORDER BY b.i;

    outcome := 'ok';
    next_version := actual + n;
    commit_pos := pg_current_xact_id()::text::bigint;
    SELECT e.global_position INTO prepare_pos FROM events e
     WHERE e.stream_id = p_stream AND e.stream_version = next_version;
    PERFORM pg_notify('pgstore_events', '');
END
$fn$;
-- +goose StatementEnd

-- pgstore_horizon returns the transaction id below which every append has finished: the oldest
-- transaction that holds the appender mark and already has an id, or, with none, the next id to
-- be assigned. Global reads take events with tx_id below it, so an append still in flight is
-- never passed over. It looks only at appenders, so a long transaction elsewhere on the server
-- (another database, a report) does not hold the event feed back, as pg_snapshot_xmin would.
-- Call it in its own statement BEFORE the statement that reads events: that statement's later
-- snapshot then sees every append that finished below the horizon.
-- The 32-bit xids of pg_locks are widened with the epoch of the current 64-bit xid.
-- +goose StatementBegin
CREATE FUNCTION pgstore_horizon() RETURNS bigint
LANGUAGE sql VOLATILE AS $fn$
    -- w widens a holder's 32-bit xid with the current epoch. An xid ahead of n by less than 2^31
    -- was assigned after this statement's snapshot (so it is ≥ n and cannot lower the horizon);
    -- one ahead by more is from the previous epoch.
    SELECT least(min(n), coalesce(min(CASE WHEN w - n >= 2147483648 THEN w - 4294967296 ELSE w END), min(n)))
      FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n) cur
      LEFT JOIN LATERAL (
            SELECT ((cur.n >> 32) << 32) | x.transactionid::text::bigint AS w
              FROM pg_locks a
              JOIN pg_locks x ON x.pid = a.pid AND x.locktype = 'transactionid'
                             AND x.mode = 'ExclusiveLock' AND x.granted
             WHERE a.locktype = 'advisory' AND a.granted
               AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND a.classid = 1885827957 AND a.objid = 0 AND a.objsubid = 2) h ON true
$fn$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION pgstore_horizon();
DROP FUNCTION pgstore_append(text, int, bigint, uuid[], text[], text[], text[]);
DROP TABLE events;
