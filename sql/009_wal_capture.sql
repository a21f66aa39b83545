-- 009_wal_capture: log-based capture (capture mode `wal`, docs/ARCHITECTURE.md "Capture").
-- A table tracked in wal mode has no capture triggers: it is a member of the publication
-- topicflow_capture, and topicflow-producer --capture wal reads its changes from a logical
-- replication slot (plugin pgoutput) and turns them into the same messages the outbox mode
-- sends. The writer's transaction writes nothing extra. tracked_tables says, per table, which
-- mode captures it; the producer maps pgoutput's relations to id column, text columns and
-- aggregate type through it.

alter table topicflow.tracked_tables
    add column capture text not null default 'outbox' check (capture in ('outbox', 'wal'));

-- Only inserts, updates and deletes: TRUNCATE stays refused by the trigger, as in outbox mode.
create publication topicflow_capture with (publish = 'insert, update, delete');

-- The slot of this database (slots are per cluster, so the database is in the name).
create function topicflow.capture_slot() returns text
language sql stable as $$
    select left('topicflow_' || regexp_replace(lower(current_database()), '[^a-z0-9_]', '_', 'g'), 63)
$$;

drop function topicflow.track(regclass, text, text[], text);

create function topicflow.track(tbl regclass, id_column text, text_columns text[],
                                aggregate_type text, capture text default 'outbox') returns void
language plpgsql as $$
declare
    c text;
    col smallint;
    src text;
    was text;
begin
    if capture not in ('outbox', 'wal') then
        raise exception 'topicflow.track: capture "%" is not outbox or wal', capture;
    end if;
    -- Slot first: a logical slot cannot be created once this transaction wrote anything.
    -- Every change committed after it exists is decoded, so nothing between tracking and
    -- the producer's first start is missed.
    if capture = 'wal' then
        if current_setting('wal_level') <> 'logical' then
            raise exception 'topicflow.track: capture wal needs wal_level = logical (it is %)',
                current_setting('wal_level');
        end if;
        if not exists (select 1 from pg_replication_slots
                        where slot_name = topicflow.capture_slot()) then
            perform pg_create_logical_replication_slot(topicflow.capture_slot(), 'pgoutput');
        end if;
    end if;
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
    select format('%I.%I', n.nspname, r.relname) into src
      from pg_class r join pg_namespace n on n.oid = r.relnamespace where r.oid = tbl;
    select t.capture into was from topicflow.tracked_tables t where t.source = src;

    execute format('drop trigger if exists topicflow_capture on %s', tbl);
    execute format('drop trigger if exists topicflow_notify on %s', tbl);
    execute format('drop trigger if exists topicflow_no_truncate on %s', tbl);
    -- TRUNCATE would delete documents without events in either mode: refused in both.
    execute format('create trigger topicflow_no_truncate before truncate on %s '
                   'for each statement execute function topicflow.refuse_truncate()', tbl);
    if capture = 'outbox' then
        execute format('create trigger topicflow_capture after insert or update or delete on %s '
                       'for each row execute function topicflow.capture(%L, %L, %L)',
                       tbl, id_column, aggregate_type, text_columns::text);
        execute format('create trigger topicflow_notify after insert or update or delete on %s '
                       'for each statement execute function topicflow.notify_outbox()', tbl);
        if exists (select 1 from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid
                    where p.pubname = 'topicflow_capture' and pr.prrelid = tbl) then
            execute format('alter publication topicflow_capture drop table %s', tbl);
        end if;
        -- Back from wal mode: the documents hold log-position versions (>= 2^62), so the
        -- per-document counters continue above them instead of restarting below.
        if was = 'wal' then
            insert into topicflow.document_versions as d (source, aggregate_id, version)
            select source, doc_id, version from topicflow.documents where source = src
            on conflict (source, aggregate_id) do update
                set version = greatest(d.version, excluded.version);
        end if;
    else
        -- The whole old row in the log: an update's old values say whether a tracked column
        -- changed and supply the unchanged TOASTed values pgoutput leaves out of the new row;
        -- a delete's and a key change's old key come from it too.
        execute format('alter table %s replica identity full', tbl);
        if not exists (select 1 from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid
                        where p.pubname = 'topicflow_capture' and pr.prrelid = tbl) then
            execute format('alter publication topicflow_capture add table %s', tbl);
        end if;
        -- The producer's role reads the slot over a replication connection, which needs the
        -- REPLICATION attribute; only a superuser can give it (docs/OPERATIONS.md).
        if not exists (select 1 from pg_roles where rolname = 'topicflow_producer' and rolreplication) then
            begin
                alter role topicflow_producer replication;
            exception when insufficient_privilege then
                raise warning 'topicflow.track: topicflow_producer needs REPLICATION for capture wal: ALTER ROLE topicflow_producer REPLICATION (as a superuser)';
            end;
        end if;
    end if;
    insert into topicflow.tracked_tables as t (source, id_column, text_columns, aggregate_type, capture)
    values (src, id_column, text_columns, aggregate_type, capture)
    on conflict (source) do update
        set id_column = excluded.id_column, text_columns = excluded.text_columns,
            aggregate_type = excluded.aggregate_type, capture = excluded.capture, tracked_at = now();
end
$$;
revoke execute on function topicflow.track(regclass, text, text[], text, text) from public;

-- The wal producer maps relations through tracked_tables and reports its slot's lag.
grant select on topicflow.tracked_tables to topicflow_producer;

-- Replay of the current rows (topicflow replay --current): one replay event per row of every
-- tracked table, whichever its capture mode, whose document the workers store, with the
-- stored version (a replay of it recomputes the document, an older one never wins) and
-- replay_of = the event that produced it. Rows never captured stay as in trigger mode. They go through the outbox: an
-- outbox-mode producer publishes them (in a wal deployment, run one until outbox_pending is 0).
create function topicflow.replay_current() returns bigint
language plpgsql as $$
declare
    t record;
    n bigint;
    total bigint := 0;
begin
    for t in select * from topicflow.tracked_tables order by source loop
        execute format(
            'insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type, version,'
            '                              payload, replay_of)'
            ' select %L, %L, r.j ->> %L, ''updated'', d.version,'
            '        coalesce((select jsonb_object_agg(c, topicflow.column_text(r.j -> c))'
            '                    from unnest(%L::text[]) c'
            '                   where topicflow.column_text(r.j -> c) is not null), ''{}''),'
            '        d.event_id'
            '   from (select to_jsonb(x) j from %s x) r'
            '   join topicflow.documents d on d.source = %L and d.doc_id = r.j ->> %L'
            '  where not d.deleted',
            t.source, t.aggregate_type, t.id_column, t.text_columns, t.source::regclass,
            t.source, t.id_column);
        get diagnostics n = row_count;
        total := total + n;
    end loop;
    if total > 0 then
        perform pg_notify('topicflow_outbox', '');
    end if;
    return total;
end
$$;
revoke execute on function topicflow.replay_current() from public;
