//! Emergency access (救急時閲覧) gets a reason code (心肺停止, 意識障害,
//! 救急搬送中 …) beside the reason in words. `reason` keeps the reason in
//! words as before (for a code alone, the code's label); grants opened
//! before this migration have no code.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EmergencyGrants {
    Table,
    ReasonCode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One nullable column: portable on SQLite (ADD COLUMN) and PostgreSQL.
        manager
            .alter_table(
                Table::alter()
                    .table(EmergencyGrants::Table)
                    .add_column(ColumnDef::new(EmergencyGrants::ReasonCode).string().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(EmergencyGrants::Table)
                    .drop_column(EmergencyGrants::ReasonCode)
                    .to_owned(),
            )
            .await
    }
}
