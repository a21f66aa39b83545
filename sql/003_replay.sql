-- 003_replay: `topicflow replay` re-publishes history as new outbox events that point at the
-- event they replay. A replay has its own id (so processed_events does not swallow it) and
-- the original version, which the worker accepts when it equals the stored version (so the
-- current state is recomputed) but never when it is older.
alter table topicflow.outbox add column replay_of bigint;
