-- 002_topic_model: what topicflow-worker derives from the events (DESIGN.md "The topic model").
-- Workers never share a hot row: each mini-batch appends its statistics delta to
-- model_deltas, and only the worker holding the refresh advisory lock folds deltas into
-- a new model version and updates document frequencies.

-- Vocabulary. Ids are dense row numbers of the model's W and B; a term is added (in its
-- own short transaction) the first time any worker sees it. df is the number of live
-- documents containing the term as of the current model version.
create table topicflow.terms (
    id    integer primary key,
    term  text    not null unique,
    df    bigint  not null default 0
);
create sequence topicflow.terms_id_seq as integer minvalue 0 start 0 owned by topicflow.terms.id;
alter table topicflow.terms alter column id set default nextval('topicflow.terms_id_seq');

-- One row per document of a tracked table. A delete keeps the row as a tombstone
-- (deleted, no vector) so that an older event arriving late cannot resurrect it.
-- term_ids/weights are the TF-IDF vector x and topics the mixture h exactly as they
-- were added to the statistics, so an update or delete can retract them exactly; counts
-- are the raw term counts from which a refit recomputes x with fresh document frequencies.
-- The document's contribution is part of the model's statistics iff model_version is at
-- least the current model's epoch (the version of the last refit); older ones are "stale"
-- and get re-folded.
create table topicflow.documents (
    source        text        not null,
    doc_id        text        not null,
    version       bigint      not null,
    deleted       boolean     not null default false,
    term_ids      integer[]   not null default '{}',
    counts        integer[]   not null default '{}',
    weights       real[]      not null default '{}',
    topics        real[],                 -- null until a model exists
    model_version bigint,                 -- the model h was folded against
    event_id      bigint      not null,   -- outbox id of the event that produced this state
    updated_at    timestamptz not null default now(),
    primary key (source, doc_id)
);
create index documents_stale on topicflow.documents ((coalesce(model_version, 0)))
    where not deleted;

-- Exactly-once: an event's effects commit together with its row here.
create table topicflow.processed_events (
    event_id     bigint      primary key,
    processed_at timestamptz not null default now()
);

-- Model versions. blob is the model blob of common/model_blob.h: W and the sufficient
-- statistics A = Σ h hᵀ and B = Σ x hᵀ of the documents folded since the epoch began.
-- A refit starts a new epoch (epoch = its own version); a refresh keeps the epoch.
create table topicflow.model (
    version    bigint      primary key,
    epoch      bigint      not null,
    kind       text        not null check (kind in ('refit', 'refresh')),
    k          integer     not null,
    n_terms    integer     not null,
    n_docs     bigint      not null,     -- live documents when the version was made
    blob       bytea       not null,
    stats      jsonb       not null default '{}',
    created_at timestamptz not null default now()
);

-- What one worker mini-batch changed, appended in the batch's transaction and folded into
-- the next model version by the refresh: the statistics delta (model blob delta form,
-- null when no model existed yet), and the document-frequency changes.
create table topicflow.model_deltas (
    id           bigserial   primary key,
    worker       text        not null,
    base_version bigint      not null,   -- model version folded against (0: none)
    n_docs       integer     not null,   -- documents added minus documents removed
    delta        bytea,
    df_terms     integer[]   not null,
    df_deltas    integer[]   not null,
    created_at   timestamptz not null default now()
);

-- The heaviest terms of each topic of each model version, written with the version.
create table topicflow.topic_terms (
    model_version bigint  not null references topicflow.model (version) on delete cascade,
    topic         integer not null,
    rank          integer not null,
    term          text    not null,
    weight        real    not null,
    primary key (model_version, topic, rank)
);

-- Each worker's own row (never written by another worker).
create table topicflow.worker_activity (
    worker        text        primary key,
    started_at    timestamptz not null,
    last_batch_at timestamptz,
    events        bigint      not null default 0
);

create view topicflow.current_model as
    select version, epoch, kind, k, n_terms, n_docs, created_at, stats
      from topicflow.model order by version desc limit 1;

create view topicflow.topics as
    select t.topic, t.rank, t.term, t.weight
      from topicflow.topic_terms t
     where t.model_version = (select max(version) from topicflow.model);

-- The mixture of every live document, normalised to sum 1 over its topics.
create view topicflow.document_topics as
    select d.source, d.doc_id, (m.ord - 1)::integer as topic,
           (m.w / s.total)::real as weight
      from topicflow.documents d
     cross join lateral (select sum(x) as total from unnest(d.topics) x) s
     cross join lateral unnest(d.topics) with ordinality as m(w, ord)
     where not d.deleted and d.topics is not null and s.total > 0 and m.w > 0;

grant select, insert, update, delete on topicflow.terms, topicflow.documents,
    topicflow.processed_events, topicflow.model, topicflow.model_deltas, topicflow.topic_terms,
    topicflow.worker_activity to topicflow_worker;
grant usage, select on topicflow.terms_id_seq, topicflow.model_deltas_id_seq to topicflow_worker;
grant select on topicflow.tracked_tables, topicflow.topics, topicflow.document_topics,
    topicflow.current_model to topicflow_worker;
