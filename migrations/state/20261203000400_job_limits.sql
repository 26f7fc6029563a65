-- The limits a job asked for (a JSON object of trace_common::limits::JobLimits);
-- `{}` runs every task under the deployment's own.
alter table jobs add column limits jsonb not null default '{}';
