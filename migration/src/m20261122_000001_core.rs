//! The spine of the data model: organisations and their capabilities, members,
//! patients, local identifiers (名寄せ), care-team memberships and API keys.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Kind,
    Name,
    NameKana,
    PostalCode,
    Address,
    Municipality,
    Phone,
    Fax,
    Latitude,
    Longitude,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrganizationCapabilities {
    Table,
    OrganizationId,
    Capability,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
    OrganizationId,
    Name,
    NameKana,
    Profession,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    Id,
    Name,
    NameKana,
    BirthDate,
    Sex,
    PostalCode,
    Address,
    Phone,
    Status,
    DeceasedOn,
    PlaceOfDeath,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PatientIdentifiers {
    Table,
    Id,
    OrganizationId,
    LocalId,
    PatientId,
    CreatedAt,
    RecordedByOrganization,
    RecordedByMember,
}

#[derive(DeriveIden)]
enum CareTeamMemberships {
    Table,
    Id,
    PatientId,
    OrganizationId,
    MemberId,
    Role,
    StartDate,
    EndDate,
    CreatedAt,
    UpdatedAt,
    RecordedByOrganization,
    RecordedByMember,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    OrganizationId,
    Name,
    SecretHash,
    CreatedAt,
    RevokedAt,
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .uuid()
        .not_null()
        .primary_key()
        .to_owned()
}

fn uuid_ref(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).uuid().not_null().to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().not_null().to_owned()
}

fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string().null().to_owned()
}

fn timestamp(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(id(Organizations::Id))
                    .col(text(Organizations::Kind))
                    .col(text(Organizations::Name))
                    .col(text_null(Organizations::NameKana))
                    .col(text_null(Organizations::PostalCode))
                    .col(text_null(Organizations::Address))
                    .col(text_null(Organizations::Municipality))
                    .col(text_null(Organizations::Phone))
                    .col(text_null(Organizations::Fax))
                    .col(ColumnDef::new(Organizations::Latitude).double().null())
                    .col(ColumnDef::new(Organizations::Longitude).double().null())
                    .col(timestamp(Organizations::CreatedAt))
                    .col(timestamp(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_organizations_kind", Organizations::Kind),
            (
                "idx_organizations_municipality",
                Organizations::Municipality,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Organizations::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OrganizationCapabilities::Table)
                    .col(uuid_ref(OrganizationCapabilities::OrganizationId))
                    .col(text(OrganizationCapabilities::Capability))
                    .primary_key(
                        Index::create()
                            .col(OrganizationCapabilities::OrganizationId)
                            .col(OrganizationCapabilities::Capability),
                    )
                    .foreign_key(&mut fk(
                        "fk_capabilities_organization",
                        (
                            OrganizationCapabilities::Table,
                            OrganizationCapabilities::OrganizationId,
                        ),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_capabilities_capability")
                    .table(OrganizationCapabilities::Table)
                    .col(OrganizationCapabilities::Capability)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(id(Members::Id))
                    .col(uuid_ref(Members::OrganizationId))
                    .col(text(Members::Name))
                    .col(text_null(Members::NameKana))
                    .col(text(Members::Profession))
                    .col(text(Members::Status))
                    .col(timestamp(Members::CreatedAt))
                    .col(timestamp(Members::UpdatedAt))
                    .foreign_key(&mut fk(
                        "fk_members_organization",
                        (Members::Table, Members::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_members_organization")
                    .table(Members::Table)
                    .col(Members::OrganizationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Patients::Table)
                    .col(id(Patients::Id))
                    .col(text(Patients::Name))
                    .col(text(Patients::NameKana))
                    .col(ColumnDef::new(Patients::BirthDate).date().not_null())
                    .col(text(Patients::Sex))
                    .col(text_null(Patients::PostalCode))
                    .col(text_null(Patients::Address))
                    .col(text_null(Patients::Phone))
                    .col(text(Patients::Status))
                    .col(ColumnDef::new(Patients::DeceasedOn).date().null())
                    .col(text_null(Patients::PlaceOfDeath))
                    .col(timestamp(Patients::CreatedAt))
                    .col(timestamp(Patients::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PatientIdentifiers::Table)
                    .col(id(PatientIdentifiers::Id))
                    .col(uuid_ref(PatientIdentifiers::OrganizationId))
                    .col(text(PatientIdentifiers::LocalId))
                    .col(uuid_ref(PatientIdentifiers::PatientId))
                    .col(timestamp(PatientIdentifiers::CreatedAt))
                    // Who linked it (stamped by the hub; null only for rows
                    // seeded without an author).
                    .col(
                        ColumnDef::new(PatientIdentifiers::RecordedByOrganization)
                            .uuid()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(PatientIdentifiers::RecordedByMember)
                            .uuid()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_identifiers_organization",
                        (
                            PatientIdentifiers::Table,
                            PatientIdentifiers::OrganizationId,
                        ),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_identifiers_patient",
                        (PatientIdentifiers::Table, PatientIdentifiers::PatientId),
                        (Patients::Table, Patients::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_identifiers_organization_local_id")
                    .table(PatientIdentifiers::Table)
                    .col(PatientIdentifiers::OrganizationId)
                    .col(PatientIdentifiers::LocalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_identifiers_patient")
                    .table(PatientIdentifiers::Table)
                    .col(PatientIdentifiers::PatientId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CareTeamMemberships::Table)
                    .col(id(CareTeamMemberships::Id))
                    .col(uuid_ref(CareTeamMemberships::PatientId))
                    .col(uuid_ref(CareTeamMemberships::OrganizationId))
                    .col(ColumnDef::new(CareTeamMemberships::MemberId).uuid().null())
                    .col(text(CareTeamMemberships::Role))
                    .col(
                        ColumnDef::new(CareTeamMemberships::StartDate)
                            .date()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CareTeamMemberships::EndDate).date().null())
                    .col(timestamp(CareTeamMemberships::CreatedAt))
                    .col(timestamp(CareTeamMemberships::UpdatedAt))
                    .col(
                        ColumnDef::new(CareTeamMemberships::RecordedByOrganization)
                            .uuid()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CareTeamMemberships::RecordedByMember)
                            .uuid()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_care_team_patient",
                        (CareTeamMemberships::Table, CareTeamMemberships::PatientId),
                        (Patients::Table, Patients::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_care_team_organization",
                        (
                            CareTeamMemberships::Table,
                            CareTeamMemberships::OrganizationId,
                        ),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_care_team_member",
                        (CareTeamMemberships::Table, CareTeamMemberships::MemberId),
                        (Members::Table, Members::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_care_team_patient", CareTeamMemberships::PatientId),
            (
                "idx_care_team_organization",
                CareTeamMemberships::OrganizationId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CareTeamMemberships::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(id(ApiKeys::Id))
                    .col(uuid_ref(ApiKeys::OrganizationId))
                    .col(text(ApiKeys::Name))
                    .col(text(ApiKeys::SecretHash))
                    .col(timestamp(ApiKeys::CreatedAt))
                    .col(
                        ColumnDef::new(ApiKeys::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_api_keys_organization",
                        (ApiKeys::Table, ApiKeys::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApiKeys::Table.into_iden(),
            CareTeamMemberships::Table.into_iden(),
            PatientIdentifiers::Table.into_iden(),
            Patients::Table.into_iden(),
            Members::Table.into_iden(),
            OrganizationCapabilities::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
