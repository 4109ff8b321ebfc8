//! FHIR out: what the caller read through GraphQL (a patient, its records)
//! as JP Core-profiled R4 resources. Pure: no I/O.
//!
//! Each resource is built to be read back by [`crate::inbound`] into the
//! same record: the record's source ID is the resource's identifier (JP
//! Core's resource instance identifier), its time the resource's own
//! (`recordedDate`, `effectiveDateTime`, `authoredOn`, `date`, to the
//! second, in Japan's offset), its codes the codings it was sent with — so a
//! sender importing what it exported changes nothing.

use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};

use crate::systems::{self, profile};

/// The GraphQL selection the mapping reads, per record kind.
pub const RECORD_FIELDS: &str = "id kind category version sourceRecordId effectiveAt recordedAt undisclosed
  sourceOrganization { id name medicalInstitutionCode }
  author { name }
  data {
    ... on ConditionData { name icd10 clinicalStatus sensitivity onset resolvedOn note codings { system code display } }
    ... on AllergyData { substance allergyType reaction severity codings { system code display } }
    ... on DrugContraindicationData { drug yjCode reason codings { system code display } }
    ... on InfectionData { pathogen otherName result testedOn note codings { system code display } }
    ... on LabResultData { code name value numericValue unit referenceLow referenceHigh abnormal codings { system code display } }
    ... on PrescriptionData { medicationType drug yjCode dose route frequency days startDate endDate prescriber codings { system code display } }
    ... on ClinicalDocumentData { documentType title text authorName codings { system code display } }
  }";

/// The record kinds expressed in FHIR, and the JP-CLINS six items among them.
pub const EXPORTED_KINDS: &[&str] = &[
    "CONDITION",
    "ALLERGY",
    "DRUG_CONTRAINDICATION",
    "INFECTION",
    "LAB_RESULT",
    "PRESCRIPTION",
    "CLINICAL_DOCUMENT",
];
pub const SIX_ITEMS: &[&str] = &[
    "CONDITION",
    "ALLERGY",
    "DRUG_CONTRAINDICATION",
    "INFECTION",
    "LAB_RESULT",
    "PRESCRIPTION",
];

/// The resource types [`patient`] and [`record`] write: the files of a
/// bulk export.
pub const RESOURCE_TYPES: &[&str] = &[
    "Patient",
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "MedicationRequest",
    "Composition",
];

/// The data category of each exported kind (the hub's default category).
pub fn category_of(kind: &str) -> &'static str {
    match kind {
        "CONDITION" => "CONDITIONS",
        "ALLERGY" => "ALLERGIES",
        "DRUG_CONTRAINDICATION" => "DRUG_CONTRAINDICATIONS",
        "INFECTION" => "INFECTIONS",
        "LAB_RESULT" => "LAB_RESULTS",
        "PRESCRIPTION" => "MEDICATIONS",
        _ => "CLINICAL_DOCUMENTS",
    }
}

fn jst(instant: &str) -> String {
    DateTime::parse_from_rfc3339(instant)
        .map(|t| {
            t.with_timezone(&FixedOffset::east_opt(9 * 3600).expect("+09:00"))
                .to_rfc3339()
        })
        .unwrap_or_else(|_| instant.to_string())
}

/// The `urn:uuid:` full URL of a hub id.
pub fn full_url(id: &str) -> String {
    format!("urn:uuid:{id}")
}

fn meta(profile: &str, version: &Value) -> Value {
    json!({ "versionId": version.to_string(), "profile": [profile] })
}

fn identifier(record: &Value) -> Value {
    match record["sourceRecordId"].as_str() {
        Some(v) => json!([{ "system": systems::RESOURCE_INSTANCE_IDENTIFIER, "value": v }]),
        None => {
            json!([{ "system": systems::RESOURCE_INSTANCE_IDENTIFIER, "value": format!("renkei:{}", record["id"].as_str().unwrap_or_default()) }])
        }
    }
}

/// A CodeableConcept of the codings kept, plus `extra` when not among them.
fn concept(data: &Value, text: &Value, extra: Option<(&str, &str)>) -> Value {
    let mut coding: Vec<Value> = data["codings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mut out = json!({ "system": c["system"], "code": c["code"] });
            if c["display"].is_string() {
                out["display"] = c["display"].clone();
            }
            out
        })
        .collect();
    if let Some((system, code)) = extra
        && !coding
            .iter()
            .any(|c| c["system"] == system && c["code"] == code)
    {
        coding.push(json!({ "system": system, "code": code }));
    }
    let mut cc = json!({ "text": text });
    if !coding.is_empty() {
        cc["coding"] = Value::Array(coding);
    }
    cc
}

fn note(text: &Value) -> Option<Value> {
    text.as_str().map(|t| json!([{ "text": t }]))
}

fn put(resource: &mut Value, key: &str, value: Option<Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        resource[key] = v;
    }
}

/// A record as a resource, `None` for a kind not expressed in FHIR.
pub fn record(record: &Value, patient_url: &str) -> Option<Value> {
    let data = &record["data"];
    let id = record["id"].as_str()?;
    let version = &record["version"];
    let at = jst(record["effectiveAt"].as_str().unwrap_or_default());
    let subject = json!({ "reference": patient_url });
    let mut r = match record["kind"].as_str()? {
        "CONDITION" => {
            let status = if data["clinicalStatus"] == "RESOLVED" {
                "resolved"
            } else {
                "active"
            };
            let icd = data["icd10"].as_str().map(|c| (systems::ICD10, c));
            let mut r = json!({
                "resourceType": "Condition", "meta": meta(profile::CONDITION, version),
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status }] },
                "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }] },
                "code": concept(data, &data["name"], icd),
                "subject": subject, "recordedDate": at,
            });
            put(&mut r, "onsetDateTime", Some(data["onset"].clone()));
            put(
                &mut r,
                "abatementDateTime",
                Some(data["resolvedOn"].clone()),
            );
            put(&mut r, "note", note(&data["note"]));
            r
        }
        "ALLERGY" => {
            let category = match data["allergyType"].as_str() {
                Some("DRUG") => "medication",
                Some("FOOD") => "food",
                _ => "environment",
            };
            let severity = match data["severity"].as_str() {
                Some("MILD") => Some("mild"),
                Some("MODERATE") => Some("moderate"),
                Some("SEVERE") => Some("severe"),
                _ => None,
            };
            let mut r = json!({
                "resourceType": "AllergyIntolerance", "meta": meta(profile::ALLERGY_INTOLERANCE, version),
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
                "type": "allergy", "category": [category],
                "code": concept(data, &data["substance"], None),
                "patient": subject, "recordedDate": at,
            });
            // A drug allergy is never `high` here: JP-CLINS reads
            // medication + high as a drug contraindication.
            if let Some(reaction) = data["reaction"].as_str() {
                let mut x = json!({ "manifestation": [{ "text": reaction }] });
                put(&mut x, "severity", severity.map(|s| json!(s)));
                r["reaction"] = json!([x]);
            } else if severity == Some("severe") && category != "medication" {
                r["criticality"] = json!("high");
            }
            r
        }
        "DRUG_CONTRAINDICATION" => {
            let yj = data["yjCode"].as_str().map(|c| (systems::YJ, c));
            json!({
                "resourceType": "AllergyIntolerance", "meta": meta(profile::ALLERGY_INTOLERANCE, version),
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
                "category": ["medication"], "criticality": "high",
                "code": concept(data, &data["drug"], yj),
                "patient": subject, "recordedDate": at,
                "note": [{ "text": data["reason"] }],
            })
        }
        "INFECTION" => {
            let name = match data["pathogen"].as_str() {
                Some("HBS_ANTIGEN") => json!("HBs抗原"),
                Some("HCV_ANTIBODY") => json!("HCV抗体"),
                Some("HIV") => json!("HIV抗体"),
                Some("SYPHILIS") => json!("梅毒"),
                Some("MRSA") => json!("MRSA"),
                _ => data["otherName"].clone(),
            };
            let name = if name.is_null() {
                data["pathogen"].clone()
            } else {
                name
            };
            let (text, interpretation) = match data["result"].as_str() {
                Some("POSITIVE") => ("陽性", Some("POS")),
                Some("NEGATIVE") => ("陰性", Some("NEG")),
                _ => ("判定不能", None),
            };
            let mut r = json!({
                "resourceType": "Observation", "meta": meta(systems::profile::OBSERVATION_INFECTION, version),
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                "code": concept(data, &name, None),
                "subject": subject, "effectiveDateTime": at, "valueString": text,
            });
            put(&mut r, "interpretation", interpretation.map(|c| json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": c }] }])));
            put(&mut r, "note", note(&data["note"]));
            r
        }
        "LAB_RESULT" => {
            let code = data["code"].as_str().map(|c| (systems::JLAC10, c));
            let mut r = json!({
                "resourceType": "Observation", "meta": meta(profile::OBSERVATION_LAB, version),
                "status": "final",
                "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
                "code": concept(data, &data["name"], code),
                "subject": subject, "effectiveDateTime": at,
            });
            // A plain number as a quantity, when it reads back the same;
            // anything else (「陰性」「<0.5」「6,500」) as text.
            let value = data["value"].as_str().unwrap_or_default();
            let as_number = serde_json::from_str::<Value>(value)
                .ok()
                .filter(|n| n.is_number() && reads_back(n, value));
            match as_number {
                Some(n) if data["numericValue"].is_number() => {
                    let mut q = json!({ "value": n });
                    put(&mut q, "unit", Some(data["unit"].clone()));
                    r["valueQuantity"] = q;
                }
                _ => r["valueString"] = json!(value),
            }
            let mut range = json!({});
            put(
                &mut range,
                "low",
                data["referenceLow"]
                    .as_f64()
                    .map(|v| json!({ "value": number(v) })),
            );
            put(
                &mut range,
                "high",
                data["referenceHigh"]
                    .as_f64()
                    .map(|v| json!({ "value": number(v) })),
            );
            if range.as_object().is_some_and(|o| !o.is_empty()) {
                r["referenceRange"] = json!([range]);
            }
            let flag = match data["abnormal"].as_str() {
                Some("HIGH") => Some("H"),
                Some("LOW") => Some("L"),
                Some("NORMAL") => Some("N"),
                Some("ABNORMAL") => Some("A"),
                _ => None,
            };
            put(&mut r, "interpretation", flag.map(|c| json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": c }] }])));
            r
        }
        "PRESCRIPTION" => {
            let yj = data["yjCode"].as_str().map(|c| (systems::YJ, c));
            let route = match data["route"].as_str() {
                Some("ORAL") => Some(("PO", "口")),
                Some("TOPICAL") => Some(("TP", "外用")),
                Some("INJECTION") => Some(("IV", "静脈内")),
                Some("INHALATION") => Some(("IH", "吸入")),
                _ => None,
            };
            let mut dosage = json!({
                "text": data["frequency"], "timing": { "code": { "text": data["frequency"] } },
            });
            put(&mut dosage, "route", route.map(|(c, d)| json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0162", "code": c, "display": d }] })));
            put(
                &mut dosage,
                "doseAndRate",
                dose(data["dose"].as_str().unwrap_or_default())
                    .map(|q| json!([{ "doseQuantity": q }])),
            );
            let mut dispense = json!({ "validityPeriod": { "start": data["startDate"] } });
            put(
                &mut dispense["validityPeriod"],
                "end",
                Some(data["endDate"].clone()),
            );
            put(&mut dispense, "expectedSupplyDuration", data["days"].as_i64().map(|d| json!({ "value": d, "unit": "日", "system": "http://unitsofmeasure.org", "code": "d" })));
            let mut r = json!({
                "resourceType": "MedicationRequest", "meta": meta(profile::MEDICATION_REQUEST, version),
                "status": "active", "intent": "order",
                "medicationCodeableConcept": concept(data, &data["drug"], yj),
                "subject": subject, "authoredOn": at,
                "dosageInstruction": [dosage], "dispenseRequest": dispense,
            });
            put(
                &mut r,
                "requester",
                data["prescriber"].as_str().map(|p| json!({ "display": p })),
            );
            r
        }
        "CLINICAL_DOCUMENT" => {
            let loinc = match data["documentType"].as_str() {
                Some("REFERRAL_LETTER") => Some("57133-1"),
                Some("DISCHARGE_SUMMARY") => Some("18842-5"),
                Some("CHECKUP_REPORT") => Some("53576-5"),
                _ => None,
            };
            let mut ty = concept(
                data,
                &data["documentType"],
                loinc.map(|c| (systems::LOINC, c)),
            );
            ty.as_object_mut().map(|o| o.remove("text"));
            if ty.get("coding").is_none() {
                ty["text"] = data["documentType"].clone();
            }
            let lines: String = data["text"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .map(|l| format!("<p>{}</p>", escape(l)))
                .collect();
            let mut r = json!({
                "resourceType": "Composition", "meta": meta(profile::COMPOSITION, version),
                "status": "final", "type": ty, "subject": subject, "date": at,
                "author": [{ "display": data["authorName"].as_str().unwrap_or("記載者不明") }],
                "title": data["title"],
                "section": [{ "text": { "status": "generated",
                    "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{lines}</div>") } }],
            });
            if let Some(v) = record["sourceRecordId"].as_str() {
                r["identifier"] =
                    json!({ "system": systems::RESOURCE_INSTANCE_IDENTIFIER, "value": v });
            }
            r["id"] = json!(id);
            return Some(not_for_the_patient(r, record));
        }
        _ => return None,
    };
    r["id"] = json!(id);
    r["identifier"] = identifier(record);
    Some(not_for_the_patient(r, record))
}

/// The record's security labels, which [`crate::inbound`] reads back: a
/// record the patient has not been told of (未告知) carries `NOPAT` — not
/// to be disclosed to the patient, family or caregivers — so that the
/// receiving system can keep it from them as the hub does; a record of a
/// sensitive category (精神疾患, HIV, 遺伝性疾患) its information sensitivity
/// policy ([`systems::SENSITIVITY_LABELS`]) — a diagnosis by the
/// sensitivity it was marked with (one that is HIV by its ICD-10 code or
/// name says so by them), any other record by its category.
fn not_for_the_patient(mut r: Value, record: &Value) -> Value {
    let mut labels = Vec::new();
    if record["undisclosed"] == true {
        labels.push(json!({
            "system": systems::ACT_CODE, "code": systems::NOT_FOR_THE_PATIENT,
            "display": "no disclosure to patient, family or caregivers without attending provider's authorization",
        }));
    }
    // A diagnosis carries the sensitivity it was marked with (which the
    // import reads back as that mark: a label from its category would mark
    // one that is HIV by its code alone, and its return be a new version);
    // any other record the label of its category, which follows from its
    // content (an HIV test).
    let label = if record["kind"] == "CONDITION" {
        let sensitivity = record["data"]["sensitivity"].as_str();
        systems::SENSITIVITY_LABELS
            .iter()
            .find(|(_, s, _)| Some(*s) == sensitivity)
    } else {
        systems::SENSITIVITY_LABELS
            .iter()
            .find(|(_, _, category)| record["category"] == *category)
    };
    if let Some((code, _, _)) = label {
        labels.push(json!({ "system": systems::ACT_CODE, "code": code }));
    }
    if !labels.is_empty() {
        r["meta"]["security"] = Value::Array(labels);
    }
    r
}

/// Whether a JSON number prints as the text it was read from (「7.0」 stays
/// 「7.0」, so importing it again gives the same value).
fn reads_back(n: &Value, text: &str) -> bool {
    let printed = n.to_string();
    printed.as_str() == text
}

/// An integral value as an integer (`1`, not `1.0`), as senders write it.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// 「1錠」 as a quantity: the leading number and the unit after it.
fn dose(text: &str) -> Option<Value> {
    let split = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(text.len(), |(i, _)| i);
    let value: f64 = text[..split].parse().ok()?;
    let unit = text[split..].trim();
    let mut q = json!({ "value": number(value) });
    if !unit.is_empty() {
        q["unit"] = json!(unit);
    }
    Some(q)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The patient as JP_Patient: the local IDs of the facilities that have a
/// medical institution code, the insured-person identifier, the kanji name
/// and its kana reading, and what else the caller may read.
pub fn patient(p: &Value) -> Value {
    let mut identifiers: Vec<Value> = p["identifiers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let code = i["organization"]["medicalInstitutionCode"].as_str()?;
            Some(json!({ "system": format!("{}{code}", systems::LOCAL_PATIENT_ID_OID_PREFIX), "value": i["localId"] }))
        })
        .collect();
    if let Some(insured) = p["insuredPersonIdentifier"].as_str() {
        identifiers.push(json!({ "system": systems::INSURED_PERSON_ID, "value": insured }));
    }
    let mut r = json!({
        "resourceType": "Patient", "id": p["id"],
        "meta": { "profile": [profile::PATIENT] },
    });
    if !identifiers.is_empty() {
        r["identifier"] = Value::Array(identifiers);
    }
    let mut names = Vec::new();
    if let Some(n) = p["name"].as_str() {
        names.push(json!({ "extension": [{ "url": systems::NAME_REPRESENTATION, "valueCode": "IDE" }], "use": "official", "text": n }));
    }
    if let Some(n) = p["nameKana"].as_str() {
        names.push(json!({ "extension": [{ "url": systems::NAME_REPRESENTATION, "valueCode": "SYL" }], "use": "official", "text": n }));
    }
    if !names.is_empty() {
        r["name"] = Value::Array(names);
    }
    put(
        &mut r,
        "gender",
        p["sex"].as_str().map(|s| json!(s.to_ascii_lowercase())),
    );
    put(&mut r, "birthDate", Some(p["birthDate"].clone()));
    if p["address"].is_string() || p["postalCode"].is_string() {
        let mut a = json!({});
        put(&mut a, "text", Some(p["address"].clone()));
        put(&mut a, "postalCode", Some(p["postalCode"].clone()));
        r["address"] = json!([a]);
    }
    put(
        &mut r,
        "telecom",
        p["phone"]
            .as_str()
            .map(|t| json!([{ "system": "phone", "value": t }])),
    );
    if p["status"] == "DECEASED" {
        r["deceasedBoolean"] = json!(true);
    }
    r
}

/// What the caller may not read, said without content or count: an
/// `OperationOutcome` naming the withheld data categories.
pub fn withheld(categories: &[String]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "id": "withheld",
        "issue": [{
            "severity": "information", "code": "suppressed",
            "diagnostics": format!(
                "Not included: data of the categories you may not read ({}). Whether any records of them exist is not said.",
                categories.join(", ")
            ),
        }],
    })
}

/// A `searchset` bundle: the patient (`match`), its resources (`include`)
/// and, when something was withheld, the outcome saying so (`outcome`),
/// with the bundle marked as a redacted view (`meta.security` REDACTED).
pub fn searchset(patient: Value, resources: Vec<Value>, withheld_categories: &[String]) -> Value {
    let mut entries = vec![json!({
        "fullUrl": full_url(patient["id"].as_str().unwrap_or_default()),
        "resource": patient, "search": { "mode": "match" },
    })];
    for r in resources {
        entries.push(json!({
            "fullUrl": full_url(r["id"].as_str().unwrap_or_default()),
            "resource": r, "search": { "mode": "include" },
        }));
    }
    let mut bundle = json!({ "resourceType": "Bundle", "type": "searchset" });
    if !withheld_categories.is_empty() {
        bundle["meta"] = json!({ "security": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
            "code": "REDACTED", "display": "redacted",
        }] });
        entries.push(json!({
            "fullUrl": "urn:uuid:00000000-0000-0000-0000-000000000000",
            "resource": withheld(withheld_categories), "search": { "mode": "outcome" },
        }));
    }
    bundle["total"] = json!(1);
    bundle["entry"] = Value::Array(entries);
    bundle
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dose_reads_as_a_quantity() {
        assert_eq!(dose("1錠"), Some(json!({ "value": 1, "unit": "錠" })));
        assert_eq!(dose("0.5包"), Some(json!({ "value": 0.5, "unit": "包" })));
        assert_eq!(dose("適量"), None);
    }

    #[test]
    fn a_number_that_does_not_read_back_the_same_is_text() {
        let r = record(
            &json!({ "id": "r1", "kind": "LAB_RESULT", "version": 1, "effectiveAt": "2024-04-10T00:30:00Z",
                "data": { "name": "白血球数", "value": "6,500", "numericValue": 6500.0, "abnormal": "NORMAL", "codings": [] } }),
            "urn:uuid:p",
        )
        .unwrap();
        assert_eq!(r["valueString"], "6,500");
        assert_eq!(r["effectiveDateTime"], "2024-04-10T09:30:00+09:00");
    }
}
