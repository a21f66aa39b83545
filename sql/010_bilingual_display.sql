-- 010_bilingual_display: a term written in both scripts shows both forms.
--   topics.display    as in 008 (the term's most frequent form, ties: the smallest, else the
--                     stem), except for a term that stored documents write in Arabic script
--                     and in another script: the most frequent non-Arabic form, " / ", the
--                     most frequent Arabic form (`design / التصميم`). Only the bilingual
--                     lexicon (a worker's --lexicon) makes such terms: it counts an Arabic
--                     word as its English concept, and the word's surface form is kept.
-- A lateral join, not a function: the view reads term_forms with its owner's rights.

create or replace view topicflow.topics as
    select t.topic, t.rank, t.term, t.weight,
           case when d.other is not null and d.arabic is not null then d.other || ' / ' || d.arabic
                else coalesce(d.top, t.term) end as display
      from topicflow.topic_terms t
      left join topicflow.terms tm on tm.term = t.term
      left join lateral (
          select (array_agg(f.form order by f.docs desc, f.form))[1] as top,
                 (array_agg(f.form order by f.docs desc, f.form)
                     filter (where f.form !~ '[\u0600-\u06FF]'))[1] as other,
                 (array_agg(f.form order by f.docs desc, f.form)
                     filter (where f.form ~ '[\u0600-\u06FF]'))[1] as arabic
            from topicflow.term_forms f
           where f.term_id = tm.id) d on true
     where t.model_version = (select max(version) from topicflow.model);
