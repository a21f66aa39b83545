-- 013_term_form_counts: a worker batch's written forms counted before they are stored.
--   term_form_deltas.counts  how many of the batch's stored documents wrote term_ids[i] as
--                       forms[i]: each (term, form) pair once per batch instead of once per
--                       document and term. A batch of 500 sample postings carried 39,198
--                       pairs, 2,173 of them distinct; parsing, compressing and folding the
--                       uncounted arrays was the largest PostgreSQL stage of a batch
--                       (`record` in bench/run worker). NULL (a row of a worker older than
--                       this migration): one document per pair, as before.
--   fold_term_forms     sums the counts.
-- The three arrays are compressed with lz4 where the server has it (pglz took ~2x longer on
-- a 200 KB row, measured on the shared 2-core test machine).
alter table topicflow.term_form_deltas add column counts integer[];

alter table topicflow.term_form_deltas add constraint term_form_deltas_counts_match
    check (counts is null or cardinality(counts) = cardinality(term_ids));

do $$
begin
    begin
        perform set_config('default_toast_compression', 'lz4', true);
    exception when others then
        raise notice 'lz4 is not available: term_form_deltas keeps pglz compression';
        return;
    end;
    alter table topicflow.term_form_deltas alter column term_ids set compression lz4,
        alter column forms set compression lz4, alter column counts set compression lz4;
end
$$;

create or replace function topicflow.fold_term_forms() returns bigint
language plpgsql as $$
declare
    folded bigint;
begin
    if not pg_try_advisory_xact_lock(7340155, 2) then
        return 0;
    end if;
    with gone as (
        delete from topicflow.term_form_deltas returning term_ids, forms, counts
    ), pairs as (
        select u.t, u.f, sum(coalesce(u.c, 1)) as n
          from gone, unnest(gone.term_ids, gone.forms, gone.counts) as u(t, f, c)
         where u.t is not null and u.f is not null
         group by u.t, u.f
    )
    insert into topicflow.term_forms as tf (term_id, form, docs)
    select t, f, n from pairs order by t, f
    on conflict (term_id, form) do update set docs = tf.docs + excluded.docs;
    get diagnostics folded = row_count;
    return folded;
end
$$;
