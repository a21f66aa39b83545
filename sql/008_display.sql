-- 008_display: what a person reads about the topics.
--   term_form_deltas  each worker batch's (term id, surface form) pairs, one pair per
--                     stored document and term (the form of the term's first occurrence
--                     in it), appended in the batch transaction: no row shared by workers;
--   term_forms        the pairs folded by a worker's upkeep thread (fold_term_forms, each
--                     pass): in how many stored documents each term was written each way.
--                     Counts only grow: every stored version of a document counts once when
--                     it is stored; an update counts again, a delete does not decrement
--                     (forms measure how people write a stem, not the live corpus);
--   topics.display    the term's most frequent form (ties: the smallest), else the stem;
--   topic_labels      names operators give topics (`topicflow label`), kept against the
--                     topic id, which refits keep stable (Hungarian matching);
--   dominant_topics   each live document's dominant topic (largest share of its mixture);
--   topic_summary     per topic of the current model: label, documents whose dominant
--                     topic it is, and their share of the documents with a mixture;
--   document_title    the title of a tracked table's row: its `title` column, else its
--                     first tracked text column;
--   model_epochs      + mean_match and topic_match: at each refit, the cosine of every
--                     topic's term column with the previous model's topic it was matched to
--                     (indexed by topic id; null for a new topic), and their mean.

create table topicflow.term_form_deltas (
    id         bigserial   primary key,
    term_ids   integer[]   not null,
    forms      text[]      not null,
    created_at timestamptz not null default now()
);

create table topicflow.term_forms (
    term_id integer not null,
    form    text    not null,
    docs    bigint  not null,
    primary key (term_id, form)
);

-- One folder at a time (the two-key advisory lock class of store.h, object 2); the others
-- skip. Sorted upserts: even without the lock two folders could not deadlock.
create function topicflow.fold_term_forms() returns bigint
language plpgsql as $$
declare
    folded bigint;
begin
    if not pg_try_advisory_xact_lock(7340155, 2) then
        return 0;
    end if;
    with gone as (
        delete from topicflow.term_form_deltas returning term_ids, forms
    ), pairs as (
        select u.t, u.f, count(*) as n
          from gone, unnest(gone.term_ids, gone.forms) as u(t, f)
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

create or replace view topicflow.topics as
    select t.topic, t.rank, t.term, t.weight, coalesce(d.form, t.term) as display
      from topicflow.topic_terms t
      left join topicflow.terms tm on tm.term = t.term
      left join lateral (select f.form from topicflow.term_forms f
                          where f.term_id = tm.id
                          order by f.docs desc, f.form limit 1) d on true
     where t.model_version = (select max(version) from topicflow.model);

create table topicflow.topic_labels (
    topic      integer     primary key check (topic >= 0),
    label      text        not null check (label <> ''),
    labelled_at timestamptz not null default now()
);

-- Each live document with a mixture, its dominant topic (largest weight; ties: lowest id).
create view topicflow.dominant_topics as
    select d.source, d.doc_id, d.event_id, d.updated_at,
           (select (u.ord - 1)::integer from unnest(d.topics) with ordinality as u(w, ord)
             where u.w > 0 order by u.w desc, u.ord limit 1) as topic
      from topicflow.documents d
     where not d.deleted and d.topics is not null;

create view topicflow.topic_summary as
    with dominant as (
        select topic from topicflow.dominant_topics where topic is not null
    ), counts as (
        select topic, count(*) as documents from dominant group by topic
    ), total as (
        select count(*) as n from dominant
    )
    select g.topic::integer as topic, l.label, coalesce(c.documents, 0) as documents,
           case when total.n > 0 then coalesce(c.documents, 0)::float8 / total.n else 0 end
               as share
      from topicflow.current_model m
     cross join generate_series(0, m.k - 1) as g(topic)
     cross join total
      left join counts c on c.topic = g.topic
      left join topicflow.topic_labels l on l.topic = g.topic;

create function topicflow.document_title(p_source text, p_doc_id text) returns text
language plpgsql stable as $$
declare
    rel regclass := to_regclass(p_source);
    id_col text;
    col text;
    id_type text;
    title text;
begin
    select t.id_column, coalesce(
               (select a.attname::text from pg_attribute a
                 where a.attrelid = rel and a.attname = 'title' and a.attnum > 0
                   and not a.attisdropped), t.text_columns[1])
      into id_col, col
      from topicflow.tracked_tables t where t.source = p_source;
    if rel is null or id_col is null then
        return null;
    end if;
    select format_type(a.atttypid, a.atttypmod) into id_type
      from pg_attribute a where a.attrelid = rel and a.attname = id_col and not a.attisdropped;
    if id_type is null then
        return null;
    end if;
    execute format('select %I::text from %s where %I = $1::%s', col, rel, id_col, id_type)
       into title using p_doc_id;
    return title;
exception when invalid_text_representation or numeric_value_out_of_range then
    return null; -- an id that cannot be one of this table's
end
$$;

alter table topicflow.model_epochs add column mean_match float8, add column topic_match real[];

revoke execute on function topicflow.fold_term_forms() from public;
grant execute on function topicflow.fold_term_forms() to topicflow_worker;
grant insert on topicflow.term_form_deltas to topicflow_worker;
grant usage on sequence topicflow.term_form_deltas_id_seq to topicflow_worker;
grant select, delete on topicflow.term_form_deltas to topicflow_worker;
grant select, insert, update on topicflow.term_forms to topicflow_worker;
