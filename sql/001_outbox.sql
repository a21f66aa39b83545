-- 001_outbox: the event log and its capture.
-- topicflow.outbox is the source of truth for every change of a tracked table: a row is
-- written by a trigger in the writer's own transaction, so an event exists if and only if
-- the change committed. topicflow-producer publishes rows and sets published_at only after
-- the broker confirmed them.

create table topicflow.outbox (
    id             bigserial   primary key,
    source         text        not null,            -- the tracked table, e.g. public.internships
    aggregate_type text        not null,
    aggregate_id   text        not null,
    event_type     text        not null check (event_type in ('created', 'updated', 'deleted')),
    version        bigint      not null,            -- 1, 2, 3, ... per aggregate
    payload        jsonb       not null,            -- tracked text columns: {"title": "..."}
    created_at     timestamptz not null default clock_timestamp(),
    published_at   timestamptz
);
-- The producer's work list: small however long the history is.
create index outbox_unpublished on topicflow.outbox (id) where published_at is null;
-- Retention finds old published rows through a BRIN index: marking a row published inserts
-- into every index of the outbox (the update cannot be HOT), and a BRIN insert costs almost
-- nothing, where a B-tree on published_at cost ~8 µs of server CPU per published event.
create index outbox_published_at on topicflow.outbox using brin (published_at);

-- The last version handed out per aggregate. Writers of one aggregate already serialize on
-- its row lock, so this row adds no contention between different aggregates.
create table topicflow.aggregate_versions (
    aggregate_type text   not null,
    aggregate_id   text   not null,
    version        bigint not null,
    primary key (aggregate_type, aggregate_id)
);

create table topicflow.tracked_tables (
    source         text        primary key,         -- regclass as text, schema-qualified
    id_column      text        not null,
    text_columns   text[]      not null,
    aggregate_type text        not null unique,
    tracked_at     timestamptz not null default now()
);

-- A tracked column's value as the text the topic model reads: arrays are joined with ", ",
-- NULL is absent (returns NULL).
create function topicflow.column_text(v jsonb) returns text
language sql immutable as $$
    select case jsonb_typeof(v)
        when 'null' then null
        when 'string' then v #>> '{}'
        when 'array' then (select string_agg(coalesce(e #>> '{}', ''), ', ' order by i)
                             from jsonb_array_elements(v) with ordinality as t(e, i)
                            where jsonb_typeof(e) <> 'null')
        else v #>> '{}'
    end
$$;

create function topicflow.emit(p_source text, p_aggregate text, p_id text, p_event text,
                               p_payload jsonb) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    v bigint;
begin
    insert into topicflow.aggregate_versions as a (aggregate_type, aggregate_id, version)
    values (p_aggregate, p_id, 1)
    on conflict (aggregate_type, aggregate_id) do update set version = a.version + 1
    returning a.version into v;
    insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type, version, payload)
    values (p_source, p_aggregate, p_id, p_event, v, p_payload);
    -- Tell the statement-level trigger that this statement produced at least one event.
    perform set_config('topicflow.pending_notify', 'on', true);
end
$$;

-- Row trigger. Arguments: id column, aggregate type, tracked columns as a text[] literal.
create function topicflow.capture() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    id_column text := TG_ARGV[0];
    aggregate text := TG_ARGV[1];
    cols      text[] := TG_ARGV[2]::text[];
    src       text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    new_row   jsonb;
    old_row   jsonb;
    payload   jsonb := '{}';
    c         text;
    changed   boolean := false;
begin
    if TG_OP in ('UPDATE', 'DELETE') then
        old_row := to_jsonb(OLD);
    end if;
    if TG_OP in ('INSERT', 'UPDATE') then
        new_row := to_jsonb(NEW);
        foreach c in array cols loop
            if topicflow.column_text(new_row -> c) is not null then
                payload := payload || jsonb_build_object(c, topicflow.column_text(new_row -> c));
            end if;
        end loop;
    end if;

    if TG_OP = 'DELETE' then
        perform topicflow.emit(src, aggregate, old_row ->> id_column, 'deleted', '{}');
    elsif TG_OP = 'INSERT' then
        perform topicflow.emit(src, aggregate, new_row ->> id_column, 'created', payload);
    elsif (old_row ->> id_column) is distinct from (new_row ->> id_column) then
        -- The key itself changed: to a reader that is one document gone and another new.
        perform topicflow.emit(src, aggregate, old_row ->> id_column, 'deleted', '{}');
        perform topicflow.emit(src, aggregate, new_row ->> id_column, 'created', payload);
    else
        foreach c in array cols loop
            if (old_row -> c) is distinct from (new_row -> c) then
                changed := true;
                exit;
            end if;
        end loop;
        if changed then
            perform topicflow.emit(src, aggregate, new_row ->> id_column, 'updated', payload);
        end if;
    end if;
    return null;
end
$$;

-- Statement trigger: one NOTIFY per statement that emitted events (none for an UPDATE that
-- touched no tracked column). NOTIFY takes a lock at commit that serializes committing
-- writers; `ALTER DATABASE ... SET topicflow.notify = off` turns it off, and the producer's
-- poll interval then bounds the delay.
create function topicflow.notify_outbox() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    if current_setting('topicflow.pending_notify', true) = 'on' then
        perform set_config('topicflow.pending_notify', 'off', true);
        if coalesce(nullif(current_setting('topicflow.notify', true), ''), 'on') <> 'off' then
            perform pg_notify('topicflow_outbox', '');
        end if;
    end if;
    return null;
end
$$;

-- TRUNCATE fires no row triggers, so it would delete documents without events: refuse it.
create function topicflow.refuse_truncate() returns trigger
language plpgsql as $$
begin
    raise exception 'topicflow: % is tracked; TRUNCATE would lose its delete events, use DELETE',
        format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
end
$$;

create function topicflow.track(tbl regclass, id_column text, text_columns text[],
                                aggregate_type text) returns void
language plpgsql as $$
declare
    c text;
begin
    if coalesce(cardinality(text_columns), 0) = 0 then
        raise exception 'topicflow.track: no text columns given for %', tbl;
    end if;
    if aggregate_type !~ '^[a-z][a-z0-9_]*$' then
        raise exception 'topicflow.track: aggregate type "%" must match [a-z][a-z0-9_]*', aggregate_type;
    end if;
    foreach c in array array_prepend(id_column, text_columns) loop
        if not exists (select 1 from pg_attribute
                        where attrelid = tbl and attname = c and attnum > 0 and not attisdropped) then
            raise exception 'topicflow.track: column "%" does not exist in %', c, tbl;
        end if;
    end loop;
    execute format('drop trigger if exists topicflow_capture on %s', tbl);
    execute format('drop trigger if exists topicflow_notify on %s', tbl);
    execute format('drop trigger if exists topicflow_no_truncate on %s', tbl);
    execute format('create trigger topicflow_capture after insert or update or delete on %s '
                   'for each row execute function topicflow.capture(%L, %L, %L)',
                   tbl, id_column, aggregate_type, text_columns::text);
    execute format('create trigger topicflow_notify after insert or update or delete on %s '
                   'for each statement execute function topicflow.notify_outbox()', tbl);
    execute format('create trigger topicflow_no_truncate before truncate on %s '
                   'for each statement execute function topicflow.refuse_truncate()', tbl);
    -- Schema-qualified whatever the search_path, exactly as the capture trigger names it.
    insert into topicflow.tracked_tables (source, id_column, text_columns, aggregate_type)
    select format('%I.%I', n.nspname, c.relname), id_column, text_columns, aggregate_type
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = tbl
    on conflict (source) do update
        set id_column = excluded.id_column, text_columns = excluded.text_columns,
            aggregate_type = excluded.aggregate_type, tracked_at = now();
end
$$;

-- The bundled example source: internship postings (a public contract, see DESIGN.md).
create table if not exists public.internships (
    id          bigint generated always as identity primary key,
    title       text not null,
    company     text,
    location    text,
    description text,
    skills      text[],
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now()
);

create function topicflow.touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := now();
    return new;
end
$$;
create trigger internships_touch before update on public.internships
    for each row execute function topicflow.touch_updated_at();

select topicflow.track('public.internships', 'id', array['title', 'description', 'skills'], 'internship');

-- Roles without passwords: the operator sets them (ALTER ROLE ... PASSWORD ...).
-- Roles are cluster-wide: another database's migration may create them at the same moment.
do $$
begin
    begin
        create role topicflow_producer login;
    exception when duplicate_object or unique_violation then null;
    end;
    begin
        create role topicflow_worker login;
    exception when duplicate_object or unique_violation then null;
    end;
end
$$;
grant usage on schema topicflow to topicflow_producer, topicflow_worker;
-- The producer reads events, marks them published and deletes old published ones.
grant select, delete on topicflow.outbox to topicflow_producer;
grant update (published_at) on topicflow.outbox to topicflow_producer;
