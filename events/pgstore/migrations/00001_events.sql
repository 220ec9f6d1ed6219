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

-- +goose Down
DROP FUNCTION pgstore_append(text, int, bigint, uuid[], text[], text[], text[]);
DROP TABLE events;
