//! Informal community resources (インフォーマルな地域資源: salons, 見守り,
//! shopping and transport help …; seeds 002:126–188), owned by the
//! organisation (and member) that registered them. Removal is a mark, not a
//! delete: the application role may not delete rows.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CommunityResources {
    Table,
    Id,
    OwnerOrganizationId,
    OwnerMemberId,
    Name,
    ResourceType,
    Municipality,
    Area,
    Schedule,
    Contact,
    Description,
    Public,
    CreatedAt,
    UpdatedAt,
    RemovedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CommunityResources::Table)
                    .col(
                        ColumnDef::new(CommunityResources::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CommunityResources::OwnerOrganizationId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CommunityResources::OwnerMemberId).uuid())
                    .col(ColumnDef::new(CommunityResources::Name).text().not_null())
                    .col(
                        ColumnDef::new(CommunityResources::ResourceType)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CommunityResources::Municipality)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CommunityResources::Area).text())
                    .col(ColumnDef::new(CommunityResources::Schedule).text())
                    .col(ColumnDef::new(CommunityResources::Contact).text())
                    .col(ColumnDef::new(CommunityResources::Description).text())
                    .col(
                        ColumnDef::new(CommunityResources::Public)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(CommunityResources::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CommunityResources::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CommunityResources::RemovedAt).timestamp_with_time_zone())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_community_resources_owner")
                            .from(
                                CommunityResources::Table,
                                CommunityResources::OwnerOrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_community_resources_municipality")
                    .table(CommunityResources::Table)
                    .col(CommunityResources::Municipality)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CommunityResources::Table).to_owned())
            .await
    }
}
