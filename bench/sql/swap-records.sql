-- Swaps the partitioned `records` of partition-records.sql with the plain
-- one it kept (run it again to swap back). Stop the hub first: its prepared
-- statements name the table, not the relation it was.
\set ON_ERROR_STOP 1
BEGIN;
ALTER TABLE records RENAME TO records_swap;
ALTER TABLE records_plain RENAME TO records;
ALTER TABLE records_swap RENAME TO records_plain;
COMMIT;
SELECT CASE WHEN relkind = 'p' THEN 'records is now the partitioned table' ELSE 'records is now the plain table' END
  FROM pg_class WHERE relname = 'records';
