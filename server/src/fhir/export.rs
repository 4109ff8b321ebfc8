//! `renkei export fhir --out DIR`: the patients an organisation's key may
//! read, as FHIR Bulk Data NDJSON — one file per resource type
//! (`Patient.ndjson`, `Condition.ndjson`, …), one resource per line.
//!
//! The patients are those of the organisation's care team
//! (`careTeamPatients`), each read exactly as `GET
//! /fhir/Patient/{id}/$everything` reads it — through the GraphQL schema as
//! the key's principal, under the policy — and a patient's lines are
//! written only after the audit entries of its reads are committed: nothing
//! leaves without its entry. What the key may not read is not exported; a
//! patient it may not read at all is skipped and counted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::Caller;
use crate::http::AppState;

const PATIENTS: &str = "query($after: String) { careTeamPatients(first: 100, after: $after) {
  edges { node { id } } pageInfo { hasNextPage endCursor } } }";

/// What the export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    pub patients: usize,
    pub skipped: usize,
    /// Lines per file.
    pub files: BTreeMap<String, usize>,
}

pub async fn run(state: AppState, api_key: &str, out: &Path) -> anyhow::Result<Exported> {
    let principal = state
        .auth
        .authenticate(Some(&format!("Bearer {api_key}")))
        .await
        .map_err(|e| anyhow::anyhow!("the API key was refused: {}", e.message()))?;
    let caller = Caller::of(principal, format!("export-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = caller
            .run(&state.schema, PATIENTS, json!({ "after": after }))
            .await;
        if let Some(e) = page["errors"].as_array().and_then(|e| e.first()) {
            anyhow::bail!("listing the patients: {}", e["message"]);
        }
        let list = &page["data"]["careTeamPatients"];
        for edge in list["edges"].as_array().into_iter().flatten() {
            if let Some(id) = edge["node"]["id"].as_str() {
                ids.push(id.to_string());
            }
        }
        if list["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = list["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    let mut files: BTreeMap<String, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
    let mut exported = Exported::default();
    for (n, id) in ids.iter().enumerate() {
        let bundle = super::outbound::read_patient(
            &state,
            &caller,
            id,
            renkei_fhir::outbound::EXPORTED_KINDS,
        )
        .await;
        caller
            .write_audit(&state.audit)
            .await
            .map_err(|e| anyhow::anyhow!("writing the audit entries: {}", e.message()))?;
        let Ok(bundle) = bundle else {
            exported.skipped += 1;
            continue;
        };
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let resource: &Value = &entry["resource"];
            let Some(ty) = resource["resourceType"].as_str() else {
                continue;
            };
            // The withheld-categories outcome belongs to a patient's bundle,
            // not to the bulk files.
            if ty == "OperationOutcome" {
                continue;
            }
            if !files.contains_key(ty) {
                let path = out.join(format!("{ty}.ndjson"));
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                files.insert(ty.to_string(), std::io::BufWriter::new(file));
            }
            let file = files.get_mut(ty).expect("opened");
            writeln!(file, "{resource}")?;
            *exported.files.entry(ty.to_string()).or_default() += 1;
        }
        exported.patients += 1;
        if (n + 1) % 100 == 0 {
            eprintln!("exported {}/{} patients", n + 1, ids.len());
        }
    }
    for (_, mut f) in files {
        f.flush()?;
    }
    Ok(exported)
}
