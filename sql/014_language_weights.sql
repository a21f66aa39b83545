-- 014_language_weights: topics by subject, not by language, in a corpus of two languages.
--   documents.arabic        the language the worker found the document written in: true when
--                           most of its terms have an Arabic written form (engine/text.h),
--                           false otherwise; NULL when not recorded (a worker without a
--                           lexicon, a tombstone, a row older than this migration).
--   terms.language_weight   a factor of the term's idf, set by every refit from the recorded
--                           documents (engine/corpus.h tf_corpus_language_weights): 1 for a
--                           term both languages use in the corpus's proportion, towards 0 for
--                           a term of one language only (its untranslated words and its
--                           boilerplate), which would otherwise group documents by language.
--                           A term added after the refit weighs 1 until the next one.
alter table topicflow.documents add column arabic boolean;
alter table topicflow.terms add column language_weight real not null default 1
    check (language_weight >= 0 and language_weight <= 1);
