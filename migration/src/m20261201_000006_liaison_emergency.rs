//! Liaison messages (連絡票, what replaces the FAX): threads per patient,
//! their addressees, the messages, read receipts per organisation, and small
//! attachments stored in the database.
//!
//! The emergency information sheet (救急医療情報) needs no table: it is a
//! record of kind `EMERGENCY_INFORMATION` in `records`.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LiaisonThreads {
    Table,
    Id,
    PatientId,
    Subject,
    Urgency,
    WholeCareTeam,
    CreatedByOrganizationId,
    CreatedByMemberId,
    CreatedByApiKeyId,
    CreatedAt,
    LastMessageAt,
}

#[derive(DeriveIden)]
enum LiaisonThreadAddressees {
    Table,
    ThreadId,
    OrganizationId,
}

#[derive(DeriveIden)]
enum LiaisonMessages {
    Table,
    Id,
    ThreadId,
    PatientId,
    AuthorOrganizationId,
    AuthorMemberId,
    AuthorApiKeyId,
    Body,
    ReplyToMessageId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LiaisonReads {
    Table,
    MessageId,
    OrganizationId,
    MemberId,
    ReadAt,
}

#[derive(DeriveIden)]
enum LiaisonAttachments {
    Table,
    Id,
    MessageId,
    Filename,
    MimeType,
    SizeBytes,
    Content,
    CreatedAt,
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

fn fk(
    name: &str,
    from: (impl IntoIden + 'static, impl IntoIden + 'static),
    to: (impl IntoIden + 'static, impl IntoIden + 'static),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use LiaisonAttachments as A;
        use LiaisonMessages as M;
        use LiaisonReads as R;
        use LiaisonThreadAddressees as D;
        use LiaisonThreads as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(ColumnDef::new(T::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(T::PatientId).uuid().not_null())
                    .col(ColumnDef::new(T::Subject).string().not_null())
                    .col(ColumnDef::new(T::Urgency).string().not_null())
                    .col(ColumnDef::new(T::WholeCareTeam).boolean().not_null())
                    .col(ColumnDef::new(T::CreatedByOrganizationId).uuid().not_null())
                    .col(ColumnDef::new(T::CreatedByMemberId).uuid().null())
                    .col(ColumnDef::new(T::CreatedByApiKeyId).uuid().null())
                    .col(
                        ColumnDef::new(T::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(T::LastMessageAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_liaison_threads_patient",
                        (T::Table, T::PatientId),
                        (Patients::Table, Patients::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_liaison_threads_organization",
                        (T::Table, T::CreatedByOrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // A patient's threads, most recently active first; and the inbox,
        // which walks every patient's threads in the same order.
        manager
            .create_index(
                Index::create()
                    .name("idx_liaison_threads_patient")
                    .table(T::Table)
                    .col(T::PatientId)
                    .col(T::LastMessageAt)
                    .col(T::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_liaison_threads_activity")
                    .table(T::Table)
                    .col(T::LastMessageAt)
                    .col(T::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .col(ColumnDef::new(D::ThreadId).uuid().not_null())
                    .col(ColumnDef::new(D::OrganizationId).uuid().not_null())
                    .primary_key(Index::create().col(D::ThreadId).col(D::OrganizationId))
                    .foreign_key(&mut fk(
                        "fk_liaison_addressees_thread",
                        (D::Table, D::ThreadId),
                        (T::Table, T::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_liaison_addressees_organization",
                        (D::Table, D::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(M::Table)
                    .col(ColumnDef::new(M::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(M::ThreadId).uuid().not_null())
                    .col(ColumnDef::new(M::PatientId).uuid().not_null())
                    .col(ColumnDef::new(M::AuthorOrganizationId).uuid().not_null())
                    .col(ColumnDef::new(M::AuthorMemberId).uuid().null())
                    .col(ColumnDef::new(M::AuthorApiKeyId).uuid().null())
                    .col(ColumnDef::new(M::Body).text().not_null())
                    .col(ColumnDef::new(M::ReplyToMessageId).uuid().null())
                    .col(
                        ColumnDef::new(M::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_liaison_messages_thread",
                        (M::Table, M::ThreadId),
                        (T::Table, T::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_liaison_messages_patient",
                        (M::Table, M::PatientId),
                        (Patients::Table, Patients::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_liaison_messages_reply_to",
                        (M::Table, M::ReplyToMessageId),
                        (M::Table, M::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_liaison_messages_thread")
                    .table(M::Table)
                    .col(M::ThreadId)
                    .col(M::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // One receipt per (message, organisation): the primary key is also
        // the index the unread test ("no receipt of mine") uses.
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(ColumnDef::new(R::MessageId).uuid().not_null())
                    .col(ColumnDef::new(R::OrganizationId).uuid().not_null())
                    .col(ColumnDef::new(R::MemberId).uuid().null())
                    .col(
                        ColumnDef::new(R::ReadAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(R::MessageId).col(R::OrganizationId))
                    .foreign_key(&mut fk(
                        "fk_liaison_reads_message",
                        (R::Table, R::MessageId),
                        (M::Table, M::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_liaison_reads_organization",
                        (R::Table, R::OrganizationId),
                        (Organizations::Table, Organizations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(ColumnDef::new(A::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(A::MessageId).uuid().not_null())
                    .col(ColumnDef::new(A::Filename).string().not_null())
                    .col(ColumnDef::new(A::MimeType).string().not_null())
                    .col(ColumnDef::new(A::SizeBytes).integer().not_null())
                    // BLOB on SQLite, bytea on PostgreSQL.
                    .col(ColumnDef::new(A::Content).blob().not_null())
                    .col(
                        ColumnDef::new(A::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut fk(
                        "fk_liaison_attachments_message",
                        (A::Table, A::MessageId),
                        (M::Table, M::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_liaison_attachments_message")
                    .table(A::Table)
                    .col(A::MessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LiaisonAttachments::Table.into_iden(),
            LiaisonReads::Table.into_iden(),
            LiaisonMessages::Table.into_iden(),
            LiaisonThreadAddressees::Table.into_iden(),
            LiaisonThreads::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
