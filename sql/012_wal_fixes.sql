-- 012_wal_fixes: capture wal sets unpublishable changes aside like outbox mode.
--
-- A change read from the slot whose message exceeds --max-message is stored in
-- topicflow.outbox_rejected (the table `topicflow outbox` lists, retries and discards) before
-- the slot's confirmed position may pass its commit. The producer calls this function with the
-- event's fields only: it gains no insert right on any table. Idempotent on the event id (the
-- id is derived from the log position, so a change read again after a crash has the same one):
-- a second call stores nothing, and neither does a call for an id an operator already put back
-- into the outbox (`topicflow outbox retry`).

create function topicflow.wal_set_aside(p_id bigint, p_source text, p_aggregate_type text,
                                        p_aggregate_id text, p_event_type text, p_version bigint,
                                        p_payload text, p_created_us bigint, p_reason text)
returns boolean
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
    if p_event_type not in ('created', 'updated', 'deleted') then
        raise exception 'wal_set_aside: unknown event type %', p_event_type;
    end if;
    if exists (select 1 from topicflow.outbox where id = p_id) then
        return false;
    end if;
    insert into topicflow.outbox_rejected (id, source, aggregate_type, aggregate_id, event_type,
                                           version, payload, created_at, reason)
    values (p_id, p_source, p_aggregate_type, p_aggregate_id, p_event_type, p_version,
            p_payload::jsonb, timestamptz 'epoch' + p_created_us * interval '1 microsecond',
            left(coalesce(p_reason, 'unknown'), 1000))
    on conflict (id) do nothing;
    return found;
end
$$;

revoke execute on function topicflow.wal_set_aside(bigint, text, text, text, text, bigint, text,
                                                   bigint, text) from public;
grant execute on function topicflow.wal_set_aside(bigint, text, text, text, text, bigint, text,
                                                  bigint, text) to topicflow_producer;
