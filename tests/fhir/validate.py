"""Validates FHIR R4 JSON the hub produced, independently of the hub.

Usage: validate.py FILE...   (a resource or a Bundle per file; NDJSON: one per line)

1. Structure: every resource is parsed by the R4 (4.0.1) models of the PyPI
   package fhir.resources 6.4.0 (element names, types, cardinalities,
   required elements, value sets bound as enumerations).
2. JP Core / JP-CLINS rules, as FHIRPath (fhirpathpy), written from the
   published profiles (jami-fhir-jp-wg/jp-core-v1x, clinical-core): the
   profile claimed in meta.profile, required identifiers and their fixed
   systems, the insured-person identifier's shape, the Bundle invariants.

Prints one line per failure (file, resource, rule) and exits 1 if any.
"""

import json
import sys

from fhir.resources import construct_fhir_element
from fhirpathpy import evaluate

JP = "http://jpfhir.jp/fhir/core/StructureDefinition/"
RESOURCE_ID = "http://jpfhir.jp/fhir/core/IdSystem/resourceInstance-identifier"
INSURED = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID"
REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"

STORED_ID = (
    "identifier.where(system = '" + RESOURCE_ID + "' and value.exists()).exists()",
    "carries its resource instance identifier (JP Core IdSystem/resourceInstance-identifier)",
)

# (resourceType, FHIRPath that must be true, what it checks)
RULES = {
    "Bundle": [
        ("type.exists()", "bundle type"),
        ("entry.where(fullUrl.exists()).select(fullUrl).isDistinct()", "bdl-7: fullUrls are unique"),
        ("total.empty() or type = 'searchset' or type = 'history'", "bdl-1: total only in a search or history"),
        ("type != 'searchset' or entry.all(search.mode.exists())", "a searchset entry says its search mode"),
        ("type != 'searchset' or entry.where(search.mode = 'match').count() <= 1 or entry.where(search.mode = 'match').all(resource.is(Patient))",
         "a patient's bundle matches the patient"),
        ("entry.all(resource.exists())", "bdl-5: every entry has a resource"),
    ],
    "Patient": [
        ("meta.profile.where($this = '" + JP + "JP_Patient').exists()", "claims JP_Patient"),
        ("identifier.where(system.startsWith('urn:oid:1.2.392.100495.20.3.51.1')).all(system.matches('^urn:oid:1\\\\.2\\\\.392\\\\.100495\\\\.20\\\\.3\\\\.51\\\\.1[0-9]{10}$'))",
         "a local patient ID's system is the JP Core OID + a 10-digit institution code"),
        ("identifier.where(system = '" + INSURED + "').all(value.matches('^[0-9]{8}:[^:]*:[^:]+:[0-9]{2}$'))",
         "the insured-person identifier is 保険者番号(8):記号:番号:枝番(2)"),
        ("name.exists() implies name.where(extension('" + REPRESENTATION + "').valueCode = 'IDE').exists()",
         "the name carries its representation (IDE)"),
        ("gender.exists() implies gender in ('male' | 'female' | 'other' | 'unknown')", "gender code"),
    ],
    "Condition": [
        ("meta.profile.where($this = '" + JP + "JP_Condition').exists()", "claims JP_Condition"),
        STORED_ID,
        ("code.exists() and subject.exists()", "code and subject"),
        ("clinicalStatus.coding.all(system = 'http://terminology.hl7.org/CodeSystem/condition-clinical')", "clinicalStatus system"),
        ("code.coding.where(system = 'http://jpfhir.jp/fhir/core/CodeSystem/icd-10').all(code.matches('^[A-Z][0-9]{2}'))", "ICD-10 codes"),
    ],
    "AllergyIntolerance": [
        ("meta.profile.where($this = '" + JP + "JP_AllergyIntolerance').exists()", "claims JP_AllergyIntolerance"),
        STORED_ID,
        ("code.exists() and patient.exists()", "code and patient"),
        ("code.text.exists()", "JP-CLINS: the substance as shown (code.text)"),
        ("iif(criticality = 'high' and category contains 'medication', note.exists(), true)", "a drug contraindication says why"),
    ],
    "Observation": [
        ("meta.profile.exists()", "claims a profile"),
        STORED_ID,
        ("status.exists() and code.exists() and subject.exists() and (effectiveDateTime | effectiveInstant | effectivePeriod).exists()", "status, code, subject, time"),
        ("category.coding.where(system = 'http://terminology.hl7.org/CodeSystem/observation-category' and code = 'laboratory').exists()", "laboratory category"),
        ("(valueQuantity | valueString | valueCodeableConcept | valueBoolean | valueInteger).exists()", "a value"),
        ("code.coding.where(system = 'urn:oid:1.2.392.200119.4.504').all(code.matches('^[0-9A-Z]{17}$|^[0-9A-Z]{1,17}$'))", "JLAC10 codes"),
    ],
    "MedicationRequest": [
        ("meta.profile.where($this = '" + JP + "JP_MedicationRequest').exists()", "claims JP_MedicationRequest"),
        STORED_ID,
        ("(medicationCodeableConcept | medicationReference).exists() and subject.exists() and authoredOn.exists()", "medication, subject, authoredOn"),
        ("dosageInstruction.exists()", "dosage"),
        ("medicationCodeableConcept.coding.where(system = 'urn:oid:1.2.392.100495.20.2.73').all(code.length() = 12)", "YJ codes are 12 characters"),
    ],
    "Composition": [
        ("meta.profile.exists()", "claims a profile"),
        ("identifier.system = '" + RESOURCE_ID + "'", "document identifier"),
        ("type.exists() and author.exists() and title.exists() and date.exists()", "type, author, title, date"),
        ("section.all(text.exists() or entry.exists() or section.exists())", "cmp-1: a section has content"),
    ],
    "OperationOutcome": [
        ("issue.exists()", "at least one issue"),
    ],
    "CapabilityStatement": [
        ("fhirVersion = '4.0.1'", "R4"),
        ("rest.resource.where(type = 'Patient').operation.where(name = 'everything').exists()", "announces $everything"),
    ],
}


def resources(value):
    yield value
    if value.get("resourceType") == "Bundle":
        for entry in value.get("entry", []):
            if "resource" in entry:
                yield from resources(entry["resource"])


def check(label, value, failures):
    try:
        construct_fhir_element(value["resourceType"], value)
    except Exception as e:  # the models say what is wrong
        failures.append(f"{label}: not valid R4: {e}".replace("\n", " "))
        return 0
    count = 0
    for r in resources(value):
        count += 1
        name = f"{label} {r.get('resourceType')}/{r.get('id', '-')}"
        for expression, what in RULES.get(r.get("resourceType"), []):
            try:
                result = evaluate(r, expression, {})
            except Exception as e:
                failures.append(f"{name}: rule {what!r} could not be evaluated: {e}")
                continue
            if result != [True]:
                failures.append(f"{name}: {what} ({expression}) -> {result}")
    return count


def main(paths):
    failures = []
    total = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        values = (
            [json.loads(line) for line in text.splitlines() if line.strip()]
            if path.endswith(".ndjson")
            else [json.loads(text)]
        )
        for i, value in enumerate(values):
            total += check(f"{path}#{i + 1}", value, failures)
    for failure in failures:
        print(failure)
    print(f"{total} resources checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
