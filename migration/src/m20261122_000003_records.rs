//! Records of every kind — medical, dental, pharmacy, care, ACP — in one table
//! with a typed payload per kind (validated in `renkei_schema::records`), and
//! their earlier versions.
//!
//! One table rather than one per kind: the timeline reads every kind of a
//! patient in one indexed range scan, the summary loads its candidates in one
//! query, and idempotency (organisation, kind, source record ID) and versioning
//! are one mechanism instead of twenty-six.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    PatientId,
    Kind,
    Category,
    SourceOrganizationId,
    AuthorMemberId,
    AuthorApiKeyId,
    SourceRecordId,
    Version,
    Status,
    EffectiveAt,
    RecordedAt,
    Undisclosed,
    InSummary,
    SeriesKey,
    Data,
}

#[derive(DeriveIden)]
enum RecordVersions {
    Table,
    RecordId,
    Version,
    Category,
    SourceOrganizationId,
    AuthorMemberId,
    AuthorApiKeyId,
    Status,
    EffectiveAt,
    RecordedAt,
    Undisclosed,
    Data,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Records::Table)
                    .col(ColumnDef::new(Records::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Records::PatientId).uuid().not_null())
                    .col(ColumnDef::new(Records::Kind).string().not_null())
                    .col(ColumnDef::new(Records::Category).string().not_null())
                    .col(
                        ColumnDef::new(Records::SourceOrganizationId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Records::AuthorMemberId).uuid().null())
                    .col(ColumnDef::new(Records::AuthorApiKeyId).uuid().null())
                    .col(ColumnDef::new(Records::SourceRecordId).string().null())
                    .col(ColumnDef::new(Records::Version).integer().not_null())
                    .col(ColumnDef::new(Records::Status).string().not_null())
                    .col(
                        ColumnDef::new(Records::EffectiveAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Records::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Records::Undisclosed).boolean().not_null())
                    .col(ColumnDef::new(Records::InSummary).boolean().not_null())
                    .col(ColumnDef::new(Records::SeriesKey).string().null())
                    .col(ColumnDef::new(Records::Data).text().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_records_patient")
                            .from(Records::Table, Records::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Idempotent writes: a client's source record ID is unique per
        // (organisation, kind). Rows without one (NULL) do not collide.
        manager
            .create_index(
                Index::create()
                    .name("uq_records_source")
                    .table(Records::Table)
                    .col(Records::SourceOrganizationId)
                    .col(Records::Kind)
                    .col(Records::SourceRecordId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The timeline: a patient's records newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_records_timeline")
                    .table(Records::Table)
                    .col(Records::PatientId)
                    .col(Records::EffectiveAt)
                    .col(Records::Id)
                    .to_owned(),
            )
            .await?;
        // The summary: a patient's candidate records.
        manager
            .create_index(
                Index::create()
                    .name("idx_records_summary")
                    .table(Records::Table)
                    .col(Records::PatientId)
                    .col(Records::InSummary)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecordVersions::Table)
                    .col(ColumnDef::new(RecordVersions::RecordId).uuid().not_null())
                    .col(ColumnDef::new(RecordVersions::Version).integer().not_null())
                    .col(ColumnDef::new(RecordVersions::Category).string().not_null())
                    .col(
                        ColumnDef::new(RecordVersions::SourceOrganizationId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RecordVersions::AuthorMemberId).uuid().null())
                    .col(ColumnDef::new(RecordVersions::AuthorApiKeyId).uuid().null())
                    .col(ColumnDef::new(RecordVersions::Status).string().not_null())
                    .col(
                        ColumnDef::new(RecordVersions::EffectiveAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RecordVersions::RecordedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RecordVersions::Undisclosed)
                            .boolean()
                            .not_null(),
                    )
                    .col(ColumnDef::new(RecordVersions::Data).text().not_null())
                    .primary_key(
                        Index::create()
                            .col(RecordVersions::RecordId)
                            .col(RecordVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_record_versions_record")
                            .from(RecordVersions::Table, RecordVersions::RecordId)
                            .to(Records::Table, Records::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RecordVersions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Records::Table).to_owned())
            .await
    }
}
