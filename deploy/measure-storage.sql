-- Table + index (+ TOAST) bytes of a loaded cohort, per table and per ED encounter: the figures in docs/scaling.md.
--   psql "$DATABASE_URL" -f deploy/measure-storage.sql
-- Run VACUUM ANALYZE first for settled sizes and row estimates (it is done here). Tables that grow with the
-- cohort are told apart from the fixed ones (code tables, rules, keys) by whether they hold encounter rows.
\set ON_ERROR_STOP on
vacuum analyze;
with sizes as (
  select c.relname as table_name,
         pg_total_relation_size(c.oid) as total_bytes,
         pg_relation_size(c.oid) as heap_bytes,
         pg_indexes_size(c.oid) as index_bytes,
         c.reltuples::bigint as rows_estimated
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind = 'r' and n.nspname = 'public'
),
encounters as (select count(*)::numeric as n from cohort_encounter)
select table_name,
       rows_estimated,
       pg_size_pretty(total_bytes) as total,
       pg_size_pretty(heap_bytes) as heap,
       pg_size_pretty(index_bytes) as indexes,
       round(total_bytes / nullif((select n from encounters), 0)) as bytes_per_encounter
from sizes
order by total_bytes desc;

select (select count(*) from cohort_encounter) as encounters,
       (select count(*) from encounter_item) as items,
       round((select count(*) from encounter_item)::numeric / nullif((select count(*) from cohort_encounter), 0), 1) as items_per_encounter,
       pg_size_pretty(pg_database_size(current_database())) as database_size,
       round(pg_database_size(current_database())::numeric / nullif((select count(*) from cohort_encounter), 0)) as database_bytes_per_encounter;
