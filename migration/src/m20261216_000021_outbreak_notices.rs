//! Outbreak notices (感染症の集団発生の連絡, issue 14 part 4): a facility
//! tells the organisations sharing its patients that an infection broke out
//! (pathogen, onset, where, how many), and later that it ended. The
//! recipients are decided when the notice is reported and kept, one row
//! each; the patients the facility names as affected are kept one row each
//! too. Nothing is ever deleted (the application role may not): a notice
//! ends by its status.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OutbreakNotices {
    Table,
    Id,
    OrganizationId,
    ReportedByMember,
    ReportedByApiKey,
    Pathogen,
    OtherPathogen,
    OnsetOn,
    Scope,
    ResidentCases,
    StaffCases,
    Measures,
    Status,
    EndedOn,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OutbreakNoticeRecipients {
    Table,
    NoticeId,
    OrganizationId,
}

#[derive(DeriveIden)]
enum OutbreakNoticePatients {
    Table,
    NoticeId,
    PatientId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use OutbreakNotices as N;
        manager
            .create_table(
                Table::create()
                    .table(N::Table)
                    .col(ColumnDef::new(N::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(N::OrganizationId).uuid().not_null())
                    .col(ColumnDef::new(N::ReportedByMember).uuid().null())
                    .col(ColumnDef::new(N::ReportedByApiKey).uuid().null())
                    .col(ColumnDef::new(N::Pathogen).string().not_null())
                    .col(ColumnDef::new(N::OtherPathogen).text().null())
                    .col(ColumnDef::new(N::OnsetOn).date().not_null())
                    .col(ColumnDef::new(N::Scope).text().not_null())
                    .col(ColumnDef::new(N::ResidentCases).integer().null())
                    .col(ColumnDef::new(N::StaffCases).integer().null())
                    .col(ColumnDef::new(N::Measures).text().null())
                    .col(ColumnDef::new(N::Status).string().not_null())
                    .col(ColumnDef::new(N::EndedOn).date().null())
                    .col(
                        ColumnDef::new(N::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(N::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbreak_notices_organization")
                            .from(N::Table, N::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // The reporter's own list, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbreak_notices_organization")
                    .table(N::Table)
                    .col(N::OrganizationId)
                    .col(N::Id)
                    .to_owned(),
            )
            .await?;

        use OutbreakNoticeRecipients as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(ColumnDef::new(R::NoticeId).uuid().not_null())
                    .col(ColumnDef::new(R::OrganizationId).uuid().not_null())
                    .primary_key(Index::create().col(R::NoticeId).col(R::OrganizationId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbreak_notice_recipients_notice")
                            .from(R::Table, R::NoticeId)
                            .to(N::Table, N::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbreak_notice_recipients_organization")
                            .from(R::Table, R::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // A recipient's list.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbreak_notice_recipients_organization")
                    .table(R::Table)
                    .col(R::OrganizationId)
                    .col(R::NoticeId)
                    .to_owned(),
            )
            .await?;

        use OutbreakNoticePatients as P;
        manager
            .create_table(
                Table::create()
                    .table(P::Table)
                    .col(ColumnDef::new(P::NoticeId).uuid().not_null())
                    .col(ColumnDef::new(P::PatientId).uuid().not_null())
                    .primary_key(Index::create().col(P::NoticeId).col(P::PatientId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbreak_notice_patients_notice")
                            .from(P::Table, P::NoticeId)
                            .to(N::Table, N::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbreak_notice_patients_patient")
                            .from(P::Table, P::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OutbreakNoticePatients::Table.into_iden(),
            OutbreakNoticeRecipients::Table.into_iden(),
            OutbreakNotices::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
