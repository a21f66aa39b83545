-- 005_model_epochs: one row per refit (an epoch of the model's statistics), kept however many
-- model versions are pruned: what was asked and what was fitted (k is min(asked, documents,
-- terms): it never blocks a model), on how many documents and terms (all, and those in the
-- model's vocabulary), the fit's relative error, and why it ran (operator, first, growth,
-- quiet, k). The workers' automatic refit policy compares the corpus with the current
-- epoch's row; `topicflow status` shows it.
create table topicflow.model_epochs (
    epoch          bigint      primary key,
    k_asked        integer     not null,
    k              integer     not null,
    fit_docs       bigint      not null,
    fit_terms      integer     not null,
    kept_terms     integer     not null,
    relative_error float8      not null,
    reason         text        not null,
    fitted_at      timestamptz not null default now()
);

-- Epochs made before this migration: what their refit version recorded.
insert into topicflow.model_epochs (epoch, k_asked, k, fit_docs, fit_terms, kept_terms,
                                    relative_error, reason, fitted_at)
select m.version, m.k, m.k, m.n_docs, m.n_terms, m.n_terms,
       coalesce((m.stats->>'relative_error')::float8, 0), 'before 005', m.created_at
  from topicflow.model m where m.kind = 'refit' and m.version = m.epoch
on conflict do nothing;

grant select, insert on topicflow.model_epochs to topicflow_worker;
