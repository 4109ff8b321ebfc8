//! The words the pages print for the API's closed lists, Japanese first.

use renkei_schema::domain::{
    BedType, Capability, CommunityResourceType, OrganizationKind, Profession, Weekday,
};

pub fn kind(k: OrganizationKind) -> &'static str {
    use OrganizationKind as K;
    match k {
        K::Hospital => "病院",
        K::Clinic => "診療所",
        K::DentalClinic => "歯科診療所",
        K::Pharmacy => "薬局",
        K::VisitingNurseStation => "訪問看護ステーション",
        K::HomeCareSupportOffice => "居宅介護支援事業所",
        K::CareServiceProvider => "介護サービス事業所",
        K::NursingHome => "介護保険施設（特養・老健・介護医療院）",
        K::RehabilitationProvider => "リハビリテーション事業所",
        K::CommunityGeneralSupportCenter => "地域包括支援センター",
        K::Municipality => "市町村",
        K::CoordinationCenter => "在宅医療・介護連携支援センター",
        K::AmbulanceService => "消防・救急",
        K::PublicHealthCenter => "保健所",
        K::SmallMultifunctionalCare => "小規模多機能型居宅介護",
        K::NursingSmallMultifunctionalCare => "看護小規模多機能型居宅介護",
        K::RegularRoundsOnCallCare => "定期巡回・随時対応型訪問介護看護",
        K::WelfareEquipmentRental => "福祉用具貸与",
    }
}

pub fn capability(c: Capability) -> &'static str {
    use Capability as C;
    match c {
        C::HomeVisits => "往診・訪問診療",
        C::TwentyFourHourCover => "24時間対応",
        C::VisitingDentalCare => "訪問歯科診療",
        C::HomeMedicationManagement => "訪問薬剤管理指導",
        C::EndOfLifeCare => "在宅看取り",
        C::BackupBeds => "後方支援病床",
        C::HomeMedicalDevices => "在宅医療機器（酸素・人工呼吸器等）",
        C::DementiaCare => "認知症対応",
        C::VisitingRehabilitation => "訪問リハビリ",
        C::EmergencyAdmission => "救急受入",
        C::ShortStay => "ショートステイ",
        C::DayService => "デイサービス",
        C::VisitingCare => "訪問介護",
    }
}

pub fn bed_type(b: BedType) -> &'static str {
    use BedType as B;
    match b {
        B::Acute => "急性期病床",
        B::Recovery => "回復期・地域包括ケア病床",
        B::Chronic => "療養病床",
        B::ShortStay => "ショートステイ",
        B::SpecialNursingHome => "特別養護老人ホーム",
        B::GeriatricHealthFacility => "介護老人保健施設",
        B::IntegratedCareHospital => "介護医療院",
        B::GroupHome => "グループホーム",
        B::SmallMultifunctionalStay => "小規模多機能・看多機の宿泊",
        B::SeniorHousing => "サ高住・有料老人ホーム",
    }
}

pub fn weekday(d: Weekday) -> &'static str {
    use Weekday as W;
    match d {
        W::Monday => "月",
        W::Tuesday => "火",
        W::Wednesday => "水",
        W::Thursday => "木",
        W::Friday => "金",
        W::Saturday => "土",
        W::Sunday => "日",
        W::Holiday => "祝",
    }
}

pub fn profession(p: Profession) -> &'static str {
    match p.as_str() {
        "PHYSICIAN" => "医師",
        "DENTIST" => "歯科医師",
        "DENTAL_HYGIENIST" => "歯科衛生士",
        "PHARMACIST" => "薬剤師",
        "NURSE" => "看護師",
        "PUBLIC_HEALTH_NURSE" => "保健師",
        "PHYSICAL_THERAPIST" => "理学療法士",
        "OCCUPATIONAL_THERAPIST" => "作業療法士",
        "SPEECH_THERAPIST" => "言語聴覚士",
        "THERAPIST" => "療法士",
        "DIETITIAN" => "管理栄養士",
        "CARE_MANAGER" => "介護支援専門員",
        "CARE_WORKER" => "介護職",
        "MEDICAL_SOCIAL_WORKER" => "医療ソーシャルワーカー",
        "SOCIAL_WORKER" => "社会福祉士",
        "EMS_CREW" => "救急隊員",
        "MUNICIPAL_STAFF" => "自治体職員",
        "NETWORK_ADMINISTRATOR" => "ネットワーク管理者",
        other => other,
    }
}

pub fn resource_type(t: CommunityResourceType) -> &'static str {
    use CommunityResourceType as T;
    match t {
        T::Salon => "サロン・通いの場",
        T::WatchingOver => "見守り",
        T::ShoppingHelp => "買い物支援",
        T::TransportHelp => "移動支援",
        T::Meals => "配食・会食",
        T::DementiaCafe => "認知症カフェ",
        T::CarersGroup => "家族会・介護者の集い",
        T::Other => "その他",
    }
}
