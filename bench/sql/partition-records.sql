-- Issue 16, "Scaling out … by experiment": `records` hash-partitioned by
-- `patient_id` on a benchmark region, to measure the summary and
-- `writeRecords` against the plain table (bench/RESULTS.md, docs/scaling.md).
-- A benchmark database only — never a hub's: it drops the foreign key from
-- `record_versions` and weakens the uniqueness of source record IDs (below).
--
--   psql -v ON_ERROR_STOP=1 -v partitions=16 -d renkei_bench -f bench/sql/partition-records.sql
--
-- Afterwards `records` is the partitioned table and the plain one is kept
-- as `records_plain`; bench/sql/swap-records.sql swaps the two, so that the
-- drivers can run against either in turns.
\set ON_ERROR_STOP 1
BEGIN;

-- A foreign key to a partitioned table must reference a key that holds
-- the partition key: (patient_id, id). `record_versions` has no patient_id
-- (one of the schema changes docs/scaling.md lists), so the experiment
-- drops the key.
ALTER TABLE record_versions DROP CONSTRAINT IF EXISTS fk_record_versions_record;

CREATE TABLE records_part (LIKE records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY HASH (patient_id);
SELECT format('CREATE TABLE records_part_%s PARTITION OF records_part FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
              r, :partitions, r)
  FROM generate_series(0, :partitions - 1) AS r
\gexec

INSERT INTO records_part SELECT * FROM records;

-- Every unique index of a partitioned table must hold the partition key:
-- the primary key becomes (patient_id, id) and the source-ID index gains
-- patient_id, so the same source record ID is unique per patient only
-- (the hub's own lock on the batch's patients still keeps one writer per
-- patient; across patients a lookup table would keep it, docs/scaling.md).
-- Lookups by id alone (a record referenced by id) use a plain index on id:
-- one probe per partition.
ALTER TABLE records_part ADD CONSTRAINT records_part_pkey PRIMARY KEY (patient_id, id);
CREATE INDEX idx_records_part_id ON records_part (id);
CREATE INDEX idx_records_part_summary_until ON records_part (patient_id, in_summary, summary_until);
CREATE INDEX idx_records_part_timeline ON records_part (patient_id, effective_at, id);
CREATE UNIQUE INDEX uq_records_part_source ON records_part (source_organization_id, kind, source_record_id, patient_id);
ALTER TABLE records_part ADD CONSTRAINT fk_records_part_patient FOREIGN KEY (patient_id) REFERENCES patients(id);

ALTER TABLE records RENAME TO records_plain;
ALTER TABLE records_part RENAME TO records;
COMMIT;

VACUUM (ANALYZE) records;
