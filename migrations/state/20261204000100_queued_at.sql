-- When each queued task last became queued, for the age of the oldest queued
-- task: `updated_at` cannot tell it, as the reconciler touches it on every
-- wake-up it re-sends. A trigger sets it on every path into `queued`.
alter table tasks add column queued_at timestamptz;
-- Tasks queued before this migration have only `updated_at`, which may be
-- younger than their real wait; they count from it until next queued.
update tasks set queued_at = updated_at where state = 'queued';

create function tasks_set_queued_at() returns trigger language plpgsql as $$
begin
    if new.state = 'queued' and (tg_op = 'INSERT' or old.state <> 'queued') then
        new.queued_at := now();
    end if;
    return new;
end
$$;

create trigger tasks_queued_at before insert or update of state on tasks
    for each row execute function tasks_set_queued_at();

create index tasks_queued on tasks (queued_at) where state = 'queued';
