-- 007_model_quality: how good the model is, where operators look (`topicflow status`).
--   model_epochs.coherence  each refit's mean NPMI of its topics' top 10 terms, on the
--                           documents it fitted (engine/coherence.h);
--   model_quality           the kept model measured by a worker on the documents as stored
--                           (their tf-idf weights and folded topic vectors): relative error
--                           ||X - H W'|| / ||X|| and mean NPMI, one row per measured version,
--                           the newest 1000 kept;
--   model_policy            each worker's automatic model policy: its settings and what it
--                           will do next, rewritten as that changes.
alter table topicflow.model_epochs add column coherence float8;

create table topicflow.model_quality (
    version        bigint      primary key,
    epoch          bigint      not null,
    docs           bigint      not null,
    relative_error float8      not null,
    coherence      float8      not null,
    seconds        float8      not null,
    worker         text        not null,
    measured_at    timestamptz not null default now()
);

create table topicflow.model_policy (
    worker     text        primary key,
    settings   text        not null,
    next       text        not null,
    updated_at timestamptz not null default now()
);

grant select, insert, delete on topicflow.model_quality to topicflow_worker;
grant select, insert, update on topicflow.model_policy to topicflow_worker;
