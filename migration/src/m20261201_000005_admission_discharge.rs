//! Admission and discharge support (入退院支援): admission information sheets
//! (入院時情報提供書), discharge notices (退院連絡) with their history, and
//! discharge conferences (退院前カンファレンス) with one invitation row per
//! invited organisation.
//!
//! Enumerations are strings, structured content is JSON text, dates are
//! `date` columns (compared as dates on PostgreSQL and as `YYYY-MM-DD` text on
//! SQLite, which orders the same way).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdmissionSheets {
    Table,
    Id,
    PatientId,
    AuthorOrganizationId,
    AuthorMemberId,
    AuthorApiKeyId,
    HospitalOrganizationId,
    AdmittedOn,
    Status,
    Content,
    Sources,
    OmittedCategories,
    CreatedAt,
    UpdatedAt,
    SentAt,
    SentByMember,
    ReceivedAt,
    ReceivedByMember,
}

#[derive(DeriveIden)]
enum DischargeNotices {
    Table,
    Id,
    PatientId,
    HospitalOrganizationId,
    AuthorMemberId,
    AuthorApiKeyId,
    AdmissionSheetId,
    Status,
    AdmittedOn,
    PlannedDischargeOn,
    ActualDischargeOn,
    NeedsAtHome,
    Criteria,
    NotifiedAt,
    NotifiedOn,
    Version,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DischargeNoticeVersions {
    Table,
    NoticeId,
    Version,
    Status,
    PlannedDischargeOn,
    ActualDischargeOn,
    NeedsAtHome,
    Criteria,
    ChangedAt,
    ChangedByMember,
    ChangedByApiKey,
}

#[derive(DeriveIden)]
enum DischargeConferences {
    Table,
    Id,
    PatientId,
    OrganizerOrganizationId,
    ProposedByMember,
    ProposedByApiKey,
    DischargeNoticeId,
    StartsAt,
    Place,
    Online,
    Note,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DischargeConferenceInvitations {
    Table,
    ConferenceId,
    OrganizationId,
    Response,
    RespondedByMember,
    RespondedAt,
    Comment,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

fn id(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().primary_key().to_owned()
}
fn uuid(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}
fn uuid_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().null().to_owned()
}
fn string(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().not_null().to_owned()
}
fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).text().null().to_owned()
}
fn date(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).date().not_null().to_owned()
}
fn date_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).date().null().to_owned()
}
fn ts(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}
fn ts_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: &[&str],
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(Alias::new(*c));
    }
    manager.create_index(idx.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AdmissionSheets::Table)
                    .col(id(AdmissionSheets::Id))
                    .col(uuid(AdmissionSheets::PatientId))
                    .col(uuid(AdmissionSheets::AuthorOrganizationId))
                    .col(uuid_null(AdmissionSheets::AuthorMemberId))
                    .col(uuid_null(AdmissionSheets::AuthorApiKeyId))
                    .col(uuid(AdmissionSheets::HospitalOrganizationId))
                    .col(date(AdmissionSheets::AdmittedOn))
                    .col(string(AdmissionSheets::Status))
                    // The sheet's sections as JSON; what the prefill drew from
                    // (record ids) and what it left out (categories).
                    .col(text(AdmissionSheets::Content))
                    .col(text(AdmissionSheets::Sources))
                    .col(text(AdmissionSheets::OmittedCategories))
                    .col(ts(AdmissionSheets::CreatedAt))
                    .col(ts(AdmissionSheets::UpdatedAt))
                    .col(ts_null(AdmissionSheets::SentAt))
                    .col(uuid_null(AdmissionSheets::SentByMember))
                    .col(ts_null(AdmissionSheets::ReceivedAt))
                    .col(uuid_null(AdmissionSheets::ReceivedByMember))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_admission_sheets_patient")
                            .from(AdmissionSheets::Table, AdmissionSheets::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_admission_sheets_hospital")
                            .from(
                                AdmissionSheets::Table,
                                AdmissionSheets::HospitalOrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_admission_sheets_patient",
            AdmissionSheets::Table,
            &["patient_id", "id"],
        )
        .await?;
        // A hospital's inbox and the report's admissions.
        index(
            manager,
            "idx_admission_sheets_hospital",
            AdmissionSheets::Table,
            &["hospital_organization_id", "admitted_on"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DischargeNotices::Table)
                    .col(id(DischargeNotices::Id))
                    .col(uuid(DischargeNotices::PatientId))
                    .col(uuid(DischargeNotices::HospitalOrganizationId))
                    .col(uuid_null(DischargeNotices::AuthorMemberId))
                    .col(uuid_null(DischargeNotices::AuthorApiKeyId))
                    .col(uuid_null(DischargeNotices::AdmissionSheetId))
                    .col(string(DischargeNotices::Status))
                    .col(date(DischargeNotices::AdmittedOn))
                    .col(date(DischargeNotices::PlannedDischargeOn))
                    .col(date_null(DischargeNotices::ActualDischargeOn))
                    .col(text(DischargeNotices::NeedsAtHome))
                    .col(text(DischargeNotices::Criteria))
                    // When the notice first reached the team, and that day in
                    // Japan: the start of the lead time. Corrections never
                    // change them.
                    .col(ts(DischargeNotices::NotifiedAt))
                    .col(date(DischargeNotices::NotifiedOn))
                    .col(
                        ColumnDef::new(DischargeNotices::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(ts(DischargeNotices::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_notices_patient")
                            .from(DischargeNotices::Table, DischargeNotices::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_notices_hospital")
                            .from(
                                DischargeNotices::Table,
                                DischargeNotices::HospitalOrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_notices_sheet")
                            .from(DischargeNotices::Table, DischargeNotices::AdmissionSheetId)
                            .to(AdmissionSheets::Table, AdmissionSheets::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_discharge_notices_patient",
            DischargeNotices::Table,
            &["patient_id", "id"],
        )
        .await?;
        // The lead-time report: a hospital's (or the region's) discharges in a period.
        index(
            manager,
            "idx_discharge_notices_hospital",
            DischargeNotices::Table,
            &["hospital_organization_id", "planned_discharge_on"],
        )
        .await?;
        index(
            manager,
            "idx_discharge_notices_planned",
            DischargeNotices::Table,
            &["planned_discharge_on"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DischargeNoticeVersions::Table)
                    .col(uuid(DischargeNoticeVersions::NoticeId))
                    .col(
                        ColumnDef::new(DischargeNoticeVersions::Version)
                            .integer()
                            .not_null(),
                    )
                    .col(string(DischargeNoticeVersions::Status))
                    .col(date(DischargeNoticeVersions::PlannedDischargeOn))
                    .col(date_null(DischargeNoticeVersions::ActualDischargeOn))
                    .col(text(DischargeNoticeVersions::NeedsAtHome))
                    .col(text(DischargeNoticeVersions::Criteria))
                    .col(ts(DischargeNoticeVersions::ChangedAt))
                    .col(uuid_null(DischargeNoticeVersions::ChangedByMember))
                    .col(uuid_null(DischargeNoticeVersions::ChangedByApiKey))
                    .primary_key(
                        Index::create()
                            .col(DischargeNoticeVersions::NoticeId)
                            .col(DischargeNoticeVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_notice_versions_notice")
                            .from(
                                DischargeNoticeVersions::Table,
                                DischargeNoticeVersions::NoticeId,
                            )
                            .to(DischargeNotices::Table, DischargeNotices::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DischargeConferences::Table)
                    .col(id(DischargeConferences::Id))
                    .col(uuid(DischargeConferences::PatientId))
                    .col(uuid(DischargeConferences::OrganizerOrganizationId))
                    .col(uuid_null(DischargeConferences::ProposedByMember))
                    .col(uuid_null(DischargeConferences::ProposedByApiKey))
                    .col(uuid_null(DischargeConferences::DischargeNoticeId))
                    .col(ts(DischargeConferences::StartsAt))
                    .col(text_null(DischargeConferences::Place))
                    .col(
                        ColumnDef::new(DischargeConferences::Online)
                            .boolean()
                            .not_null(),
                    )
                    .col(text_null(DischargeConferences::Note))
                    .col(string(DischargeConferences::Status))
                    .col(ts(DischargeConferences::CreatedAt))
                    .col(ts(DischargeConferences::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_conferences_patient")
                            .from(DischargeConferences::Table, DischargeConferences::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_conferences_notice")
                            .from(
                                DischargeConferences::Table,
                                DischargeConferences::DischargeNoticeId,
                            )
                            .to(DischargeNotices::Table, DischargeNotices::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_discharge_conferences_patient",
            DischargeConferences::Table,
            &["patient_id", "id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(DischargeConferenceInvitations::Table)
                    .col(uuid(DischargeConferenceInvitations::ConferenceId))
                    .col(uuid(DischargeConferenceInvitations::OrganizationId))
                    .col(string(DischargeConferenceInvitations::Response))
                    .col(uuid_null(DischargeConferenceInvitations::RespondedByMember))
                    .col(ts_null(DischargeConferenceInvitations::RespondedAt))
                    .col(text_null(DischargeConferenceInvitations::Comment))
                    .primary_key(
                        Index::create()
                            .col(DischargeConferenceInvitations::ConferenceId)
                            .col(DischargeConferenceInvitations::OrganizationId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_conference_invitations_conference")
                            .from(
                                DischargeConferenceInvitations::Table,
                                DischargeConferenceInvitations::ConferenceId,
                            )
                            .to(DischargeConferences::Table, DischargeConferences::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_discharge_conference_invitations_organization")
                            .from(
                                DischargeConferenceInvitations::Table,
                                DischargeConferenceInvitations::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // An organisation's invitations.
        index(
            manager,
            "idx_discharge_conference_invitations_organization",
            DischargeConferenceInvitations::Table,
            &["organization_id", "conference_id"],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            DischargeConferenceInvitations::Table.into_iden(),
            DischargeConferences::Table.into_iden(),
            DischargeNoticeVersions::Table.into_iden(),
            DischargeNotices::Table.into_iden(),
            AdmissionSheets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
