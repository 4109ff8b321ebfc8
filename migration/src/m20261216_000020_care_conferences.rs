//! Care conferences of several kinds (issue 14 part 2): the discharge
//! conference (退院前カンファレンス) table gains the conference's kind — the
//! care manager's サービス担当者会議, a case conference of the team
//! (多職種カンファレンス), an end-of-life conference (看取り・デスカンファレンス)
//! — an agenda, and the minutes the organiser records once it has been held
//! (the points of the 居宅サービス計画 第4表: what was discussed, what was
//! decided, what remains, when next); each invitation gains whether the
//! organisation attended. Rows before this migration are discharge
//! conferences. One column per statement: SQLite alters one at a time.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DischargeConferences {
    Table,
    Kind,
    Agenda,
    MinutesDiscussion,
    MinutesDecisions,
    MinutesOpenIssues,
    MinutesOtherAttendees,
    NextMeetingOn,
    MinutesRecordedAt,
    MinutesRecordedByMember,
}

#[derive(DeriveIden)]
enum DischargeConferenceInvitations {
    Table,
    Attended,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DischargeConferences as C;
        let columns = [
            ColumnDef::new(C::Kind)
                .string()
                .not_null()
                .default("DISCHARGE")
                .to_owned(),
            ColumnDef::new(C::Agenda).text().null().to_owned(),
            ColumnDef::new(C::MinutesDiscussion)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(C::MinutesDecisions).text().null().to_owned(),
            ColumnDef::new(C::MinutesOpenIssues)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(C::MinutesOtherAttendees)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(C::NextMeetingOn).date().null().to_owned(),
            ColumnDef::new(C::MinutesRecordedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new(C::MinutesRecordedByMember)
                .uuid()
                .null()
                .to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(C::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(DischargeConferenceInvitations::Table)
                    .add_column(
                        ColumnDef::new(DischargeConferenceInvitations::Attended)
                            .boolean()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_discharge_conferences_patient_kind")
                    .table(C::Table)
                    .col(Alias::new("patient_id"))
                    .col(C::Kind)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use DischargeConferences as C;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_discharge_conferences_patient_kind")
                    .table(C::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DischargeConferenceInvitations::Table)
                    .drop_column(DischargeConferenceInvitations::Attended)
                    .to_owned(),
            )
            .await?;
        for column in [
            C::MinutesRecordedByMember,
            C::MinutesRecordedAt,
            C::NextMeetingOn,
            C::MinutesOtherAttendees,
            C::MinutesOpenIssues,
            C::MinutesDecisions,
            C::MinutesDiscussion,
            C::Agenda,
            C::Kind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(C::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
