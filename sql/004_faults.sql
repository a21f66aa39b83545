-- 004_faults: what production did to the capture and the outbox that the first design missed.
--
-- 1. Rows the producer cannot publish (a payload that is not a JSON object, a message over the
--    size limit) are set aside in topicflow.outbox_rejected with their reason instead of
--    blocking every row behind them; `topicflow outbox` lists, retries or discards them.
-- 2. Versions are counted per document (source table, id), the key the worker compares
--    them by: re-tracking a table under a new aggregate type no longer restarts its versions.
-- 3. A key change emits the old key's delete only when no row holds the old key at the end
--    of the statement (a swap of two keys in one statement keeps both documents live), and
--    track() requires the id column to be unique.

-- ---- 1. rows set aside -----------------------------------------------------------------

create table topicflow.outbox_rejected (
    id             bigint      primary key,        -- the outbox id it had (and gets back on retry)
    source         text        not null,
    aggregate_type text        not null,
    aggregate_id   text        not null,
    event_type     text        not null,
    version        bigint      not null,
    payload        jsonb       not null,
    created_at     timestamptz not null,
    replay_of      bigint,
    rejected_at    timestamptz not null default clock_timestamp(),
    reason         text        not null
);

-- Moves one unpublished outbox row aside with its reason. The producer calls it in the
-- transaction that locked the row; it can move nothing else (published rows stay).
create function topicflow.outbox_set_aside(p_id bigint, p_reason text) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    with moved as (
        delete from topicflow.outbox where id = p_id and published_at is null
        returning id, source, aggregate_type, aggregate_id, event_type, version, payload,
                  created_at, replay_of)
    insert into topicflow.outbox_rejected (id, source, aggregate_type, aggregate_id, event_type,
                                           version, payload, created_at, replay_of, reason)
    select id, source, aggregate_type, aggregate_id, event_type, version, payload, created_at,
           replay_of, left(coalesce(p_reason, 'unknown'), 1000)
      from moved;
    return found;
end
$$;

-- Puts a set-aside row back into the outbox under its own id (an operator fixed the cause,
-- or wants to see it fail again); the producer picks it up like any unpublished row.
create function topicflow.outbox_retry(p_id bigint) returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    with back as (
        delete from topicflow.outbox_rejected where id = p_id
        returning id, source, aggregate_type, aggregate_id, event_type, version, payload,
                  created_at, replay_of)
    insert into topicflow.outbox (id, source, aggregate_type, aggregate_id, event_type, version,
                                  payload, created_at, replay_of)
    select id, source, aggregate_type, aggregate_id, event_type, version, payload, created_at,
           replay_of
      from back;
    if found then
        perform pg_notify('topicflow_outbox', '');
    end if;
    return found;
end
$$;

revoke execute on function topicflow.outbox_set_aside(bigint, text) from public;
revoke execute on function topicflow.outbox_retry(bigint) from public;
grant execute on function topicflow.outbox_set_aside(bigint, text) to topicflow_producer;

-- ---- 2. versions per document ------------------------------------------------------------

create table topicflow.document_versions (
    source       text   not null,
    aggregate_id text   not null,
    version      bigint not null,
    primary key (source, aggregate_id)
);

-- Continue every document from the highest version it ever had, whichever aggregate type
-- it was counted under: the outbox (and rows set aside), the stored documents, and the old
-- per-aggregate counters of the tables tracked under that type now.
insert into topicflow.document_versions (source, aggregate_id, version)
select source, aggregate_id, max(version)
  from (select source, aggregate_id, version from topicflow.outbox
        union all
        select source, doc_id, version from topicflow.documents
        union all
        select t.source, a.aggregate_id, a.version
          from topicflow.aggregate_versions a
          join topicflow.tracked_tables t on t.aggregate_type = a.aggregate_type) v
 group by source, aggregate_id;

create or replace function topicflow.emit(p_source text, p_aggregate text, p_id text, p_event text,
                                          p_payload jsonb) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
    v bigint;
begin
    insert into topicflow.document_versions as d (source, aggregate_id, version)
    values (p_source, p_id, 1)
    on conflict (source, aggregate_id) do update set version = d.version + 1
    returning d.version into v;
    insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type, version, payload)
    values (p_source, p_aggregate, p_id, p_event, v, p_payload);
    -- Tell the statement-level trigger that this statement produced at least one event.
    perform set_config('topicflow.pending_notify', 'on', true);
end
$$;

-- ---- 3. key changes and unique ids -------------------------------------------------------

-- 1 when a row of tbl holds key (compared in the column's own type, so its index serves).
create function topicflow.key_exists(tbl regclass, id_column text, key text) returns boolean
language plpgsql stable security definer set search_path = pg_catalog, pg_temp as $$
declare
    typ text;
    hit boolean;
begin
    select format_type(atttypid, atttypmod) into typ
      from pg_attribute where attrelid = tbl and attname = id_column and not attisdropped;
    execute format('select exists (select 1 from %s where %I = $1::%s)', tbl, id_column, typ)
       into hit using key;
    return hit;
end
$$;

create or replace function topicflow.capture() returns trigger
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
        -- AFTER ROW triggers run at the end of the statement, so the table is final here:
        -- when another row of the same statement took the old key (a swap), that key's
        -- document lives on with that row's content (its own trigger emits it), so no delete.
        if not topicflow.key_exists(TG_RELID, id_column, old_row ->> id_column) then
            perform topicflow.emit(src, aggregate, old_row ->> id_column, 'deleted', '{}');
        end if;
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

create or replace function topicflow.track(tbl regclass, id_column text, text_columns text[],
                                           aggregate_type text) returns void
language plpgsql as $$
declare
    c text;
    col smallint;
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
    -- One document per id: the column must be a primary key or have a unique index of its
    -- own (a partial or expression index does not make it unique).
    select attnum into col from pg_attribute where attrelid = tbl and attname = id_column;
    if not exists (select 1 from pg_index i
                    where i.indrelid = tbl and i.indisunique and i.indnkeyatts = 1
                      and i.indkey[0] = col and i.indpred is null and i.indexprs is null) then
        raise exception 'topicflow.track: column "%" of % is not unique (it needs a primary key or a unique index of its own)',
            id_column, tbl;
    end if;
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

-- The old per-aggregate counters are no longer written; kept (empty of new rows) so that an
-- older producer or dashboard reading them does not fail during an upgrade.
comment on table topicflow.aggregate_versions is 'superseded by topicflow.document_versions (004)';
