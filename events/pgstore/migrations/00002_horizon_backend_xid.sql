-- +goose Up
-- pgstore_horizon, second version: an appender's transaction id is read from its backend's
-- activity (backend_xid of pg_stat_get_activity, the function behind pg_stat_activity, asked
-- only for the mark holders), no longer from its transactionid lock in pg_locks. It also reads
-- pg_locks once instead of twice: it costs less than the first version.
--
-- Why: PostgreSQL publishes a new transaction id to snapshots (GetNewTransactionId) before it
-- inserts the transaction's lock on that id (XactLockTableInsert), and that insert waits for the
-- lock-table partition, which every pg_locks read holds. In between, the first version saw an
-- appender that holds the mark and already has its id, but no id lock, so it ignored it:
--   appender A takes the mark, gets xid 100, waits to insert its xid lock;
--   appender B gets xid 101, inserts its event and commits;
--   a reader's horizon is 102 (A is invisible), it reads B's event and moves past (101, …);
--   A inserts its event with tx_id 100 and commits: every reader is past it, it is never read.
-- A projector then passed an acknowledged session.started without applying it (its API key was
-- never projected) while read-your-writes waits released, because the projector was past the
-- position. backend_xid is the per-backend value snapshots read (PGPROC), set while the id is
-- handed out, before any later id can be: an appender whose id is below this statement's
-- snapshot xmax holds the mark (taken before its id) and shows that id until it ends, and once
-- it has ended the read that follows sees its rows.
-- The proof is TestHorizonCountsAppenderBeforeItsXidLock (it stops an appender in that window).
-- backend_xid is shown for every role's sessions (no pg_read_all_stats needed), like pg_locks.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION pgstore_horizon() RETURNS bigint
LANGUAGE sql VOLATILE AS $fn$
    -- w widens a holder's 32-bit xid with the current epoch. An xid ahead of n by less than 2^31
    -- was assigned after this statement's snapshot (so it is ≥ n and cannot lower the horizon);
    -- one ahead by more is from the previous epoch. A holder without an xid yet gets one ≥ n.
    SELECT least(min(n), coalesce(min(CASE WHEN w - n >= 2147483648 THEN w - 4294967296 ELSE w END), min(n)))
      FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n) cur
      LEFT JOIN LATERAL (
            SELECT ((cur.n >> 32) << 32) | s.backend_xid::text::bigint AS w
              FROM pg_locks a
              CROSS JOIN LATERAL pg_stat_get_activity(a.pid) s
             WHERE a.locktype = 'advisory' AND a.granted
               AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND a.classid = 1885827957 AND a.objid = 0 AND a.objsubid = 2
               AND s.backend_xid IS NOT NULL) h ON true
$fn$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION pgstore_horizon() RETURNS bigint
LANGUAGE sql VOLATILE AS $fn$
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
