//! A member's identity at the network's identity provider: the provider's
//! issuer (`iss`) and the subject it gives the member (the value of the
//! claim `RENKEI_JWT_MEMBER_CLAIM`, `sub` by default). With
//! `RENKEI_JWT_MEMBER_BY=external-subject`, a token names its member through
//! this pair instead of carrying the member's id. A subject names at most one
//! member per issuer; members without one (both columns null) are many.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Members {
    Table,
    ExternalIssuer,
    ExternalSubject,
}

const INDEX: &str = "uq_members_external_subject";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in [Members::ExternalIssuer, Members::ExternalSubject] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Members::Table)
                        .add_column(ColumnDef::new(column).string().null())
                        .to_owned(),
                )
                .await?;
        }
        // Nulls are distinct in a unique index on both backends: only set
        // pairs are unique.
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Members::Table)
                    .col(Members::ExternalIssuer)
                    .col(Members::ExternalSubject)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Members::Table).to_owned())
            .await?;
        for column in [Members::ExternalSubject, Members::ExternalIssuer] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Members::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
