-- Postgres state: the control plane's source of truth.

create table tenants (
    id          text primary key check (id ~ '^[a-z][a-z0-9_]{0,31}$'),
    name        text not null,
    created_at  timestamptz not null default now()
);

-- API keys are stored as the SHA-256 of the key; the key itself is shown once.
create table api_keys (
    key_hash    text primary key,
    tenant_id   text not null references tenants (id),
    role        text not null check (role in ('admin', 'member')),
    label       text not null,
    created_at  timestamptz not null default now()
);

-- The component registry. Bytes live in object storage under their digest.
create table components (
    tenant_id   text not null references tenants (id),
    name        text not null,
    version     text not null,
    digest      text not null,
    size_bytes  bigint not null,
    world       text not null,
    imports     text[] not null,
    created_at  timestamptz not null default now(),
    constraint components_pkey primary key (tenant_id, name, version)
);

create table jobs (
    id                  uuid primary key,
    tenant_id           text not null references tenants (id),
    kind                text not null check (kind in ('udf', 'ingest')),
    component_name      text,
    component_version   text,
    component_digest    text,
    params              jsonb not null,
    chain_id            bigint not null,
    from_block          bigint not null,
    to_block            bigint not null,
    chunk_size          bigint not null check (chunk_size > 0),
    state               text not null check (state in ('running', 'succeeded', 'failed', 'cancelled')),
    max_attempts        integer not null,
    created_at          timestamptz not null default now(),
    finished_at         timestamptz,
    check (from_block <= to_block),
    check (kind <> 'udf' or component_digest is not null)
);

create index jobs_tenant on jobs (tenant_id, created_at desc);

-- One task per chunk. `attempt` is the fencing token of the current lease.
create table tasks (
    id                  uuid primary key,
    job_id              uuid not null references jobs (id),
    seq                 integer not null,
    from_block          bigint not null,
    to_block            bigint not null,
    -- For ingest over a recorded set of blocks: exactly which blocks to fetch.
    blocks              bigint[],
    state               text not null check (state in ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    attempt             integer not null default 0,
    lease_owner         text,
    lease_expires_at    timestamptz,
    summary             jsonb,
    records_published   bigint not null default 0,
    alerts_published    bigint not null default 0,
    error               text,
    error_class         text,
    updated_at          timestamptz not null default now(),
    constraint tasks_job_seq unique (job_id, seq)
);

create index tasks_job_state on tasks (job_id, state);
create index tasks_lease on tasks (lease_expires_at) where state = 'running';

create table task_attempts (
    task_id     uuid not null references tasks (id),
    attempt     integer not null,
    worker_id   text not null,
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    outcome     text,
    reason      text,
    class       text,
    primary key (task_id, attempt)
);

create table task_logs (
    id          bigserial primary key,
    task_id     uuid not null references tasks (id),
    attempt     integer not null,
    level       text not null,
    message     text not null,
    fields      jsonb not null default '{}',
    at          timestamptz not null default now()
);

create index task_logs_task on task_logs (task_id, attempt, id);

-- The transactional outbox: written with the job, relayed to the task queues.
create table outbox (
    id          bigserial primary key,
    queue       text not null,
    body        jsonb not null,
    created_at  timestamptz not null default now(),
    sent_at     timestamptz
);

create index outbox_unsent on outbox (id) where sent_at is null;

-- The embedded queue backend (production uses SQS behind the same trait).
create table queue_messages (
    id              bigserial primary key,
    queue           text not null,
    body            jsonb not null,
    visible_at      timestamptz not null default now(),
    receive_count   integer not null default 0,
    receipt         uuid,
    created_at      timestamptz not null default now()
);

create index queue_messages_ready on queue_messages (queue, visible_at, id);

create table webhook_endpoints (
    id          uuid primary key,
    tenant_id   text not null references tenants (id),
    url         text not null,
    secret      text not null,
    created_at  timestamptz not null default now()
);

create table deliveries (
    alert_id        text not null,
    endpoint_id     uuid not null references webhook_endpoints (id),
    tenant_id       text not null,
    job_id          uuid not null,
    state           text not null check (state in ('pending', 'delivered', 'failed')),
    attempts        integer not null default 0,
    last_status     integer,
    last_error      text,
    next_attempt_at timestamptz not null default now(),
    delivered_at    timestamptz,
    primary key (alert_id, endpoint_id)
);

create index deliveries_due on deliveries (next_attempt_at) where state = 'pending';

create table audit_log (
    id          bigserial primary key,
    tenant_id   text not null,
    principal   text not null,
    action      text not null,
    target      text not null,
    detail      jsonb not null default '{}',
    at          timestamptz not null default now()
);
