//! The resource directory for people (issue 15):
//! - `organization_profiles`: what an organisation does beyond its kind and
//!   capabilities (visiting range, languages, end-of-life experience, whom
//!   to call and when not to), whether its entry is public, and when it was
//!   last confirmed — one row per organisation, updated in place (the
//!   application role may not delete rows);
//! - `vacancy_reports`: free beds and places by type as facilities report
//!   them (空床・空き状況), kept as a history; the latest per type is shown.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OrganizationProfiles {
    Table,
    OrganizationId,
    Public,
    VisitingAreas,
    VisitingRadiusKm,
    Languages,
    HomeDeathsLastYear,
    ContactPerson,
    ContactHours,
    AvoidCalling,
    PublicNote,
    ConfirmedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum VacancyReports {
    Table,
    Id,
    OrganizationId,
    BedType,
    Available,
    Capacity,
    Note,
    ReportedAt,
    ReportedByMemberId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OrganizationProfiles::Table)
                    .col(
                        ColumnDef::new(OrganizationProfiles::OrganizationId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OrganizationProfiles::Public)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    // JSON arrays of strings, as text on both backends.
                    .col(
                        ColumnDef::new(OrganizationProfiles::VisitingAreas)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrganizationProfiles::VisitingRadiusKm).double())
                    .col(
                        ColumnDef::new(OrganizationProfiles::Languages)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrganizationProfiles::HomeDeathsLastYear).integer())
                    .col(ColumnDef::new(OrganizationProfiles::ContactPerson).text())
                    .col(ColumnDef::new(OrganizationProfiles::ContactHours).text())
                    // JSON array of {days, from, to, note}.
                    .col(
                        ColumnDef::new(OrganizationProfiles::AvoidCalling)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OrganizationProfiles::PublicNote).text())
                    .col(
                        ColumnDef::new(OrganizationProfiles::ConfirmedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrganizationProfiles::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organization_profiles_organization")
                            .from(
                                OrganizationProfiles::Table,
                                OrganizationProfiles::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(VacancyReports::Table)
                    .col(
                        ColumnDef::new(VacancyReports::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(VacancyReports::OrganizationId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VacancyReports::BedType).string().not_null())
                    .col(
                        ColumnDef::new(VacancyReports::Available)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VacancyReports::Capacity).integer())
                    .col(ColumnDef::new(VacancyReports::Note).text())
                    .col(
                        ColumnDef::new(VacancyReports::ReportedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(VacancyReports::ReportedByMemberId).uuid())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_vacancy_reports_organization")
                            .from(VacancyReports::Table, VacancyReports::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_vacancy_reports_member")
                            .from(VacancyReports::Table, VacancyReports::ReportedByMemberId)
                            .to(Members::Table, Members::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_vacancy_reports_latest")
                    .table(VacancyReports::Table)
                    .col(VacancyReports::OrganizationId)
                    .col(VacancyReports::BedType)
                    .col(VacancyReports::ReportedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(VacancyReports::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OrganizationProfiles::Table).to_owned())
            .await
    }
}
