//! Identity for FHIR (issue 13, 名寄せ): an organisation's 10-digit medical
//! institution code (医療機関コード), by which JP-CLINS senders name
//! themselves, and a patient's JP-CLINS insured-person identifier
//! (被保険者個人識別子, `保険者番号:記号:番号:枝番`), by which an incoming
//! Patient is matched when the sender's local ID is not yet known. Both are
//! optional and unique where present (NULLs do not collide in either
//! database).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    MedicalInstitutionCode,
}

#[derive(DeriveIden)]
enum Patients {
    Table,
    InsuredPersonId,
}

const ORG_INDEX: &str = "idx_organizations_medical_institution_code";
const PATIENT_INDEX: &str = "idx_patients_insured_person_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(
                        ColumnDef::new(Organizations::MedicalInstitutionCode)
                            .string()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(ORG_INDEX)
                    .table(Organizations::Table)
                    .col(Organizations::MedicalInstitutionCode)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .add_column(ColumnDef::new(Patients::InsuredPersonId).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PATIENT_INDEX)
                    .table(Patients::Table)
                    .col(Patients::InsuredPersonId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(PATIENT_INDEX)
                    .table(Patients::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Patients::Table)
                    .drop_column(Patients::InsuredPersonId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(ORG_INDEX)
                    .table(Organizations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(Organizations::MedicalInstitutionCode)
                    .to_owned(),
            )
            .await
    }
}
