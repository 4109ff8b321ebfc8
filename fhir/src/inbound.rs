//! FHIR in: a JP-CLINS `Bundle` read into what the hub writes — the
//! patients it names and one `writeRecords` item (`RecordInput`, as GraphQL
//! JSON) per resource — or every problem found, each an [`Issue`] whose
//! expression names the element (`Bundle.entry[3].resource.code`).
//!
//! Pure: no I/O. Each resource is first read with the R4 model of the
//! `fhir` crate (element names, types, cardinalities of R4 4.0.1), then
//! mapped by the rules in `docs/fhir.md` (*Mapping*). The hub's own
//! validation (`writeRecords`) then checks the content as it checks any
//! record.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};

use crate::outcome::{Issue, Outcome};
use crate::systems;

/// The kinds of bundle accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleKind {
    /// JP-CLINS 6 items: one resource type per bundle, with its patient.
    Collection,
    Transaction,
    /// The three JP-CLINS documents, `Composition` first.
    Document,
}

/// A patient the bundle names.
#[derive(Clone, Debug, PartialEq)]
pub struct PatientIn {
    /// The `Patient` entry, when the bundle holds one (a logical reference
    /// by identifier names a patient without one).
    pub entry: Option<usize>,
    /// The sender's local patient ID (院内患者ID).
    pub local_id: Option<String>,
    /// 被保険者個人識別子.
    pub insured_person_id: Option<String>,
    /// `RegisterPatientInput` without `localId` and `insuredPersonIdentifier`,
    /// when the entry has what registration needs; else why not.
    pub registration: Result<Value, Issue>,
    /// The patient's consent to record with a registration: a `Consent`
    /// entry about this patient, as `RecordConsentInput` without
    /// `patientId` — or why it cannot be taken, which refuses the bundle
    /// only when the consent is needed (a registration).
    pub consent: Option<(usize, Result<Value, Issue>)>,
}

/// One record to write.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordIn {
    pub entry: usize,
    /// Index into [`Inbound::patients`].
    pub patient: usize,
    pub resource_type: String,
    /// `RecordInput` as GraphQL JSON, without `patientId`.
    pub input: Value,
}

/// What a bundle asks the hub to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbound {
    pub kind: BundleKind,
    /// Entries in the bundle.
    pub entries: usize,
    pub patients: Vec<PatientIn>,
    pub records: Vec<RecordIn>,
    /// Entries read but not stored (Organization, Practitioner, Encounter
    /// … that give context to the records): the response says so.
    pub context: Vec<usize>,
    /// Entries whose status says they are not so (entered in error,
    /// refuted, cancelled), not stored, and why: the response says so.
    pub not_stored: Vec<(usize, String)>,
}

/// The resource types stored as records.
pub const STORED: &[&str] = &[
    "Condition",
    "AllergyIntolerance",
    "Observation",
    "MedicationRequest",
    "Composition",
];

/// Resource types read for context only.
pub const CONTEXT: &[&str] = &[
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Encounter",
    "Coverage",
    "Medication",
    "Specimen",
    "DocumentReference",
    "Binary",
];

fn at(entry: usize, element: &str) -> String {
    if element.is_empty() {
        format!("Bundle.entry[{entry}].resource")
    } else {
        format!("Bundle.entry[{entry}].resource.{element}")
    }
}

fn invalid(entry: usize, element: &str, message: impl Into<String>) -> Issue {
    Issue::error("invalid", message).at(at(entry, element))
}

fn required(entry: usize, element: &str, message: impl Into<String>) -> Issue {
    Issue::error("required", message).at(at(entry, element))
}

/// The R4 model's type for a resource's `resourceType`, applied to `$f`.
macro_rules! by_type {
    ($f:ident, $resource:expr) => {{
        use fhir::r4::resources as r4;
        match $resource["resourceType"].as_str() {
            Some("Condition") => $f::<r4::Condition>($resource),
            Some("AllergyIntolerance") => $f::<r4::AllergyIntolerance>($resource),
            Some("Observation") => $f::<r4::Observation>($resource),
            Some("MedicationRequest") => $f::<r4::MedicationRequest>($resource),
            Some("Composition") => $f::<r4::Composition>($resource),
            Some("Patient") => $f::<r4::Patient>($resource),
            Some("Consent") => $f::<r4::Consent>($resource),
            _ => $f::<r4::Resource>($resource),
        }
    }};
}

/// Reads a resource with the R4 model of the `fhir` crate, for its errors:
/// from the tree in place (`&Value` is a deserializer), with no copy of
/// the resource. The types the hub takes are read as their own structs:
/// `Resource`, the enum of every type, is tagged by `resourceType`, and
/// serde reads such an enum by first copying the whole resource into a
/// buffer of its own, then reading the struct from that — about half of
/// the check's cost (`bench/RESULTS.md`, issue 13, thirteenth pass). The
/// struct is what the enum would read after the copy (it ignores the tag,
/// as it ignores every element it does not know); any other type goes
/// through the enum, which also refuses a `resourceType` R4 does not have.
fn r4_check(resource: &Value) -> Result<(), serde_json::Error> {
    by_type!(read_as, resource)
}

fn read_as<T: serde::de::DeserializeOwned>(resource: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(resource).map(drop)
}

fn read_as_tracked<T: serde::de::DeserializeOwned>(
    resource: &Value,
) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize::<_, T>(resource).map(drop)
}

/// Why a resource that failed [`r4_check`] failed, in words for the
/// sender, and the element (`valueQuantity.value`; empty for the resource
/// itself): read again, tracking the path — only for a resource that
/// failed, so the check of every resource that reads pays nothing for it.
/// serde's words name Rust's types (`as u128`, `variant identifier`, the
/// list of every resource type): these are put as FHIR's.
fn r4_problem(resource: &Value) -> (String, String) {
    let (path, error) = match by_type!(read_as_tracked, resource) {
        Ok(()) => return (String::new(), "the resource does not read as R4".into()),
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
    };
    let mut path = if path == "." { String::new() } else { path };
    // (Below: at most this many elements are tried one by one, each try a
    // copy of the resource and a read of it; R4 resources have fewer than
    // 60 top-level elements, and a resource of thousands is refused at
    // itself rather than answered in quadratic time.)
    const ELEMENTS_TRIED: usize = 64;
    // A required element missing: serde names it in words, at its parent.
    if let Some(rest) = error.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        let element = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        return (element, format!("{name} is required (R4: 1..1)"));
    }
    // The model reads some elements (a primitive with its `_` sibling,
    // a choice of types) through a buffer that loses serde's path: the
    // element is the top-level one without which the resource reads.
    // Not for a resource type R4 does not have: no element would help.
    let of_the_type = error.starts_with("unknown variant") || error.contains("variant identifier");
    if path.is_empty()
        && !of_the_type
        && let Some(map) = resource.as_object()
        && map.len() <= ELEMENTS_TRIED
    {
        // One copy, each element taken out and put back in turn.
        let mut without = Value::Object(map.clone());
        let keys: Vec<String> = map
            .keys()
            .filter(|k| *k != "resourceType")
            .cloned()
            .collect();
        for key in keys {
            let Some(value) = without.as_object_mut().and_then(|o| o.remove(&key)) else {
                continue;
            };
            let reads = r4_check(&without).is_ok();
            if let Some(object) = without.as_object_mut() {
                object.insert(key.clone(), value);
            }
            if reads {
                path = key;
                break;
            }
        }
    }
    let message = if let Some(rest) = error.strip_prefix("unknown variant `")
        && let Some((name, _)) = rest.split_once('`')
    {
        format!("{name:?} is not a resource type of FHIR R4")
    } else if error.contains("variant identifier") {
        "resourceType must be the name of a FHIR R4 resource type".into()
    } else if error.contains(" as u128") || error.contains(" as i128") {
        "a number too large for the element".into()
    } else {
        let message = error
            .split(", expected any value")
            .next()
            .unwrap_or_default()
            .to_string();
        let cut: String = message.chars().take(300).collect();
        if cut.len() < message.len() {
            format!("{cut}…")
        } else {
            cut
        }
    };
    (path, message)
}

/// The deepest a bundle's elements may nest (the bundle itself is level 1).
/// The R4 model reads a resource by recursion — a Composition's sections
/// within sections, extensions within extensions — and a body nested deep
/// enough overflows the stack of the thread reading it, which aborts the
/// whole process, not one request: ≈ 95 levels of sections did on a debug
/// build. JP-CLINS bundles nest ≈ 15 levels (`Bundle.entry.resource.section
/// .section.entry.reference`); 64 leaves room for deeply nested sections and
/// extensions.
pub const MAX_DEPTH: usize = 64;

/// The stack of the thread the R4 model reads a bundle on. The model
/// reads by recursion, each level of some elements costing kilobytes of
/// stack (a contained resource is read through the `Resource` enum, which
/// first copies it): at [`MAX_DEPTH`] the costliest shape measured —
/// contained resources within contained resources — needed 4 MiB on a
/// debug build, more than the 2 MiB of a tokio worker. Only the pages
/// used are taken.
const R4_STACK: usize = 16 << 20;

/// `check` run on a thread of its own with [`R4_STACK`] of stack, the
/// caller waiting: a deep body cannot overflow the stack of the thread
/// serving the request (which would abort the whole process).
fn on_a_deep_stack<T: Send>(check: impl FnOnce() -> T + Send) -> Result<T, Outcome> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("fhir-r4-check".into())
            .stack_size(R4_STACK)
            .spawn_scoped(scope, check)
            .ok()
            .and_then(|thread| thread.join().ok())
    })
    .ok_or_else(|| {
        Issue::error(
            "exception",
            "internal error: the bundle could not be checked; try again",
        )
        .into()
    })
}

/// How deep `value` nests: 1 for a scalar or an empty list or object.
/// The refusal of a body nested past [`MAX_DEPTH`] — or past the JSON
/// reader's own bound (128 levels, [`is_too_deep`]), which refuses it
/// before the hub's rule can.
pub fn too_deep() -> Issue {
    Issue::error(
        "too-costly",
        format!(
            "the body nests its elements more than {MAX_DEPTH} levels deep; FHIR resources do not"
        ),
    )
}

/// Whether serde_json refused a text for nesting past its bound (its
/// error says so in words only).
pub fn is_too_deep(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

/// Without recursion, for the reason [`MAX_DEPTH`] gives.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 1)];
    while let Some((v, level)) = pending.pop() {
        deepest = deepest.max(level);
        match v {
            Value::Array(items) => pending.extend(items.iter().map(|i| (i, level + 1))),
            Value::Object(map) => pending.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// Where a resource carries a modifier extension — on itself or on any
/// element within it, contained resources too: the element's path from the
/// resource (`dosageInstruction[0].modifierExtension`). A modifier changes
/// what its element means (a condition negated, a finding about a
/// relative); R4 (extensibility.html#modifierExtension) has a system that
/// does not know it refuse the resource rather than take it as if the
/// modifier were not there. An empty list is none.
fn modifier_extension(v: &Value) -> Option<String> {
    // Nested no deeper than `MAX_DEPTH`, checked before.
    match v {
        Value::Object(map) => map.iter().find_map(|(name, child)| {
            if name == "modifierExtension" {
                return (!child.is_null() && child.as_array().is_none_or(|a| !a.is_empty()))
                    .then(|| name.clone());
            }
            let rest = modifier_extension(child)?;
            Some(if rest.starts_with('[') {
                format!("{name}{rest}")
            } else {
                format!("{name}.{rest}")
            })
        }),
        Value::Array(items) => items.iter().enumerate().find_map(|(k, item)| {
            let rest = modifier_extension(item)?;
            Some(if rest.starts_with('[') {
                format!("[{k}]{rest}")
            } else {
                format!("[{k}].{rest}")
            })
        }),
        _ => None,
    }
}

/// Reads a bundle. `institution_code` is the sender's 医療機関コード, which
/// names the system of its local patient IDs.
pub fn read(bundle: &Value, institution_code: Option<&str>) -> Result<Inbound, Outcome> {
    if bundle["resourceType"] != "Bundle" {
        return Err(Issue::error("invalid", "the body must be a FHIR Bundle")
            .at("Bundle.resourceType")
            .into());
    }
    let kind = match bundle["type"].as_str() {
        Some("collection") => BundleKind::Collection,
        Some("transaction") => BundleKind::Transaction,
        Some("document") => BundleKind::Document,
        Some(other) => {
            return Err(Issue::error(
                "not-supported",
                format!("Bundle.type {other:?} is not accepted: send a collection, transaction or document"),
            )
            .at("Bundle.type")
            .into());
        }
        None => {
            return Err(Issue::error("required", "Bundle.type is required")
                .at("Bundle.type")
                .into());
        }
    };
    let Some(entries) = bundle["entry"].as_array().filter(|e| !e.is_empty()) else {
        return Err(Issue::error("required", "the bundle has no entries")
            .at("Bundle.entry")
            .into());
    };
    if depth(bundle) > MAX_DEPTH {
        // Bundle, entry list, entry: the resource's own levels start at 4.
        let at = entries
            .iter()
            .position(|e| 3 + depth(&e["resource"]) > MAX_DEPTH)
            .map_or_else(
                || "Bundle".to_string(),
                |i| format!("Bundle.entry[{i}].resource"),
            );
        return Err(too_deep().at(at).into());
    }
    // Every resource through the R4 model first: a resource that does not
    // read as R4 is refused with the model's own words.
    let mut issues = on_a_deep_stack(|| {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e["resource"].is_object())
            .filter_map(|(i, e)| {
                r4_check(&e["resource"]).err()?;
                let (element, why) = r4_problem(&e["resource"]);
                Some(invalid(
                    i,
                    &element,
                    format!("not a valid FHIR R4 resource: {why}"),
                ))
            })
            .collect::<Vec<Issue>>()
    })?;
    let mut full_urls: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if !e["resource"].is_object() {
            issues.push(required(i, "", "every entry needs a resource"));
            continue;
        }
        if let Some(issue) = code_outside_its_value_set(i, &e["resource"]) {
            issues.push(issue);
        }
        // A resource the hub takes (a Consent when it is taken:
        // `read_consent`) must carry no modifier it cannot read.
        let ty = e["resource"]["resourceType"].as_str().unwrap_or_default();
        if !CONTEXT.contains(&ty)
            && ty != "Consent"
            && let Some(element) = modifier_extension(&e["resource"])
        {
            issues.push(
                Issue::error(
                    "not-supported",
                    format!("{ty} carries a modifier extension, which may change what it means (negated, about another person …); the hub cannot read it and does not take the resource as if it were not there"),
                )
                .at(at(i, &element)),
            );
        }
        // bdl-7: one entry per fullUrl (a reference to it would name two),
        // but for versions of one resource (meta.versionId differs).
        let version = e["resource"]["meta"]["versionId"].as_str();
        if let Some(url) = e["fullUrl"].as_str()
            && let Some(first) = full_urls.insert((url, version), i)
        {
            issues.push(
                Issue::error(
                    "invalid",
                    format!("the fullUrl {url:?} is also that of entry {first} (bdl-7: each entry's fullUrl is unique)"),
                )
                .at(format!("Bundle.entry[{i}].fullUrl")),
            );
        }
        if kind == BundleKind::Transaction {
            let method = e["request"]["method"].as_str();
            if !matches!(method, Some("POST" | "PUT")) {
                issues.push(
                    Issue::error(
                        "not-supported",
                        "a transaction entry must be a POST or PUT (request.method)",
                    )
                    .at(format!("Bundle.entry[{i}].request.method")),
                );
            }
        }
    }
    if kind == BundleKind::Document && entries[0]["resource"]["resourceType"] != "Composition" {
        issues.push(required(
            0,
            "",
            "a document bundle starts with its Composition",
        ));
    }
    if !issues.is_empty() {
        return Err(Outcome { issues });
    }

    // Patients: by entry, and by the references that name them.
    let local_system =
        institution_code.map(|c| format!("{}{c}", systems::LOCAL_PATIENT_ID_OID_PREFIX));
    let mut patients: Vec<PatientIn> = Vec::new();
    let mut by_reference: HashMap<String, usize> = HashMap::new();
    // The references of Patient entries refused here: a resource naming one
    // is told so, not that its reference names no entry.
    let mut refused: HashMap<String, usize> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        if r["resourceType"] != "Patient" {
            continue;
        }
        let p = read_patient(i, r, local_system.as_deref());
        if p.local_id.is_none() && p.insured_person_id.is_none() {
            if let Some(url) = e["fullUrl"].as_str() {
                refused.insert(url.to_string(), i);
            }
            if let Some(id) = r["id"].as_str() {
                refused.insert(format!("Patient/{id}"), i);
            }
            issues.push(required(
                i,
                "identifier",
                match &local_system {
                    Some(s) => format!("the patient needs your local patient ID (system {s}) or the insured-person identifier (system {})", systems::INSURED_PERSON_ID),
                    None => format!("the patient needs the insured-person identifier (system {}); local patient IDs are matched once your organisation's medical institution code is registered", systems::INSURED_PERSON_ID),
                },
            ));
            continue;
        }
        let index = patients.len();
        if let Some(url) = e["fullUrl"].as_str() {
            by_reference.insert(url.to_string(), index);
        }
        if let Some(id) = r["id"].as_str() {
            by_reference.insert(format!("Patient/{id}"), index);
        }
        patients.push(p);
    }

    let mut records = Vec::new();
    let mut context = Vec::new();
    let mut not_stored = Vec::new();
    let mut composition_patient = None;
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        let ty = r["resourceType"].as_str().unwrap_or_default();
        if ty == "Patient" {
            continue;
        }
        if ty == "Consent" {
            match subject_of(i, r, "patient", &by_reference, &refused, &mut patients) {
                // One consent per patient: of two, the hub would take one and
            // drop the other unseen — a refusal beside a permission.
            Ok(p) => match &patients[p].consent {
                Some((first, _)) => issues.push(invalid(
                    i,
                    "",
                    format!("Bundle.entry[{first}] is a Consent about the same patient: send one Consent per patient"),
                )),
                None => patients[p].consent = Some((i, read_consent(i, r))),
            },
                Err(issue) => issues.push(issue),
            }
            continue;
        }
        if CONTEXT.contains(&ty) {
            context.push(i);
            continue;
        }
        if let Some(why) = withdrawn(ty, r) {
            not_stored.push((i, why));
            continue;
        }
        if !STORED.contains(&ty) {
            issues.push(
                Issue::error(
                    "not-supported",
                    format!(
                        "{ty} is not accepted (accepted: Patient, Consent, {})",
                        STORED.join(", ")
                    ),
                )
                .at(at(i, "")),
            );
            continue;
        }
        let field = if ty == "AllergyIntolerance" {
            "patient"
        } else {
            "subject"
        };
        let patient = match subject_of(i, r, field, &by_reference, &refused, &mut patients) {
            Ok(p) => p,
            Err(issue) => {
                issues.push(issue);
                continue;
            }
        };
        if ty == "Composition" {
            composition_patient = Some(patient);
        }
        match record(i, ty, r, entries, bundle) {
            Ok(input) => records.push(RecordIn {
                entry: i,
                patient,
                resource_type: ty.to_string(),
                input,
            }),
            Err(mut more) => issues.append(&mut more),
        }
    }
    // Two resources of one type and identifier would be one record, the
    // second a new version of the first (the identifier's system is not
    // part of the record's source ID): one lost, and a resend not
    // idempotent. FHIR refuses a transaction whose entries overlap.
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    for r in &records {
        if let Some(source) = r.input["sourceRecordId"].as_str()
            && let Some(first) = first_of.insert((&r.resource_type, source), r.entry)
        {
            issues.push(invalid(
                r.entry,
                "identifier",
                format!("Bundle.entry[{first}] has the same type and identifier ({source:?}): each resource of a bundle needs its own"),
            ));
        }
    }
    if kind == BundleKind::Document && composition_patient.is_none() && issues.is_empty() {
        issues.push(required(0, "subject", "the Composition names no patient"));
    }
    if !issues.is_empty() {
        return Err(Outcome { issues });
    }
    Ok(Inbound {
        kind,
        entries: entries.len(),
        patients,
        records,
        context,
        not_stored,
    })
}

/// The patient a resource is about: a reference to a `Patient` entry (its
/// `fullUrl` or `Patient/<id>`), or a logical reference by the
/// insured-person identifier (JP-CLINS), which names a patient of the hub.
fn subject_of(
    i: usize,
    r: &Value,
    field: &str,
    by_reference: &HashMap<String, usize>,
    refused: &HashMap<String, usize>,
    patients: &mut Vec<PatientIn>,
) -> Result<usize, Issue> {
    let s = &r[field];
    if let Some(reference) = s["reference"].as_str() {
        if let Some(entry) = refused.get(reference) {
            return Err(invalid(
                i,
                &format!("{field}.reference"),
                format!(
                    "{reference:?} names the Patient of Bundle.entry[{entry}], which is refused (see there)"
                ),
            ));
        }
        return by_reference.get(reference).copied().ok_or_else(|| {
            invalid(
                i,
                &format!("{field}.reference"),
                format!("{reference:?} names no Patient entry of the bundle (by fullUrl or Patient/<id>)"),
            )
        });
    }
    if s["identifier"]["system"] == systems::INSURED_PERSON_ID
        && let Some(value) = s["identifier"]["value"].as_str()
    {
        if let Some(p) = patients
            .iter()
            .position(|p| p.insured_person_id.as_deref() == Some(value))
        {
            return Ok(p);
        }
        patients.push(PatientIn {
            entry: None,
            local_id: None,
            insured_person_id: Some(value.to_string()),
            registration: Err(required(
                i,
                field,
                "a patient named only by identifier cannot be registered: send the Patient resource",
            )),
            consent: None,
        });
        return Ok(patients.len() - 1);
    }
    Err(required(
        i,
        field,
        "the resource must name its patient (a reference to the bundle's Patient, or the insured-person identifier)",
    ))
}

fn read_patient(i: usize, r: &Value, local_system: Option<&str>) -> PatientIn {
    let identifiers = r["identifier"].as_array().cloned().unwrap_or_default();
    let value_of = |system: &str| {
        identifiers
            .iter()
            .find(|id| id["system"] == system)
            .and_then(|id| id["value"].as_str())
            .map(str::to_string)
    };
    let local_id = local_system.and_then(value_of);
    let insured_person_id = value_of(systems::INSURED_PERSON_ID);
    PatientIn {
        entry: Some(i),
        local_id,
        insured_person_id,
        registration: registration(i, r),
        consent: None,
    }
}

/// A name's text: `text`, else family and given names.
fn name_text(n: &Value) -> Option<String> {
    if let Some(t) = n["text"].as_str().filter(|t| !t.trim().is_empty()) {
        return Some(t.trim().to_string());
    }
    let family = n["family"].as_str().unwrap_or_default();
    let given: Vec<&str> = n["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let s = format!("{family} {}", given.join(" ")).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// JP Core's names: the kanji name (representation `IDE`) and the kana
/// reading (`SYL`), each a `HumanName` with the ISO 21090 extension.
fn representation(n: &Value) -> Option<&str> {
    n["extension"].as_array()?.iter().find_map(|e| {
        (e["url"] == systems::NAME_REPRESENTATION)
            .then(|| e["valueCode"].as_str())
            .flatten()
    })
}

fn registration(i: usize, r: &Value) -> Result<Value, Issue> {
    let names = r["name"].as_array().cloned().unwrap_or_default();
    let kanji = names
        .iter()
        .find(|n| representation(n) == Some("IDE"))
        .or_else(|| names.iter().find(|n| representation(n).is_none()))
        .and_then(name_text);
    let kana = names
        .iter()
        .find(|n| representation(n) == Some("SYL"))
        .and_then(name_text);
    let (Some(name), Some(kana)) = (kanji, kana) else {
        return Err(required(
            i,
            "name",
            "registering a patient needs the name (representation IDE) and its kana reading (representation SYL)",
        ));
    };
    let Some(birth) = r["birthDate"].as_str() else {
        return Err(required(
            i,
            "birthDate",
            "registering a patient needs the birth date",
        ));
    };
    if birth.len() != 10 || instant(birth).is_none() {
        return Err(invalid(
            i,
            "birthDate",
            format!(
                "{birth:?}: registering a patient needs the day of birth, a day of the calendar (YYYY-MM-DD, years 1900 to 2100)"
            ),
        ));
    }
    let sex = match r["gender"].as_str() {
        Some("male") => "MALE",
        Some("female") => "FEMALE",
        Some("other") => "OTHER",
        _ => "UNKNOWN",
    };
    let address = r["address"][0]["text"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let a = &r["address"][0];
            let parts: Vec<&str> = ["state", "city", "district"]
                .iter()
                .filter_map(|f| a[f].as_str())
                .chain(
                    a["line"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                )
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        });
    let phone = r["telecom"].as_array().and_then(|t| {
        t.iter()
            .find(|c| c["system"] == "phone")
            .and_then(|c| c["value"].as_str())
            .map(str::to_string)
    });
    Ok(json!({
        "name": name, "nameKana": kana, "birthDate": birth, "sex": sex,
        "postalCode": r["address"][0]["postalCode"], "address": address, "phone": phone,
    }))
}

/// A `Consent` for registration: the signed form (its reference, the day
/// signed), recorded network-wide (包括同意). Only that is taken: an
/// `active` consent that permits, with no exceptions. A consent refused,
/// withdrawn or not yet in force (`status`), one that denies
/// (`provision.type`), and one that names organisations, data, purposes
/// or periods (the provision's other elements) is refused, naming the
/// element — read as network-wide, it would open the patient's records to
/// every member of the network against the patient's word. Such consents
/// are recorded in the hub (`recordConsent`, 個別同意 with its
/// organisations and excluded categories).
fn read_consent(i: usize, r: &Value) -> Result<Value, Issue> {
    const NOT_TAKEN: &str = "record a consent with exceptions or limits in the hub (recordConsent): over FHIR only a network-wide consent (包括同意) is taken";
    match r["status"].as_str() {
        Some("active") => {}
        other => {
            return Err(invalid(
                i,
                "status",
                format!(
                    "only an active consent registers a patient, not {}",
                    other.map_or_else(|| "one without status".to_string(), |s| format!("{s:?}"))
                ),
            ));
        }
    }
    let provision = &r["provision"];
    if !provision.is_null() {
        if let Some(kind) = provision["type"].as_str().filter(|t| *t != "permit") {
            return Err(invalid(
                i,
                "provision.type",
                format!(
                    "a consent of provision type {kind:?} does not permit sharing; {NOT_TAKEN}"
                ),
            ));
        }
        if let Some((name, _)) = provision
            .as_object()
            .into_iter()
            .flatten()
            .find(|(name, _)| !matches!(name.as_str(), "type" | "id" | "extension"))
        {
            return Err(Issue::error(
                "not-supported",
                format!("the consent's provision limits it ({name}); {NOT_TAKEN}"),
            )
            .at(at(i, &format!("provision.{name}"))));
        }
    }
    // A consent about sharing the patient's records (`patient-privacy`),
    // not one to research or treatment; and no modifier the hub cannot
    // read, which could turn its meaning.
    let scope = &r["scope"]["coding"];
    if !scope
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["code"] == "patient-privacy")
    {
        return Err(Issue::error(
            "not-supported",
            format!("a consent of this scope is not one to share the patient's records (scope patient-privacy); {NOT_TAKEN}"),
        )
        .at(at(i, "scope")));
    }
    if let Some(element) = modifier_extension(r) {
        return Err(Issue::error(
            "not-supported",
            format!("the consent carries a modifier extension the hub cannot read; {NOT_TAKEN}"),
        )
        .at(at(i, &element)));
    }
    let Some(signed) = r["dateTime"].as_str() else {
        return Err(required(
            i,
            "dateTime",
            "the consent needs the day it was signed",
        ));
    };
    let Some(signed) = instant(signed)
        .filter(|_| signed.len() >= 10)
        .map(|t| t[..10].to_string())
    else {
        return Err(invalid(
            i,
            "dateTime",
            format!("{signed:?} is not a day of the calendar"),
        ));
    };
    let reference = [
        ("sourceReference.display", &r["sourceReference"]["display"]),
        (
            "sourceReference.identifier.value",
            &r["sourceReference"]["identifier"]["value"],
        ),
        ("sourceAttachment.title", &r["sourceAttachment"]["title"]),
        ("identifier[0].value", &r["identifier"][0]["value"]),
    ]
    .into_iter()
    // A blank one is passed over for the next that holds a reference.
    .find_map(|(element, v)| {
        v.as_str()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (element, v))
    });
    let Some((element, reference)) = reference else {
        return Err(required(
            i,
            "sourceReference",
            "the consent needs the signed form's reference (sourceReference.display or .identifier, sourceAttachment.title, or identifier)",
        ));
    };
    // The form's reference by the hub's rule for it (recordConsent's
    // `form.reference`), here: refused with the registration, before the
    // patient is registered — not after, at the consent, with the patient
    // left registered without one. (The day signed is checked against the
    // hub's clock and the patient's birth as the consent is recorded.)
    if let Err(e) =
        renkei_schema::domain::Text::parse("reference", reference, renkei_schema::domain::NAME_MAX)
    {
        return Err(invalid(
            i,
            element,
            format!(
                "the signed form's reference {}",
                e.message().trim_start_matches("reference: ")
            ),
        ));
    }
    Ok(json!({
        "scope": "NETWORK", "method": "WRITTEN",
        "form": { "reference": reference, "signedOn": signed, "signedBy": "PATIENT" },
    }))
}

/// The codes of the required bindings of the elements the hub reads (FHIR
/// R4's value sets). The R4 model reads them as strings, so a code outside
/// its value set (`Observation.status` "bogus") would pass: a resource
/// holding one is not valid R4, whatever the hub would make of it.
const REQUIRED_CODES: &[(&str, &str, &[&str])] = &[
    ("Patient", "gender", &["male", "female", "other", "unknown"]),
    (
        "Observation",
        "status",
        &[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "MedicationRequest",
        "status",
        &[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ],
    ),
    (
        "MedicationRequest",
        "intent",
        &[
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ],
    ),
    ("AllergyIntolerance", "type", &["allergy", "intolerance"]),
    (
        "AllergyIntolerance",
        "category",
        &["food", "medication", "environment", "biologic"],
    ),
    (
        "AllergyIntolerance",
        "criticality",
        &["low", "high", "unable-to-assess"],
    ),
    (
        "Composition",
        "status",
        &["preliminary", "final", "amended", "entered-in-error"],
    ),
    (
        "Consent",
        "status",
        &[
            "draft",
            "proposed",
            "active",
            "rejected",
            "inactive",
            "entered-in-error",
        ],
    ),
];

/// The first element of `r` holding a code outside its required value set
/// ([`REQUIRED_CODES`]), as an issue at that element.
fn code_outside_its_value_set(i: usize, r: &Value) -> Option<Issue> {
    let ty = r["resourceType"].as_str()?;
    REQUIRED_CODES
        .iter()
        .filter(|(t, _, _)| *t == ty)
        .find_map(|(_, element, codes)| {
            let values: Vec<&Value> = match &r[*element] {
                Value::Array(items) => items.iter().collect(),
                Value::Null => Vec::new(),
                v => vec![v],
            };
            let bad = values
                .into_iter()
                .find(|v| !v.as_str().is_some_and(|c| codes.contains(&c)))?;
            Some(
                Issue::error(
                    "code-invalid",
                    format!(
                        "{bad} is not a code of {ty}.{element} (one of: {})",
                        codes.join(", ")
                    ),
                )
                .at(at(i, element)),
            )
        })
}

/// Why a resource whose status says it is not so — entered in error, a
/// diagnosis or allergy refuted, a prescription or result cancelled — is
/// not stored: stored, it would be a live record of something that is
/// not. (Sent again to withdraw a record written before, it does not
/// withdraw it: the hub withdraws a record with `markRecordEnteredInError`,
/// which this endpoint does not yet call — the answer says so.) Bulk Data
/// exports hold such resources among the others; the rest of the bundle
/// is written.
fn withdrawn(ty: &str, r: &Value) -> Option<String> {
    let codes: Vec<&str> = match ty {
        // Any coding of the verification status: a local one may come first.
        "Condition" | "AllergyIntolerance" => r["verificationStatus"]["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["code"].as_str())
            .collect(),
        _ => r["status"].as_str().into_iter().collect(),
    };
    let element = if matches!(ty, "Condition" | "AllergyIntolerance") {
        "verificationStatus"
    } else {
        "status"
    };
    let not_so = codes.iter().find(|code| {
        matches!(
            (ty, **code),
            (_, "entered-in-error")
                | ("Condition" | "AllergyIntolerance", "refuted")
                | ("MedicationRequest" | "Observation", "cancelled")
        )
    })?;
    Some(format!(
        "not stored: its {element} is {not_so}; to withdraw a record written before, use markRecordEnteredInError"
    ))
}

/// The record's source ID: the first identifier's value (JP-CLINS: the
/// resource instance identifier), else `<type>/<id>`.
fn source_id(i: usize, ty: &str, r: &Value) -> Result<String, Issue> {
    if let Some(v) = r["identifier"]
        .as_array()
        .and_then(|ids| ids.iter().find_map(|id| id["value"].as_str()))
    {
        return Ok(v.to_string());
    }
    if let Some(id) = r["id"].as_str() {
        return Ok(format!("{ty}/{id}"));
    }
    Err(required(
        i,
        "identifier",
        "the resource needs an identifier (or an id): it is what makes sending it again update it instead of adding another",
    ))
}

/// A FHIR date or dateTime as an RFC 3339 instant: a date is midnight in
/// Japan; a year or month, its first day. Only what the hub's `Date` and
/// `DateTime` take (a real day of the calendar — not `2024-02-30`, not
/// `2024/05/01` — of the years 1900 to 2100): told here at the element,
/// not by the GraphQL write as a value of no element.
fn instant(value: &str) -> Option<String> {
    let date = match value.len() {
        4 => format!("{value}-01-01"),
        7 => format!("{value}-01"),
        10 => value.to_string(),
        _ if value.len() > 10 => {
            renkei_schema::graphql::parse_time(value)?;
            return chrono::DateTime::parse_from_rfc3339(value)
                .ok()
                .map(|t| t.to_rfc3339());
        }
        _ => return None,
    };
    renkei_schema::graphql::parse_date(&date).map(|_| format!("{date}T00:00:00+09:00"))
}

/// The day of a FHIR date or dateTime (`2024-05-01`) at `path` of the
/// resource: `None` when absent or only a year or month; a value that is
/// not a FHIR date or dateTime is refused, naming the element.
fn day(i: usize, r: &Value, path: &[&str]) -> Result<Option<String>, Issue> {
    let Some(v) = path.iter().fold(r, |v, name| &v[name]).as_str() else {
        return Ok(None);
    };
    match instant(v) {
        Some(t) if v.len() >= 10 => Ok(Some(t[..10].to_string())),
        Some(_) => Ok(None),
        None => Err(invalid(
            i,
            &path.join("."),
            format!("{v:?} is not a FHIR date or dateTime of the years 1900 to 2100"),
        )),
    }
}

fn when(i: usize, r: &Value, fields: &[&str]) -> Result<String, Issue> {
    for f in fields {
        if let Some(v) = r[f].as_str() {
            return instant(v).ok_or_else(|| {
                invalid(
                    i,
                    f,
                    format!("{v:?} is not a FHIR date or dateTime of the years 1900 to 2100"),
                )
            });
        }
    }
    Err(required(
        i,
        fields[0],
        format!("the resource needs a time ({})", fields.join(" or ")),
    ))
}

/// A CodeableConcept's codings as the hub keeps them.
fn codings(cc: &Value) -> Vec<Value> {
    cc["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let (system, code) = (c["system"].as_str()?, c["code"].as_str()?);
            Some(json!({ "system": system, "code": code, "display": c["display"] }))
        })
        .collect()
}

fn code_of<'a>(cc: &'a Value, system: &str) -> Option<&'a str> {
    cc["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == system)
        .and_then(|c| c["code"].as_str())
}

/// A CodeableConcept's words: `text`, else the first display.
fn words(cc: &Value) -> Option<String> {
    cc["text"]
        .as_str()
        .or_else(|| {
            cc["coding"]
                .as_array()?
                .iter()
                .find_map(|c| c["display"].as_str())
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn notes(r: &Value) -> Option<String> {
    let texts: Vec<&str> = r["note"]
        .as_array()?
        .iter()
        .filter_map(|n| n["text"].as_str())
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

fn record(
    i: usize,
    ty: &str,
    r: &Value,
    entries: &[Value],
    bundle: &Value,
) -> Result<Value, Vec<Issue>> {
    let one = |issue: Issue| vec![issue];
    one_of_each_choice(i, r).map_err(one)?;
    let sensitivity = sensitivity(i, ty, r).map_err(one)?;
    let (effective, data) = match ty {
        "Condition" => (
            when(i, r, &["recordedDate", "onsetDateTime"]).map_err(one)?,
            object([("condition", condition(i, r, sensitivity).map_err(one)?)]),
        ),
        "AllergyIntolerance" => (
            when(i, r, &["recordedDate", "onsetDateTime", "lastOccurrence"]).map_err(one)?,
            allergy(i, r).map_err(one)?,
        ),
        "Observation" => (
            when(i, r, &["effectiveDateTime", "issued"]).map_err(one)?,
            observation(i, r, bundle).map_err(one)?,
        ),
        "MedicationRequest" => (
            when(i, r, &["authoredOn"]).map_err(one)?,
            object([("prescription", prescription(i, r).map_err(one)?)]),
        ),
        "Composition" => (
            when(i, r, &["date"]).map_err(one)?,
            object([("clinicalDocument", document(i, r, entries))]),
        ),
        _ => unreachable!("only stored types come here"),
    };
    let source = if ty == "Composition" {
        // A document is named by the bundle's identifier when the
        // Composition has none (JP-CLINS documents carry both).
        r["identifier"]["value"]
            .as_str()
            .or_else(|| bundle["identifier"]["value"].as_str())
            .map(str::to_string)
            .map_or_else(|| source_id(i, ty, r), Ok)
            .map_err(one)?
    } else {
        source_id(i, ty, r).map_err(one)?
    };
    // 未告知: labelled not to be disclosed to the patient (`NOPAT`).
    let undisclosed = r["meta"]["security"].as_array().is_some_and(|labels| {
        labels
            .iter()
            .any(|l| l["system"] == systems::ACT_CODE && l["code"] == systems::NOT_FOR_THE_PATIENT)
    });
    Ok(object([
        ("sourceRecordId", Value::String(source)),
        ("effectiveAt", Value::String(effective)),
        ("undisclosed", Value::Bool(undisclosed)),
        ("data", data),
    ]))
}

/// A JSON object of `fields`, moved in. `json!` would copy a `Value` it
/// is given (it serialises the reference), and an item's `data` is the
/// largest part of what a bundle sends to `writeRecords`.
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    )
}

/// The choice elements (`value[x]`, …) of the resources the hub stores.
const CHOICES: &[&str] = &[
    "value",
    "onset",
    "abatement",
    "effective",
    "medication",
    "reported",
];

/// A choice element holds one type (R4: `value[x]` is 0..1): a resource
/// with both `valueQuantity` and `valueString` would have one of them
/// dropped unseen (the R4 model reads the first and ignores the rest). The
/// same within the elements the hub reads a choice of: a prescription's
/// dosage (`asNeeded[x]`, its dose and rate — `doseQuantity` beside
/// `doseRange` would lose the range —, the timing's `bounds[x]`) and an
/// observation's components (`value[x]`).
fn one_of_each_choice(i: usize, r: &Value) -> Result<(), Issue> {
    one_type_each(i, r, String::new, CHOICES)?;
    fn each(v: &Value) -> impl Iterator<Item = (usize, &Value)> {
        v.as_array().into_iter().flatten().enumerate()
    }
    // The element paths are written only for a refusal: every prescription
    // of an import passes here.
    for (d, dosage) in each(&r["dosageInstruction"]) {
        let at = || format!("dosageInstruction[{d}].");
        one_type_each(i, dosage, at, &["asNeeded"])?;
        one_type_each(
            i,
            &dosage["timing"]["repeat"],
            || format!("{}timing.repeat.", at()),
            &["bounds"],
        )?;
        for (k, dose) in each(&dosage["doseAndRate"]) {
            one_type_each(
                i,
                dose,
                || format!("{}doseAndRate[{k}].", at()),
                &["dose", "rate"],
            )?;
        }
    }
    for (c, component) in each(&r["component"]) {
        one_type_each(i, component, || format!("component[{c}]."), &["value"])?;
    }
    Ok(())
}

/// [`one_of_each_choice`] for the object `v` at `at()` (its path within the
/// resource, ending in a dot, or empty) and the choices named.
fn one_type_each(
    i: usize,
    v: &Value,
    at: impl Fn() -> String,
    choices: &[&str],
) -> Result<(), Issue> {
    let Some(map) = v.as_object() else {
        return Ok(());
    };
    for choice in choices {
        let given: Vec<&String> = map
            .keys()
            .filter(|k| {
                k.strip_prefix(choice)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
            .collect();
        if given.len() > 1 {
            return Err(invalid(
                i,
                &format!("{}{choice}[x]", at()),
                format!(
                    "{choice}[x] holds one type, not {}",
                    given
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ));
        }
    }
    Ok(())
}

/// The sensitivity labels in `meta.security` ([`systems::SENSITIVITY_LABELS`]:
/// `PSY`, `HIV`, `GDIS`), as the export writes them: a diagnosis's
/// sensitivity, at most one. On a resource of another type the hub decides
/// the category by the content (an HIV test is `SENSITIVE_HIV` whatever it
/// is labelled): on an Observation `HIV` is taken where its code names HIV
/// by the hub's own rule (a lab result or an infection is `SENSITIVE_HIV`
/// by that rule), so that the label and the category agree; an allergy has
/// no such rule, and any other label is
/// refused rather than dropped, since the hub could not keep the
/// protection the sender asked for.
fn sensitivity(i: usize, ty: &str, r: &Value) -> Result<Option<&'static str>, Issue> {
    let labels = r["meta"]["security"].as_array();
    let found: BTreeSet<&'static str> = labels
        .into_iter()
        .flatten()
        .filter(|l| l["system"] == systems::ACT_CODE)
        .filter_map(|l| {
            systems::SENSITIVITY_LABELS
                .iter()
                .find(|(code, _, _)| l["code"] == *code)
                .map(|(_, sensitivity, _)| *sensitivity)
        })
        .collect();
    let refused = |message: String| Err(invalid(i, "meta.security", message));
    match (ty, found.len()) {
        (_, 0) => Ok(None),
        ("Condition", 1) => Ok(found.into_iter().next()),
        ("Condition", _) => {
            refused("a diagnosis carries one sensitivity label of PSY, HIV and GDIS".into())
        }
        ("Observation", 1) if found.contains("HIV") && content_names_hiv(r) => Ok(None),
        _ => refused(format!(
            "a {ty}'s category follows from its content: it may carry the label HIV where its code names an HIV test, and PSY or GDIS not at all"
        )),
    }
}

/// Whether a resource's code names HIV by the hub's rule (its words, its
/// codings' displays and ICD-10 codes).
fn content_names_hiv(r: &Value) -> bool {
    let code = &r["code"];
    renkei_schema::records::names_hiv(
        &words(code).unwrap_or_default(),
        None,
        &schema_codings(code),
    )
}

/// A CodeableConcept's codings as the hub's.
fn schema_codings(cc: &Value) -> Vec<renkei_schema::records::Coding> {
    cc["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(renkei_schema::records::Coding {
                system: c["system"].as_str()?.to_string(),
                code: c["code"].as_str()?.to_string(),
                display: c["display"].as_str().map(str::to_string),
            })
        })
        .collect()
}

fn condition(i: usize, r: &Value, sensitivity: Option<&str>) -> Result<Value, Issue> {
    let code = &r["code"];
    let name = words(code).ok_or_else(|| {
        required(
            i,
            "code",
            "the condition needs its name (code.text or a display)",
        )
    })?;
    let status = match r["clinicalStatus"]["coding"][0]["code"].as_str() {
        None | Some("active" | "recurrence" | "relapse") => "ACTIVE",
        Some("inactive" | "remission" | "resolved") => "RESOLVED",
        Some(other) => {
            return Err(invalid(
                i,
                "clinicalStatus",
                format!("{other:?} is not a condition-clinical code"),
            ));
        }
    };
    // ICD-10 as the hub reads it (E11.9, E119); a code of another shape
    // stays among the codings only.
    let icd10 = code_of(code, systems::ICD10).filter(|c| {
        let b = c.as_bytes();
        b.len() >= 3 && b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && b[2].is_ascii_digit()
    });
    Ok(json!({
        "name": name, "icd10": icd10, "clinicalStatus": status,
        "sensitivity": sensitivity,
        "onset": day(i, r, &["onsetDateTime"])?,
        "resolvedOn": day(i, r, &["abatementDateTime"])?,
        "note": notes(r), "codings": codings(code),
    }))
}

/// Days per unit of a prescription's supply duration: UCUM `d` (日) or
/// `wk` (週, seven days), by its code, else by its unit's words. A month
/// is no fixed number of days, and a duration in another unit would be
/// stored as days it does not mean (「4週」 as 4 days): refused.
fn supply_unit(i: usize, duration: &Value) -> Result<i64, Issue> {
    let code = duration["code"].as_str();
    let unit = duration["unit"].as_str().map(str::trim);
    let by_code = match code {
        Some("d") => Some(1),
        Some("wk") => Some(7),
        Some(_) => None,
        None => match unit {
            None | Some("d" | "day" | "days" | "日" | "日分") => Some(1),
            Some("wk" | "week" | "weeks" | "週" | "週間" | "週分") => Some(7),
            Some(_) => None,
        },
    };
    by_code.ok_or_else(|| {
        let element = if code.is_some() { "code" } else { "unit" };
        invalid(
            i,
            &format!("dispenseRequest.expectedSupplyDuration.{element}"),
            format!(
                "{:?} is not a unit the hub reads a supply in: days (UCUM d, 日) or weeks (wk, 週)",
                code.or(unit).unwrap_or_default()
            ),
        )
    })
}

fn allergy(i: usize, r: &Value) -> Result<Value, Issue> {
    let code = &r["code"];
    let substance = words(code).ok_or_else(|| {
        required(
            i,
            "code",
            "the allergy needs its substance (code.text or a display)",
        )
    })?;
    let categories: Vec<&str> = r["category"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let reaction = r["reaction"].as_array().and_then(|rs| {
        let texts: Vec<String> = rs
            .iter()
            .flat_map(|x| x["manifestation"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| words(&m))
            .collect();
        (!texts.is_empty()).then(|| texts.join("、"))
    });
    // JP-CLINS: category medication with criticality high is a drug
    // contraindication (薬剤禁忌); anything else an allergy.
    if categories.contains(&"medication") && r["criticality"] == "high" {
        let yj = code_of(code, systems::YJ);
        let reason = notes(r)
            .or_else(|| reaction.clone())
            .unwrap_or_else(|| "薬剤禁忌".to_string());
        return Ok(json!({ "drugContraindication": {
            "drug": substance, "yjCode": yj, "reason": reason, "codings": codings(code),
        } }));
    }
    let allergy_type = if categories.contains(&"medication") {
        "DRUG"
    } else if categories.contains(&"food") {
        "FOOD"
    } else {
        "OTHER"
    };
    let severity = r["reaction"]
        .as_array()
        .and_then(|rs| rs.iter().filter_map(|x| x["severity"].as_str()).next())
        .map(|s| match s {
            "mild" => "MILD",
            "moderate" => "MODERATE",
            "severe" => "SEVERE",
            _ => "UNKNOWN",
        })
        .unwrap_or(if r["criticality"] == "high" {
            "SEVERE"
        } else {
            "UNKNOWN"
        });
    Ok(json!({ "allergy": {
        "substance": substance, "allergyType": allergy_type, "reaction": reaction,
        "severity": severity, "codings": codings(code),
    } }))
}

/// The infections JP-CLINS shares (感染症), recognised by name.
fn pathogen(name: &str) -> &'static str {
    // HIV by the hub's one rule (full-width letters, エイズ, ヒト免疫不全
    // ウイルス), asked first: a name that also names another pathogen (an
    // HIV and HBs panel) is HIV data.
    let n = name.to_uppercase();
    if renkei_schema::records::is_hiv_test(name) {
        "HIV"
    } else if n.contains("HBS") {
        "HBS_ANTIGEN"
    } else if n.contains("HCV") {
        "HCV_ANTIBODY"
    } else if n.contains("梅毒") || n.contains("TP") || n.contains("RPR") || n.contains("SYPHILIS")
    {
        "SYPHILIS"
    } else if n.contains("MRSA") {
        "MRSA"
    } else {
        "OTHER"
    }
}

/// Whether an Observation is an infection result (感染症): its profile or
/// the bundle's JP-CLINS tag says so.
fn is_infection(r: &Value, bundle: &Value) -> bool {
    let mentions = |v: &Value| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x.as_str()
                    .or_else(|| x["code"].as_str())
                    .is_some_and(|s| s.to_ascii_lowercase().contains("infection"))
            })
        })
    };
    mentions(&r["meta"]["profile"]) || mentions(&bundle["meta"]["tag"])
}

fn observation(i: usize, r: &Value, bundle: &Value) -> Result<Value, Issue> {
    let code = &r["code"];
    let name = words(code).ok_or_else(|| {
        required(
            i,
            "code",
            "the observation needs the test's name (code.text or a display)",
        )
    })?;
    let value_text = r["valueString"]
        .as_str()
        .map(str::to_string)
        .or_else(|| words(&r["valueCodeableConcept"]));
    let interpretation = r["interpretation"][0]["coding"][0]["code"].as_str();
    if is_infection(r, bundle) {
        let verdict = value_text.clone().unwrap_or_default();
        let result = match interpretation {
            Some("POS" | "DET" | "A" | "H") => "POSITIVE",
            Some("NEG" | "ND" | "N") => "NEGATIVE",
            _ if verdict.contains('陽') || verdict.contains('+') => "POSITIVE",
            _ if verdict.contains('陰') || verdict.contains('-') => "NEGATIVE",
            _ => "UNKNOWN",
        };
        let p = pathogen(&name);
        return Ok(json!({ "infection": {
            "pathogen": p, "otherName": (p == "OTHER").then_some(name),
            "result": result, "testedOn": day(i, r, &["effectiveDateTime"])?,
            "note": notes(r), "codings": codings(code),
        } }));
    }
    let quantity = &r["valueQuantity"];
    let value = match (quantity["value"].is_number(), &value_text) {
        (true, _) => {
            let comparator = quantity["comparator"].as_str().unwrap_or_default();
            format!("{comparator}{}", quantity["value"])
        }
        (false, Some(t)) => t.clone(),
        (false, None) => {
            return Err(required(
                i,
                "value[x]",
                "the result needs a value (valueQuantity, valueString or valueCodeableConcept)",
            ));
        }
    };
    let abnormal = match interpretation {
        Some("H" | "HH" | "HU") => "HIGH",
        Some("L" | "LL" | "LU") => "LOW",
        Some("N") => "NORMAL",
        Some("A" | "AA" | "POS") => "ABNORMAL",
        _ => "UNKNOWN",
    };
    let lab_code = code_of(code, systems::JLAC10).or_else(|| code_of(code, systems::JLAC11));
    Ok(json!({ "labResult": {
        "code": lab_code, "name": name, "value": value,
        "unit": quantity["unit"].as_str().or_else(|| quantity["code"].as_str()),
        "referenceLow": r["referenceRange"][0]["low"]["value"],
        "referenceHigh": r["referenceRange"][0]["high"]["value"],
        "abnormal": abnormal, "codings": codings(code),
    } }))
}

fn prescription(i: usize, r: &Value) -> Result<Value, Issue> {
    let med = &r["medicationCodeableConcept"];
    let drug = words(med).ok_or_else(|| {
        required(
            i,
            "medicationCodeableConcept",
            "the prescription needs the drug (medicationCodeableConcept.text or a display)",
        )
    })?;
    let dosage = &r["dosageInstruction"][0];
    let dose_quantity = &dosage["doseAndRate"][0]["doseQuantity"];
    let dose = match (
        dose_quantity["value"].as_f64(),
        dose_quantity["unit"].as_str(),
    ) {
        (Some(v), _) if !(v.is_finite() && v > 0.0) => {
            return Err(invalid(
                i,
                "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                format!(
                    "{} is not a dose: a dose is more than zero",
                    dose_quantity["value"]
                ),
            ));
        }
        (Some(_), unit) => format!("{}{}", dose_quantity["value"], unit.unwrap_or_default()),
        _ => dosage["text"].as_str().unwrap_or("指示通り").to_string(),
    };
    let frequency = dosage["timing"]["code"]["text"]
        .as_str()
        .or_else(|| dosage["text"].as_str())
        .unwrap_or("指示通り")
        .to_string();
    let route_code = dosage["route"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default();
    let route_words = words(&dosage["route"]).unwrap_or_default();
    let route = match route_code {
        "PO" | "OR" => "ORAL",
        "TP" | "EXT" => "TOPICAL",
        "IV" | "IM" | "SC" | "SQ" => "INJECTION",
        "IH" | "INH" => "INHALATION",
        _ if route_words.contains('口') || route_words.contains("内服") => "ORAL",
        _ if route_words.contains("外用") => "TOPICAL",
        _ if route_words.contains('注') => "INJECTION",
        _ => "OTHER",
    };
    let duration = &r["dispenseRequest"]["expectedSupplyDuration"];
    let days_per_unit = supply_unit(i, duration)?;
    let days = match &duration["value"] {
        Value::Null => None,
        // A decimal in FHIR: whole days, as `14` or `14.0`.
        v => Some(
            v.as_i64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e12)
                        .map(|f| f as i64)
                })
                .and_then(|d| d.checked_mul(days_per_unit))
                .filter(|d| (0..=i64::from(i32::MAX)).contains(d))
                .ok_or_else(|| {
                    invalid(
                        i,
                        "dispenseRequest.expectedSupplyDuration.value",
                        format!("{v} is not a number of days"),
                    )
                })?,
        ),
    };
    let start = day(i, r, &["dispenseRequest", "validityPeriod", "start"])?
        .or(day(i, r, &["authoredOn"])?)
        .ok_or_else(|| {
            required(
                i,
                "authoredOn",
                "the prescription needs the day it was written",
            )
        })?;
    Ok(json!({
        "medicationType": if route == "INJECTION" { "INJECTION" } else { "PRESCRIPTION" },
        "drug": drug, "yjCode": code_of(med, systems::YJ), "dose": dose, "route": route,
        "frequency": frequency, "days": days, "startDate": start,
        "endDate": day(i, r, &["dispenseRequest", "validityPeriod", "end"])?,
        "prescriber": r["requester"]["display"], "codings": codings(med),
    }))
}

/// The document type of a Composition, by its LOINC type (JP-CLINS).
fn document_type(r: &Value) -> &'static str {
    match code_of(&r["type"], systems::LOINC) {
        Some("57133-1") => "REFERRAL_LETTER",
        Some("18842-5") => "DISCHARGE_SUMMARY",
        Some("53576-5") => "CHECKUP_REPORT",
        _ => {
            let title = r["title"].as_str().unwrap_or_default();
            if title.contains("健診") || title.contains("健康診断") {
                "CHECKUP_REPORT"
            } else if title.contains("退院") {
                "DISCHARGE_SUMMARY"
            } else if title.contains("紹介") || title.contains("情報提供") {
                "REFERRAL_LETTER"
            } else {
                "OTHER"
            }
        }
    }
}

/// The narrative's text without markup: a paragraph or line break ends a
/// line; spaces within a line are collapsed.
fn plain(xhtml: &str) -> String {
    let mut out = String::new();
    let mut tag = String::new();
    let mut in_tag = false;
    for c in xhtml.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let name = tag
                    .trim_start_matches('/')
                    .split([' ', '/'])
                    .next()
                    .unwrap_or("");
                if matches!(name, "p" | "br" | "div" | "li" | "tr") {
                    out.push('\n');
                } else {
                    out.push(' ');
                }
            }
            _ if in_tag => tag.push(c),
            _ => out.push(c),
        }
    }
    let text = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn document(_i: usize, r: &Value, entries: &[Value]) -> Value {
    let mut text = String::new();
    fn sections(list: &Value, depth: usize, text: &mut String) {
        for s in list.as_array().into_iter().flatten() {
            if let Some(t) = s["title"].as_str() {
                text.push_str(&format!("{}{t}\n", "#".repeat(depth)));
            }
            if let Some(div) = s["text"]["div"].as_str() {
                let p = plain(div);
                if !p.is_empty() {
                    text.push_str(&p);
                    text.push('\n');
                }
            }
            sections(&s["section"], depth + 1, text);
        }
    }
    sections(&r["section"], 1, &mut text);
    if text.trim().is_empty() {
        text = r["title"].as_str().unwrap_or("文書").to_string();
    }
    // The author's name, from the Practitioner entry the Composition names.
    let author = r["author"].as_array().and_then(|a| {
        a.iter().find_map(|x| {
            if let Some(display) = x["display"].as_str() {
                return Some(display.to_string());
            }
            let reference = x["reference"].as_str()?;
            entries.iter().find_map(|e| {
                let res = &e["resource"];
                let named = e["fullUrl"] == reference
                    || res["id"]
                        .as_str()
                        .is_some_and(|id| reference == format!("Practitioner/{id}"));
                (named && res["resourceType"] == "Practitioner")
                    .then(|| name_text(&res["name"][0]))
                    .flatten()
            })
        })
    });
    json!({
        "documentType": document_type(r),
        "title": r["title"].as_str().unwrap_or("文書"),
        "text": text.trim(),
        "authorName": author,
        "codings": codings(&r["type"]),
    })
}

/// Maps a `writeRecords` error's field (`input.records[7].data.labResult.unit`)
/// to the FHIR element it came from: `(record index, element)`.
pub fn element_of(field: &str, resource_type: &str) -> Option<(usize, String)> {
    let rest = field.strip_prefix("input.records[")?;
    let (index, rest) = rest.split_once(']')?;
    let index = index.parse().ok()?;
    let rest = rest.trim_start_matches('.');
    let leaf = rest.rsplit('.').next().unwrap_or_default();
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    let element = match (resource_type, rest) {
        (_, "sourceRecordId") => "identifier",
        (_, "effectiveAt") => match resource_type {
            "Observation" => "effectiveDateTime",
            "MedicationRequest" => "authoredOn",
            "Composition" => "date",
            _ => "recordedDate",
        },
        _ => match (resource_type, leaf) {
            (_, "codings") | (_, "system") | (_, "code") | (_, "display") => "code.coding",
            ("Condition", "onset") => "onsetDateTime",
            ("Condition", "resolvedOn") => "abatementDateTime",
            ("Condition", "note") | ("AllergyIntolerance", "reason") => "note",
            ("AllergyIntolerance", "reaction") => "reaction",
            ("Observation", "value") => "value[x]",
            ("Observation", "unit") => "valueQuantity.unit",
            ("Observation", "referenceLow" | "referenceHigh") => "referenceRange",
            ("MedicationRequest", "dose") => "dosageInstruction.doseAndRate",
            ("MedicationRequest", "frequency") => "dosageInstruction.text",
            ("MedicationRequest", "days") => "dispenseRequest.expectedSupplyDuration",
            ("MedicationRequest", "startDate") => "authoredOn",
            ("MedicationRequest", "endDate") => "dispenseRequest.validityPeriod.end",
            ("MedicationRequest", _) => "medicationCodeableConcept",
            ("Composition", "text") => "section",
            ("Composition", "title") => "title",
            ("Composition", _) => "type",
            _ => "code",
        },
    };
    Some((index, element.to_string()))
}

/// The `Patient` entries' and records' results as a response bundle.
pub fn response_bundle(kind: BundleKind, entries: Vec<Value>) -> Value {
    let ty = match kind {
        BundleKind::Transaction => "transaction-response",
        BundleKind::Collection | BundleKind::Document => "batch-response",
    };
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), json!("Bundle"));
    bundle.insert("type".into(), json!(ty));
    bundle.insert("entry".into(), Value::Array(entries));
    Value::Object(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_infection_named_hiv_in_any_width_is_hiv_first() {
        for name in [
            "HIV-1/2抗体",
            "ＨＩＶ抗体",
            "ｈｉｖ抗原・抗体",
            "ヒト免疫不全ウイルス抗体",
            "HIV・HBs抗原",
            "HIVAb",
            "HIVAg/Ab",
            "HIVRNA定量",
            "antiHIV",
            "抗HIV抗体",
            "ＨＩＶＡｂ",
        ] {
            assert_eq!(pathogen(name), "HIV", "{name}");
        }
        assert_eq!(pathogen("HBs抗原"), "HBS_ANTIGEN");
        assert_eq!(pathogen("HCV抗体"), "HCV_ANTIBODY");
        assert_eq!(pathogen("インフルエンザ"), "OTHER");
    }

    fn patient() -> Value {
        json!({ "fullUrl": "urn:uuid:p1", "resource": {
            "resourceType": "Patient",
            "identifier": [
                { "system": "urn:oid:1.2.392.100495.20.3.51.10112345678", "value": "K-1" },
                { "system": systems::INSURED_PERSON_ID, "value": "00012345:あいう:187:05" }
            ],
            "name": [
                { "extension": [{ "url": systems::NAME_REPRESENTATION, "valueCode": "IDE" }], "text": "連携 花子" },
                { "extension": [{ "url": systems::NAME_REPRESENTATION, "valueCode": "SYL" }], "text": "レンケイ ハナコ" }
            ],
            "gender": "female", "birthDate": "1940-05-01"
        } })
    }

    fn bundle(entries: Vec<Value>) -> Value {
        json!({ "resourceType": "Bundle", "type": "collection", "entry": entries })
    }

    #[test]
    fn a_condition_keeps_its_codes_and_names_its_patient() {
        let b = bundle(vec![
            patient(),
            json!({ "resource": {
                "resourceType": "Condition",
                "identifier": [{ "system": systems::RESOURCE_INSTANCE_IDENTIFIER, "value": "C-1" }],
                "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
                "code": { "coding": [{ "system": systems::ICD10, "code": "E11.9", "display": "2型糖尿病" }], "text": "2型糖尿病" },
                "subject": { "reference": "urn:uuid:p1" },
                "onsetDateTime": "2020-04-01", "recordedDate": "2024-05-01"
            } }),
        ]);
        let read = read(&b, Some("0112345678")).unwrap();
        assert_eq!(read.patients.len(), 1);
        assert_eq!(read.patients[0].local_id.as_deref(), Some("K-1"));
        assert_eq!(read.records.len(), 1);
        let input = &read.records[0].input;
        assert_eq!(input["sourceRecordId"], "C-1");
        assert_eq!(input["effectiveAt"], "2024-05-01T00:00:00+09:00");
        assert_eq!(input["data"]["condition"]["icd10"], "E11.9");
        assert_eq!(input["data"]["condition"]["codings"][0]["code"], "E11.9");
        assert_eq!(input["data"]["condition"]["onset"], "2020-04-01");
    }

    #[test]
    fn medication_with_high_criticality_is_a_drug_contraindication() {
        let allergy = |criticality: &str| {
            bundle(vec![
                patient(),
                json!({ "resource": {
                    "resourceType": "AllergyIntolerance", "id": "a1",
                    "category": ["medication"], "criticality": criticality,
                    "code": { "text": "ワルファリン" }, "patient": { "reference": "urn:uuid:p1" },
                    "recordedDate": "2024-05-01"
                } }),
            ])
        };
        let high = read(&allergy("high"), None).unwrap();
        assert!(high.records[0].input["data"]["drugContraindication"].is_object());
        assert_eq!(
            high.records[0].input["sourceRecordId"],
            "AllergyIntolerance/a1"
        );
        let low = read(&allergy("low"), None).unwrap();
        assert_eq!(
            low.records[0].input["data"]["allergy"]["allergyType"],
            "DRUG"
        );
    }

    #[test]
    fn problems_name_their_element() {
        let b = bundle(vec![
            patient(),
            json!({ "resource": { "resourceType": "Condition", "id": "c",
                "subject": { "reference": "urn:uuid:nobody" }, "recordedDate": "2024-05-01",
                "code": { "text": "高血圧症" } } }),
            json!({ "resource": { "resourceType": "Condition", "id": "d",
                "subject": { "reference": "urn:uuid:p1" }, "recordedDate": "2024-05-01" } }),
            json!({ "resource": { "resourceType": "Observation", "status": "final",
                "code": { "text": "HbA1c" }, "subject": { "reference": "urn:uuid:p1" },
                "effectiveDateTime": "yesterday", "identifier": [{ "value": "O-1" }], "valueQuantity": { "value": 7.0 } } }),
        ]);
        let issues = read(&b, None).unwrap_err().issues;
        let at: Vec<_> = issues
            .iter()
            .map(|i| i.expression.clone().unwrap())
            .collect();
        assert_eq!(
            at,
            vec![
                "Bundle.entry[1].resource.subject.reference",
                "Bundle.entry[2].resource.code",
                "Bundle.entry[3].resource.effectiveDateTime",
            ]
        );
    }

    #[test]
    fn the_model_check_of_a_type_read_as_its_struct_says_what_the_enum_says() {
        // Every resource of the fixtures, as sent and spoilt in each of its
        // elements (a string where the model wants an object or a list, a
        // list where it wants a string): the struct read directly accepts
        // and refuses exactly what the enum of every type does. (The words
        // may differ in how they name a wrong value: `number` where the
        // enum's copy says ``integer `7` ``.)
        let fixtures = [
            include_str!("../../tests/fixtures/fhir/infection.json"),
            include_str!("../../tests/fixtures/fhir/condition.json"),
            include_str!("../../tests/fixtures/fhir/drug-contraindication.json"),
            include_str!("../../tests/fixtures/fhir/discharge-summary.json"),
            include_str!("../../tests/fixtures/fhir/prescription.json"),
            include_str!("../../tests/fixtures/fhir/referral-letter.json"),
            include_str!("../../tests/fixtures/fhir/lab-result.json"),
            include_str!("../../tests/fixtures/fhir/checkup-report.json"),
            include_str!("../../tests/fixtures/fhir/allergy.json"),
        ];
        let via_enum = |r: &Value| {
            <fhir::r4::resources::Resource as serde::Deserialize>::deserialize(r)
                .map(drop)
                .map_err(|e| e.to_string())
        };
        // A registration's Consent, as the import tests send it (no
        // fixture holds one).
        let consent = json!({ "resourceType": "Consent", "status": "active",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
            "patient": { "reference": "urn:uuid:0f0e0d0c-0b0a-4908-8706-050403020100" },
            "dateTime": "2026-11-01T10:00:00+09:00",
            "sourceReference": { "display": "同意書 2026-0099" } });
        let mut resources: Vec<Value> = vec![consent];
        for text in fixtures {
            let bundle: Value = serde_json::from_str(text).unwrap();
            for entry in bundle["entry"].as_array().unwrap() {
                resources.push(entry["resource"].clone());
            }
        }
        let mut checked = std::collections::BTreeMap::<String, (usize, usize)>::new();
        for resource in &resources {
            let kind = resource["resourceType"].as_str().unwrap().to_string();
            let mut variants = vec![resource.clone()];
            for (name, _) in resource.as_object().unwrap() {
                if name == "resourceType" {
                    continue;
                }
                for spoilt in [json!("x"), json!(["x"]), json!({ "x": 1 }), json!(7)] {
                    let mut v = resource.clone();
                    v[name] = spoilt;
                    variants.push(v);
                }
            }
            for v in &variants {
                let direct = r4_check(v).map_err(|e| e.to_string());
                assert_eq!(
                    direct.is_ok(),
                    via_enum(v).is_ok(),
                    "{kind}: {v}\n{direct:?}"
                );
                let counts = checked.entry(kind.clone()).or_default();
                if direct.is_ok() {
                    counts.0 += 1
                } else {
                    counts.1 += 1
                }
            }
        }
        // Each type read as its struct was met, accepted and refused.
        for kind in [
            "Condition",
            "AllergyIntolerance",
            "Observation",
            "MedicationRequest",
            "Composition",
            "Patient",
            "Consent",
        ] {
            let (ok, refused) = checked.get(kind).copied().unwrap_or_default();
            assert!(
                ok > 0 && refused > 0,
                "{kind}: {ok} accepted, {refused} refused"
            );
        }
        // A type R4 does not have is refused by the enum.
        assert!(r4_check(&json!({ "resourceType": "Nonsense" })).is_err());
    }

    #[test]
    fn a_resource_that_is_not_r4_is_refused_by_the_model() {
        let b = bundle(vec![
            json!({ "resource": { "resourceType": "Condition", "subject": "not a reference" } }),
        ]);
        let issues = read(&b, None).unwrap_err().issues;
        // At the element the model could not read.
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("Bundle.entry[0].resource.subject")
        );
        assert!(
            issues[0].diagnostics.contains("R4"),
            "{}",
            issues[0].diagnostics
        );
    }

    #[test]
    fn an_error_of_the_hub_points_back_at_the_element() {
        assert_eq!(
            element_of("input.records[7].data.labResult.unit", "Observation"),
            Some((7, "valueQuantity.unit".to_string()))
        );
        assert_eq!(
            element_of(
                "input.records[0].data.condition.codings[1].system",
                "Condition"
            ),
            Some((0, "code.coding".to_string()))
        );
    }

    /// A Composition whose sections nest `levels` deep.
    fn nested_document(levels: usize) -> Value {
        let mut section = json!({ "title": "leaf" });
        for _ in 0..levels {
            section = json!({ "title": "s", "section": [section] });
        }
        json!({ "resourceType": "Bundle", "type": "document", "entry": [{ "resource": {
            "resourceType": "Composition", "status": "final", "type": { "text": "x" },
            "date": "2024-01-01", "title": "t", "author": [{ "display": "a" }],
            "section": [section] } }] })
    }

    #[test]
    fn a_bundle_nested_deeper_than_resources_are_is_refused_before_the_model_reads_it() {
        // 45 levels of sections overflowed the stack of a debug build's
        // worker thread inside the R4 model: the process aborted.
        for levels in [31, 45, 60] {
            let issues = read(&nested_document(levels), None).unwrap_err().issues;
            assert_eq!(issues.len(), 1, "{levels}");
            assert_eq!(issues[0].code, "too-costly");
            assert_eq!(
                issues[0].expression.as_deref(),
                Some("Bundle.entry[0].resource")
            );
        }
        // Deeply nested sections that real documents never reach still read.
        let b = nested_document(20);
        assert!(depth(&b) <= MAX_DEPTH);
        let issues = read(&b, None).map(|_| ()).unwrap_err().issues;
        assert!(
            issues.iter().all(|i| i.code != "too-costly"),
            "{:?}",
            issues
        );
        assert_eq!(depth(&json!(1)), 1);
        assert_eq!(depth(&json!({ "a": [1] })), 3);
        assert_eq!(depth(&json!([[], { "b": { "c": [] } }])), 4);
    }

    fn registration(consent: Value) -> Value {
        let mut consent_resource = json!({ "resourceType": "Consent", "status": "active",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
            "patient": { "reference": "urn:uuid:p1" },
            "dateTime": "2026-11-01T10:00:00+09:00",
            "sourceReference": { "display": "同意書 2026-0099" } });
        for (k, v) in consent.as_object().unwrap() {
            consent_resource[k] = v.clone();
        }
        bundle(vec![patient(), json!({ "resource": consent_resource })])
    }

    #[test]
    fn only_an_active_consent_to_share_that_permits_without_limits_is_taken() {
        // Read, or why not: refusing the bundle is the registration's call.
        let read_one = |c: Value| {
            read(&registration(c), Some("0112345678")).unwrap().patients[0]
                .consent
                .clone()
                .unwrap()
                .1
        };
        assert_eq!(read_one(json!({})).unwrap()["scope"], "NETWORK");
        assert_eq!(
            read_one(json!({})).unwrap()["form"]["signedOn"],
            "2026-11-01"
        );
        assert!(read_one(json!({ "provision": { "type": "permit" } })).is_ok());
        // A blank reference is passed over for the next that holds one.
        assert_eq!(
            read_one(json!({ "sourceReference": { "display": "  " },
                "identifier": [{ "value": "同意書 2026-0100" }] }))
            .unwrap()["form"]["reference"],
            "同意書 2026-0100"
        );
        for (consent, element, code) in [
            (json!({ "status": "rejected" }), "status", "invalid"),
            (json!({ "status": "inactive" }), "status", "invalid"),
            (json!({ "status": "draft" }), "status", "invalid"),
            (
                json!({ "provision": { "type": "deny" } }),
                "provision.type",
                "invalid",
            ),
            (
                json!({ "provision": { "type": "permit", "actor": [{
                    "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP" }] },
                    "reference": { "display": "北見在宅クリニック" } }] } }),
                "provision.actor",
                "not-supported",
            ),
            (
                json!({ "provision": { "type": "permit", "provision": [{ "type": "deny" }] } }),
                "provision.provision",
                "not-supported",
            ),
            (
                json!({ "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research" }] } }),
                "scope",
                "not-supported",
            ),
            (
                json!({ "modifierExtension": [{ "url": "http://example.org/opt-out", "valueBoolean": true }] }),
                "modifierExtension",
                "not-supported",
            ),
            (json!({ "dateTime": "2026-02-30" }), "dateTime", "invalid"),
            (json!({ "dateTime": "2026" }), "dateTime", "invalid"),
        ] {
            let issue = read_one(consent.clone()).unwrap_err();
            assert_eq!(
                issue.expression.as_deref(),
                Some(format!("Bundle.entry[1].resource.{element}").as_str()),
                "{consent}"
            );
            assert_eq!(issue.code, code, "{consent}");
        }
        let mut without_status = registration(json!({}));
        without_status["entry"][1]["resource"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        // R4 requires the status: refused by the model, as any resource.
        assert!(read(&without_status, Some("0112345678")).is_err());
    }

    #[test]
    fn dates_that_are_not_days_of_the_calendar_are_refused_by_element() {
        let condition = |extra: Value| {
            let mut c = json!({ "resourceType": "Condition",
                "identifier": [{ "value": "C-1" }],
                "code": { "text": "高血圧症" }, "subject": { "reference": "urn:uuid:p1" },
                "recordedDate": "2024-05-01" });
            for (k, v) in extra.as_object().unwrap() {
                c[k] = v.clone();
            }
            bundle(vec![patient(), json!({ "resource": c })])
        };
        for (extra, element) in [
            (json!({ "recordedDate": "2024-02-30" }), "recordedDate"),
            (json!({ "recordedDate": "2024/05/01" }), "recordedDate"),
            (json!({ "recordedDate": "2020-13" }), "recordedDate"),
            (json!({ "onsetDateTime": "2020-13-01" }), "onsetDateTime"),
            (
                json!({ "abatementDateTime": "2021-02-29" }),
                "abatementDateTime",
            ),
        ] {
            let issues = read(&condition(extra.clone()), None).unwrap_err().issues;
            assert_eq!(
                issues[0].expression.as_deref(),
                Some(format!("Bundle.entry[1].resource.{element}").as_str()),
                "{extra}"
            );
        }
        let ok = read(
            &condition(json!({ "onsetDateTime": "2020-02-29", "abatementDateTime": "2021" })),
            None,
        )
        .unwrap();
        let data = &ok.records[0].input["data"]["condition"];
        assert_eq!(data["onset"], "2020-02-29");
        assert_eq!(data["resolvedOn"], Value::Null);
        assert_eq!(
            instant("2024-02").as_deref(),
            Some("2024-02-01T00:00:00+09:00")
        );
        assert_eq!(instant("2024-02-30"), None);
        assert_eq!(instant("24-02-03"), None);
    }

    #[test]
    fn a_resource_naming_a_refused_patient_is_told_so() {
        let mut nameless = patient();
        nameless["resource"]
            .as_object_mut()
            .unwrap()
            .remove("identifier");
        let condition = json!({ "resource": { "resourceType": "Condition",
            "identifier": [{ "value": "C-1" }], "code": { "text": "高血圧症" },
            "subject": { "reference": "urn:uuid:p1" }, "recordedDate": "2024-05-01" } });
        let issues = read(&bundle(vec![nameless, condition]), None)
            .unwrap_err()
            .issues;
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("Bundle.entry[0].resource.identifier")
        );
        assert_eq!(
            issues[1].expression.as_deref(),
            Some("Bundle.entry[1].resource.subject.reference")
        );
        assert!(
            issues[1]
                .diagnostics
                .contains("names the Patient of Bundle.entry[0], which is refused"),
            "{}",
            issues[1].diagnostics
        );
    }

    #[test]
    fn two_resources_of_one_bundle_with_one_identifier_are_refused() {
        let lab = |system: &str| {
            json!({ "resource": { "resourceType": "Observation", "status": "final",
                "identifier": [{ "system": system, "value": "ORD-1" }],
                "code": { "text": "HbA1c" }, "subject": { "reference": "urn:uuid:p1" },
                "effectiveDateTime": "2024-04-10", "valueQuantity": { "value": 7.2, "unit": "%" } } })
        };
        let b = bundle(vec![
            patient(),
            lab("urn:oid:1.2.3.81"),
            lab("urn:oid:1.2.3.82"),
        ]);
        let issues = read(&b, None).unwrap_err().issues;
        assert_eq!(issues.len(), 1);
        assert_eq!(
            issues[0].expression.as_deref(),
            Some("Bundle.entry[2].resource.identifier")
        );
        assert!(issues[0].diagnostics.contains("Bundle.entry[1]"));
        // One identifier on resources of two types: two records.
        let mut condition = lab("x");
        condition["resource"] = json!({ "resourceType": "Condition",
            "identifier": [{ "value": "ORD-1" }], "code": { "text": "高血圧症" },
            "subject": { "reference": "urn:uuid:p1" }, "recordedDate": "2024-05-01" });
        assert_eq!(
            read(&bundle(vec![patient(), lab("x"), condition]), None)
                .unwrap()
                .records
                .len(),
            2
        );
    }

    #[test]
    fn a_supply_duration_must_be_whole_days_a_number_can_hold() {
        let prescription = |value: Value| {
            bundle(vec![
                patient(),
                json!({ "resource": { "resourceType": "MedicationRequest",
                "status": "active", "intent": "order", "identifier": [{ "value": "RX-1" }],
                "medicationCodeableConcept": { "text": "アムロジピン錠5mg" },
                "subject": { "reference": "urn:uuid:p1" }, "authoredOn": "2024-05-01",
                "dispenseRequest": { "expectedSupplyDuration": { "value": value, "unit": "日" } } } }),
            ])
        };
        for bad in [json!(99999999999u64), json!(-3), json!(14.5)] {
            let issues = read(&prescription(bad.clone()), None).unwrap_err().issues;
            assert_eq!(
                issues[0].expression.as_deref(),
                Some("Bundle.entry[1].resource.dispenseRequest.expectedSupplyDuration.value"),
                "{bad}"
            );
        }
        for (good, days) in [(json!(14), 14), (json!(14.0), 14)] {
            let read = read(&prescription(good), None).unwrap();
            assert_eq!(read.records[0].input["data"]["prescription"]["days"], days);
        }
    }

    #[test]
    fn a_resource_whose_status_says_it_is_not_so_is_not_stored() {
        let condition = |codes: &[&str]| {
            let coding: Vec<Value> = codes
                .iter()
                .map(|c| json!({ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": c }))
                .collect();
            bundle(vec![
                patient(),
                json!({ "resource": { "resourceType": "Condition",
                "identifier": [{ "value": "C-1" }], "code": { "text": "高血圧症" },
                "verificationStatus": { "coding": coding },
                "subject": { "reference": "urn:uuid:p1" }, "recordedDate": "2024-05-01" } }),
            ])
        };
        for codes in [
            &["entered-in-error"][..],
            &["refuted"],
            &["local-x", "refuted"],
        ] {
            let read = read(&condition(codes), None).unwrap();
            assert!(read.records.is_empty(), "{codes:?}");
            assert_eq!(read.not_stored.len(), 1);
            assert_eq!(read.not_stored[0].0, 1);
            assert!(read.not_stored[0].1.contains("verificationStatus"));
        }
        assert_eq!(
            read(&condition(&["confirmed"]), None)
                .unwrap()
                .records
                .len(),
            1
        );
        let lab = |status: &str| {
            bundle(vec![
                patient(),
                json!({ "resource": { "resourceType": "Observation",
                "status": status, "identifier": [{ "value": "O-1" }], "code": { "text": "HbA1c" },
                "subject": { "reference": "urn:uuid:p1" }, "effectiveDateTime": "2024-04-10",
                "valueQuantity": { "value": 7.2, "unit": "%" } } }),
            ])
        };
        let read_lab = |status: &str| read(&lab(status), None).unwrap();
        assert_eq!(read_lab("entered-in-error").not_stored.len(), 1);
        assert_eq!(read_lab("cancelled").not_stored.len(), 1);
        assert_eq!(read_lab("final").records.len(), 1);
        assert_eq!(read_lab("amended").records.len(), 1);
    }

    /// `leaf` wrapped in `wrap` until the bundle around it nests exactly
    /// `MAX_DEPTH` levels.
    fn nested_to_the_limit(resource: Value, wrap: impl Fn(Value) -> Value) -> Value {
        let mut inner = resource.clone();
        loop {
            let wider = wrap(inner.clone());
            let b = bundle(vec![patient(), json!({ "resource": wider })]);
            if depth(&b) > MAX_DEPTH {
                return bundle(vec![patient(), json!({ "resource": inner })]);
            }
            inner = wider;
        }
    }

    /// Every shape the R4 model reads by recursion, nested to the limit,
    /// read from a thread with half the stack of a tokio worker (2 MiB) —
    /// the rest is the request's own frames — the model's reading on a
    /// thread of its own ([`R4_STACK`]): a stack overflow here would abort
    /// the test run, as it would abort the hub. (Read on the 1 MiB thread
    /// itself, the sections and the contained resources overflowed it; the
    /// contained ones overflowed 2 MiB too.)
    #[test]
    fn what_nests_to_the_limit_is_read_within_half_a_workers_stack() {
        let condition = json!({ "resourceType": "Condition", "identifier": [{ "value": "C-1" }],
            "code": { "text": "x" }, "subject": { "reference": "urn:uuid:p1" }, "recordedDate": "2024-05-01" });
        let shapes = vec![
            // Sections within sections (the shape that overflowed).
            nested_to_the_limit(
                json!({ "resourceType": "Composition", "status": "final", "type": { "text": "x" },
                    "subject": { "reference": "urn:uuid:p1" }, "date": "2024-01-01", "title": "t",
                    "author": [{ "display": "a" }], "section": [{ "title": "leaf" }] }),
                |mut r| {
                    let inner = r["section"].clone();
                    r["section"] = json!([{ "title": "s", "section": inner }]);
                    r
                },
            ),
            // Extensions within extensions.
            nested_to_the_limit(condition.clone(), |mut r| {
                let inner = r["extension"].clone();
                let inner = if inner.is_null() {
                    json!([{ "url": "http://x", "valueString": "leaf" }])
                } else {
                    inner
                };
                r["extension"] = json!([{ "url": "http://x", "extension": inner }]);
                r
            }),
            // Contained resources within contained resources.
            nested_to_the_limit(condition.clone(), |r| {
                let mut outer = condition.clone();
                let mut inner = r;
                inner["id"] = json!("c");
                outer["contained"] = json!([inner]);
                outer
            }),
            // A type the hub does not store, read through the `Resource` enum.
            nested_to_the_limit(
                json!({ "resourceType": "Questionnaire", "status": "active", "item": [{ "linkId": "leaf", "type": "display" }] }),
                |mut r| {
                    let inner = r["item"].clone();
                    r["item"] = json!([{ "linkId": "g", "type": "group", "item": inner }]);
                    r
                },
            ),
        ];
        for b in shapes {
            // Each wrap adds one or two levels.
            assert!(
                (MAX_DEPTH - 1..=MAX_DEPTH).contains(&depth(&b)),
                "{}",
                depth(&b)
            );
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let _ = read(&b, None);
                })
                .unwrap()
                .join()
                .unwrap();
        }
    }
}
