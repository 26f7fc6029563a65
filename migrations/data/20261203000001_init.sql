-- Postgres data: chain tables, user datasets (one schema per tenant) and alerts.

create schema chain;

create table chain.blocks (
    chain_id            bigint not null,
    number              bigint not null,
    hash                text not null,
    parent_hash         text not null,
    timestamp           timestamptz not null,
    miner               text not null,
    gas_used            bigint not null,
    gas_limit           bigint not null,
    base_fee_per_gas    numeric(78, 0),
    transaction_count   integer not null,
    primary key (chain_id, number)
);

create table chain.transactions (
    chain_id            bigint not null,
    block_number        bigint not null,
    transaction_index   integer not null,
    hash                text not null,
    from_address        text not null,
    to_address          text,
    value               numeric(78, 0) not null,
    gas                 bigint not null,
    gas_price           numeric(78, 0),
    nonce               bigint not null,
    input               text not null,
    type                integer not null,
    primary key (chain_id, block_number, transaction_index)
);

create index transactions_hash on chain.transactions (hash);

create table chain.logs (
    chain_id            bigint not null,
    block_number        bigint not null,
    block_hash          text not null,
    transaction_hash    text not null,
    transaction_index   integer not null,
    log_index           integer not null,
    address             text not null,
    topic0              text,
    topic1              text,
    topic2              text,
    topic3              text,
    data                text not null,
    primary key (chain_id, block_number, log_index)
);

create index logs_topic0 on chain.logs (topic0, block_number);
create index logs_address on chain.logs (address, block_number);

-- Every batch a sink has applied, so a replayed or duplicated batch changes nothing.
create table sink_batches (
    batch_id    text primary key,
    tenant_id   text not null,
    job_id      uuid not null,
    task_id     uuid not null,
    attempt     integer not null,
    kind        text not null check (kind in ('records', 'alerts')),
    dataset     text,
    rows        integer not null,
    applied_at  timestamptz not null default now()
);

create index sink_batches_job on sink_batches (job_id);

-- Batches a sink could not apply, with the reason, so nothing is dropped silently.
create table sink_rejects (
    batch_id    text primary key,
    tenant_id   text not null,
    job_id      uuid not null,
    reason      text not null,
    rejected_at timestamptz not null default now()
);

-- Datasets: the declared columns of every tenant dataset.
create table datasets (
    tenant_id   text not null,
    name        text not null,
    columns     jsonb not null,
    created_at  timestamptz not null default now(),
    primary key (tenant_id, name)
);

create table alerts (
    id          text primary key,
    tenant_id   text not null,
    job_id      uuid not null,
    task_id     uuid not null,
    attempt     integer not null,
    key         text not null,
    severity    text not null,
    title       text not null,
    payload     jsonb not null,
    created_at  timestamptz not null default now()
);

create index alerts_job on alerts (job_id);
create index alerts_created on alerts (created_at, id);
