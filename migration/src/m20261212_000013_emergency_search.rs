//! 救急時の患者検索 (emergency patient search):
//! - an index on the patients' birth date, which every emergency search
//!   names exactly: the search reads the few patients born that day and
//!   compares their names, so its cost does not grow with the region;
//! - a counter per member of the searches in the current window, which caps
//!   how many searches one member makes (`EMERGENCY_SEARCH_LIMIT`). One row
//!   per member, updated in place: the application role may not delete rows.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Patients {
    Table,
    BirthDate,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EmergencySearchCounters {
    Table,
    MemberId,
    WindowStartedAt,
    Searches,
}

const INDEX: &str = "idx_patients_birth_date";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Patients::Table)
                    .col(Patients::BirthDate)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmergencySearchCounters::Table)
                    .col(
                        ColumnDef::new(EmergencySearchCounters::MemberId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EmergencySearchCounters::WindowStartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EmergencySearchCounters::Searches)
                            .integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_emergency_search_counters_member")
                            .from(
                                EmergencySearchCounters::Table,
                                EmergencySearchCounters::MemberId,
                            )
                            .to(Members::Table, Members::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(EmergencySearchCounters::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(Patients::Table).to_owned())
            .await
    }
}
