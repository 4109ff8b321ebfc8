//! Access: consents (with history), objections to emergency access,
//! break-the-glass grants, notifications, API-key permissions, and the
//! append-only, hash-chained audit log.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Consents {
    Table,
    Id,
    PatientId,
    Scope,
    OrganizationIds,
    ExcludedCategories,
    Method,
    FormReference,
    ObtainedOn,
    RecordedByMember,
    RecordedByOrganization,
    RecordedAt,
    WithdrawnAt,
    WithdrawnByMember,
    WithdrawalReason,
}

#[derive(DeriveIden)]
enum EmergencyObjections {
    Table,
    Id,
    PatientId,
    Note,
    RecordedByMember,
    RecordedByOrganization,
    RecordedAt,
    WithdrawnAt,
}

#[derive(DeriveIden)]
enum EmergencyGrants {
    Table,
    Id,
    PatientId,
    MemberId,
    OrganizationId,
    Reason,
    OpenedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    OrganizationId,
    PatientId,
    Kind,
    Message,
    CreatedAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Permissions,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    OccurredAt,
    ActorKind,
    ActorId,
    OrganizationId,
    PatientId,
    Action,
    Categories,
    RequestId,
    Outcome,
    Detail,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Seq,
    Hash,
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

fn uuid_col(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).uuid().not_null().to_owned()
}
fn text(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().not_null().to_owned()
}
fn text_null(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string().null().to_owned()
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
                    .table(Consents::Table)
                    .col(ColumnDef::new(Consents::Id).uuid().not_null().primary_key())
                    .col(uuid_col(Consents::PatientId))
                    .col(text(Consents::Scope))
                    // JSON arrays as text: portable, and read whole with the row.
                    .col(text(Consents::OrganizationIds))
                    .col(text(Consents::ExcludedCategories))
                    .col(text(Consents::Method))
                    .col(text_null(Consents::FormReference))
                    .col(ColumnDef::new(Consents::ObtainedOn).date().not_null())
                    .col(ColumnDef::new(Consents::RecordedByMember).uuid().null())
                    .col(uuid_col(Consents::RecordedByOrganization))
                    .col(ts(Consents::RecordedAt))
                    .col(ts_null(Consents::WithdrawnAt))
                    .col(ColumnDef::new(Consents::WithdrawnByMember).uuid().null())
                    .col(text_null(Consents::WithdrawalReason))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_consents_patient")
                            .from(Consents::Table, Consents::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_consents_patient",
            Consents::Table,
            &["patient_id"],
        )
        .await?;
        // At most one consent in force per patient, whatever the concurrency:
        // a partial unique index (SQLite and PostgreSQL both have them).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_consents_active ON consents (patient_id) WHERE withdrawn_at IS NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmergencyObjections::Table)
                    .col(
                        ColumnDef::new(EmergencyObjections::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid_col(EmergencyObjections::PatientId))
                    .col(text_null(EmergencyObjections::Note))
                    .col(
                        ColumnDef::new(EmergencyObjections::RecordedByMember)
                            .uuid()
                            .null(),
                    )
                    .col(uuid_col(EmergencyObjections::RecordedByOrganization))
                    .col(ts(EmergencyObjections::RecordedAt))
                    .col(ts_null(EmergencyObjections::WithdrawnAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_objections_patient")
                            .from(EmergencyObjections::Table, EmergencyObjections::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_objections_patient",
            EmergencyObjections::Table,
            &["patient_id"],
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_objections_active ON emergency_objections (patient_id) WHERE withdrawn_at IS NULL",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmergencyGrants::Table)
                    .col(
                        ColumnDef::new(EmergencyGrants::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid_col(EmergencyGrants::PatientId))
                    .col(uuid_col(EmergencyGrants::MemberId))
                    .col(uuid_col(EmergencyGrants::OrganizationId))
                    .col(text(EmergencyGrants::Reason))
                    .col(ts(EmergencyGrants::OpenedAt))
                    .col(ts(EmergencyGrants::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_grants_patient")
                            .from(EmergencyGrants::Table, EmergencyGrants::PatientId)
                            .to(Patients::Table, Patients::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_grants_member_patient",
            EmergencyGrants::Table,
            &["member_id", "patient_id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(
                        ColumnDef::new(Notifications::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid_col(Notifications::OrganizationId))
                    .col(ColumnDef::new(Notifications::PatientId).uuid().null())
                    .col(text(Notifications::Kind))
                    .col(text(Notifications::Message))
                    .col(ts(Notifications::CreatedAt))
                    .col(ts_null(Notifications::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_organization")
                            .from(Notifications::Table, Notifications::OrganizationId)
                            .to(Organizations::Table, Organizations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_notifications_organization",
            Notifications::Table,
            &["organization_id"],
        )
        .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(
                        ColumnDef::new(ApiKeys::Permissions)
                            .string()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(
                        ColumnDef::new(AuditLog::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ts(AuditLog::OccurredAt))
                    .col(text(AuditLog::ActorKind))
                    .col(uuid_col(AuditLog::ActorId))
                    .col(uuid_col(AuditLog::OrganizationId))
                    .col(ColumnDef::new(AuditLog::PatientId).uuid().null())
                    .col(text(AuditLog::Action))
                    .col(text(AuditLog::Categories))
                    .col(text(AuditLog::RequestId))
                    .col(text(AuditLog::Outcome))
                    .col(text_null(AuditLog::Detail))
                    .col(text(AuditLog::PrevHash))
                    .col(text(AuditLog::Hash))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_audit_patient",
            AuditLog::Table,
            &["patient_id"],
        )
        .await?;
        index(manager, "idx_audit_actor", AuditLog::Table, &["actor_id"]).await?;

        // The chain's head: the last entry's number and hash. Writers lock this
        // row to append (so instances sharing a database take turns), and
        // `audit verify` compares it with the last entry, which detects entries
        // removed from the end of the log.
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .col(
                        ColumnDef::new(AuditHead::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditHead::Seq).big_integer().not_null())
                    .col(text(AuditHead::Hash))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(AuditHead::Table)
                    .columns([AuditHead::Id, AuditHead::Seq, AuditHead::Hash])
                    .values_panic([1.into(), 0i64.into(), GENESIS_HASH.into()])
                    .to_owned(),
            )
            .await?;

        // On PostgreSQL the database itself refuses to change or remove audit
        // entries, whoever asks. (SQLite has triggers too, but an embedded file
        // is only as safe as its file permissions; the hash chain catches edits.)
        let conn = manager.get_connection();
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                conn.execute_unprepared(
                    "CREATE FUNCTION renkei_audit_log_is_append_only() RETURNS trigger AS $$
                     BEGIN RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP; END;
                     $$ LANGUAGE plpgsql",
                )
                .await?;
                conn.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
                     FOR EACH ROW EXECUTE FUNCTION renkei_audit_log_is_append_only()",
                )
                .await?;
                conn.execute_unprepared(
                    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
                     FOR EACH STATEMENT EXECUTE FUNCTION renkei_audit_log_is_append_only()",
                )
                .await?;
            }
            sea_orm::DatabaseBackend::Sqlite => {
                for op in ["UPDATE", "DELETE"] {
                    conn.execute_unprepared(&format!(
                        "CREATE TRIGGER audit_log_no_{} BEFORE {op} ON audit_log
                         BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
                        op.to_lowercase()
                    ))
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log; DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log; DROP FUNCTION IF EXISTS renkei_audit_log_is_append_only()")
                .await?;
        }
        for t in [
            AuditHead::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Notifications::Table.into_iden(),
            EmergencyGrants::Table.into_iden(),
            EmergencyObjections::Table.into_iden(),
            Consents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::Permissions)
                    .to_owned(),
            )
            .await
    }
}

/// The `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
