-- Retries with backoff, and retrying a job's dead tasks.

-- An outbox row is relayed no earlier than this: a transient failure's
-- wake-up waits out its backoff here, durably, whatever the queue backend.
alter table outbox add column not_before timestamptz not null default now();

drop index outbox_unsent;
create index outbox_unsent on outbox (not_before, id) where sent_at is null;

-- Attempts are numbered for the task's whole life (the number is the lease's
-- fencing token and tags everything the attempt published, so it is never
-- reused); `attempt_base` is the attempt a retry started from, so the budget
-- of `jobs.max_attempts` counts from there.
alter table tasks add column attempt_base integer not null default 0;
