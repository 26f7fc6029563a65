-- Exactly once per completed attempt: batches are staged until the
-- dispatcher commits their attempt, then made visible together.

-- What became of each batch: `staged` (waiting for its commit), `applied`
-- (its rows are visible), `rejected` (refused, reason in sink_rejects) or
-- `discarded` (its attempt will never count). Rows from before staging
-- existed were applied as they arrived.
alter table sink_batches add column state text not null default 'applied'
    check (state in ('staged', 'applied', 'rejected', 'discarded'));
alter table sink_batches alter column state drop default;
create index sink_batches_attempt on sink_batches (task_id, attempt);

-- The bodies of staged batches, deleted once their attempt is committed or
-- discarded.
create table sink_staged (
    batch_id    text primary key references sink_batches (batch_id),
    task_id     uuid not null,
    attempt     integer not null,
    seq         integer not null,
    body        jsonb not null
);

create index sink_staged_attempt on sink_staged (task_id, attempt, seq);

-- One row per task the sinks have heard of; its lock orders everything that
-- happens to the task's batches. `commit_attempt` is the attempt the
-- dispatcher committed (with how many batches it sent), `committed_at` when
-- its batches became visible, `discarded_through` the highest attempt known
-- never to count (attempts are numbered in order, and one starts only after
-- the one before it ended, so every lower attempt is discarded too).
create table sink_tasks (
    task_id             uuid primary key,
    tenant_id           text not null,
    job_id              uuid not null,
    commit_attempt      integer,
    commit_batches      integer,
    committed_at        timestamptz,
    discarded_through   integer not null default 0
);

alter table sink_rejects add column task_id uuid;
alter table sink_rejects add column attempt integer;
