-- 006_roles: roles that confine. Each program can do its job and nothing it could use to
-- lose or forge events or to undo exactly-once processing:
--   topicflow_producer  reads the outbox, marks rows published, sets aside rows it cannot
--                       publish and deletes published rows past the retention, each only
--                       through what it needs (no DELETE on the outbox);
--   topicflow_worker    writes results; it may not delete or rewrite processed_events, nor
--                       delete documents (tombstones are updates), nor touch the outbox;
--   PUBLIC              may not call the capture functions (forging events) at all.
-- tests/integration/test_privileges.c checks a table of allowed and refused statements for
-- each role, and the integration tests run the programs as these roles.

-- Retention: only published rows older than the age asked, a bounded batch at a time.
create function topicflow.outbox_delete_published(p_age_s float8, p_limit integer) returns bigint
language sql security definer set search_path = pg_catalog, pg_temp as $$
    with gone as (
        delete from topicflow.outbox where id in (
            select id from topicflow.outbox
             where published_at is not null
               and published_at < now() - make_interval(secs => greatest(p_age_s, 0))
             order by id limit greatest(p_limit, 0) for update skip locked)
        returning 1)
    select count(*) from gone
$$;

revoke execute on function topicflow.emit(text, text, text, text, jsonb) from public;
revoke execute on function topicflow.capture() from public;
revoke execute on function topicflow.notify_outbox() from public;
revoke execute on function topicflow.refuse_truncate() from public;
revoke execute on function topicflow.touch_updated_at() from public;
revoke execute on function topicflow.track(regclass, text, text[], text) from public;
revoke execute on function topicflow.key_exists(regclass, text, text) from public;
revoke execute on function topicflow.outbox_delete_published(float8, integer) from public;

-- The producer.
revoke delete on topicflow.outbox from topicflow_producer;
grant execute on function topicflow.outbox_delete_published(float8, integer) to topicflow_producer;

-- The worker.
revoke delete, update, truncate on topicflow.processed_events from topicflow_worker;
revoke delete, truncate on topicflow.documents from topicflow_worker;
revoke delete, truncate on topicflow.terms from topicflow_worker;
revoke truncate on topicflow.model, topicflow.model_deltas, topicflow.topic_terms,
    topicflow.worker_activity from topicflow_worker;
