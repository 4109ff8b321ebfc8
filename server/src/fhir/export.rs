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
//! patient it may not read at all is skipped and counted. Any other
//! failure (the database gone, the key revoked — checked again every 100
//! patients) ends the export with an error.
//!
//! Each file is written as `<Type>.ndjson.<run>.part` and renamed when the
//! whole export is written, so a file under its final name is always whole
//! (the renames are one file at a time: a crash between two leaves files
//! of two runs); a failed export removes its `.part` files. The final
//! files of an earlier export that this one has no lines for are removed,
//! so the folder holds only what this key read. The files are readable by
//! their owner only (0600): they hold patients' data.

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
    let run = uuid::Uuid::now_v7();
    let exported = write(state, api_key, out, run).await;
    if exported.is_err() {
        // What this run wrote is not a whole export: let it go.
        for ty in renkei_fhir::outbound::RESOURCE_TYPES {
            let _ = std::fs::remove_file(part(out, ty, run));
        }
    }
    exported
}

async fn write(
    state: AppState,
    api_key: &str,
    out: &Path,
    run: uuid::Uuid,
) -> anyhow::Result<Exported> {
    let principal = state
        .auth
        .authenticate(Some(&format!("Bearer {api_key}")))
        .await
        .map_err(|e| anyhow::anyhow!("the API key was refused: {}", e.message()))?;
    let mut caller = Caller::of(principal, format!("export-{run}"));
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
        if n > 0 && n % 100 == 0 {
            // A key revoked during a long export stops it; one whose
            // permissions changed reads with the new ones.
            caller.principal = state
                .auth
                .authenticate(Some(&format!("Bearer {api_key}")))
                .await
                .map_err(|e| anyhow::anyhow!("the API key was refused: {}", e.message()))?;
        }
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
        let bundle = match bundle {
            Ok(bundle) => bundle,
            // A patient the key may not read: not exported, counted.
            Err(refused) if refused.status() == axum::http::StatusCode::NOT_FOUND => {
                exported.skipped += 1;
                continue;
            }
            Err(failed) => {
                let status = failed.status();
                let body = axum::body::to_bytes(failed.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let outcome: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                anyhow::bail!(
                    "reading patient {id} failed ({status}): {}; nothing was renamed into place — run the export again",
                    outcome["issue"][0]["diagnostics"]
                        .as_str()
                        .unwrap_or("no detail")
                );
            }
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
                let path = part(out, ty, run);
                let file = owner_only()
                    .open(&path)
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
    for (ty, f) in files {
        let file = f.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        let to = out.join(format!("{ty}.ndjson"));
        std::fs::rename(part(out, &ty, run), &to)
            .with_context(|| format!("renaming into {}", to.display()))?;
    }
    // An earlier export's files this one wrote nothing for.
    for ty in renkei_fhir::outbound::RESOURCE_TYPES {
        let stale = out.join(format!("{ty}.ndjson"));
        if !exported.files.contains_key(*ty) && stale.exists() {
            std::fs::remove_file(&stale)
                .with_context(|| format!("removing {} of an earlier export", stale.display()))?;
        }
    }
    Ok(exported)
}

/// The file a type's lines are written to until the export is whole: the
/// run's own, so that two exports into one folder do not write into each
/// other's.
fn part(out: &Path, ty: &str, run: uuid::Uuid) -> std::path::PathBuf {
    out.join(format!("{ty}.ndjson.{run}.part"))
}

/// A new file (emptied if there) readable and writable by its owner only.
fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}
