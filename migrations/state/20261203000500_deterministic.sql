-- Whether a job's tasks run deterministically (fuel, fixed clocks, seeded
-- random); every job before this column ran normally.
alter table jobs add column deterministic boolean not null default false;
