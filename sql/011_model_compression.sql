-- 011_model_compression: the model's large values compressed with lz4 instead of pglz.
--   model.blob          W and the sufficient statistics (20 MB at 55,000 documents, ~2:1):
--                       written at every refresh and refit, read by every worker at every
--                       version. pglz took ~3.5x longer than lz4 to store it (measured:
--                       2.5 s vs 0.72 s for 20.8 MB, on the shared 2-core test machine), a
--                       CPU burst of a PostgreSQL backend every refresh that delayed the
--                       stream's batches on a small machine; lz4 also compresses it better
--                       (7.98 MB vs 8.87 MB).
--   model_deltas.delta  each batch's statistics delta (up to ~1 MB for 256 documents).
-- Values already stored keep their compression until rewritten. A server built without lz4
-- keeps pglz (the DO block checks).
do $$
begin
    begin
        perform set_config('default_toast_compression', 'lz4', true);
    exception when others then
        raise notice 'lz4 is not available: the model keeps pglz compression';
        return;
    end;
    alter table topicflow.model alter column blob set compression lz4;
    alter table topicflow.model_deltas alter column delta set compression lz4;
end
$$;
