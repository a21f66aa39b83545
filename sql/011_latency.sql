-- 011_latency: what the traced stalls of the stream came from (bench/run worker, issue 13).
--   outbox_delete_published  the producer's retention pass (every 5 s, on its main loop, so
--                       publishing waits for it): as a SQL function its statement got a
--                       generic plan, which walked the outbox's primary key through every
--                       row looking for old published ones (205-312 ms at 108,000 rows on
--                       the shared test machine, growing with the outbox: the stalls of
--                       100-400 ms every ~5 s). It now plans for the actual cutoff, which
--                       takes the BRIN index on published_at (0.4 ms when nothing is old).
--   outbox_published_at  that BRIN index summarizes each block range as it fills
--                       (autosummarize): ranges not yet summarized match every search, so
--                       the pass would otherwise read the outbox's tail since the last vacuum.
-- The model's large values compressed with lz4 instead of pglz:
--   model.blob          W and the sufficient statistics (20 MB at 55,000 documents, ~2:1):
--                       written at every refresh and refit, read by every worker at every
--                       version. pglz took ~3.5x longer than lz4 to store it (measured:
--                       2.5 s vs 0.72 s for 20.8 MB, on the shared 2-core test machine), a
--                       CPU burst of a PostgreSQL backend every refresh that delayed the
--                       stream's batches on a small machine; lz4 also compresses it better
--                       (7.98 MB vs 8.87 MB).
--   model_deltas.delta  each batch's statistics delta (up to ~1 MB for 256 documents).
-- Values already stored keep their compression until rewritten. A server built without lz4
-- keeps pglz (the DO block checks).
do $$
begin
    begin
        perform set_config('default_toast_compression', 'lz4', true);
    exception when others then
        raise notice 'lz4 is not available: the model keeps pglz compression';
        return;
    end;
    alter table topicflow.model alter column blob set compression lz4;
    alter table topicflow.model_deltas alter column delta set compression lz4;
end
$$;

alter index topicflow.outbox_published_at set (autosummarize = on);

create or replace function topicflow.outbox_delete_published(p_age_s float8, p_limit integer) returns bigint
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    deleted bigint;
begin
    -- The bounds as literals: a plan for these values, not a generic one.
    execute format(
        'with gone as ('
        '    delete from topicflow.outbox where id in ('
        '        select id from topicflow.outbox'
        '         where published_at is not null and published_at < %L::timestamptz'
        '         order by id limit %s for update skip locked)'
        '    returning 1)'
        ' select count(*) from gone',
        now() - make_interval(secs => greatest(p_age_s, 0)), greatest(p_limit, 0))
    into deleted;
    return deleted;
end
$$;
