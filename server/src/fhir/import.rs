//! `renkei import fhir PATH…`: bulk import of FHIR R4 through the very code
//! path of `POST /fhir`.
//!
//! The command builds the hub's parts without a listener ([`crate::Hub`]),
//! and sends every bundle to the hub's own router in-process, with the API
//! key as the bearer token: authentication, the translation of the bundle,
//! the policy, `writeRecords` and the audit log are exactly what a vendor's
//! system meets over HTTP — only the network is skipped (and the rate
//! limits, which guard the network from its callers, not the operator from
//! itself).
//!
//! What it reads:
//! - a `.json` file: one `Bundle` (collection, transaction or document);
//! - a `.ndjson` file (FHIR Bulk Data): one resource per line. A line that
//!   is a `Bundle` is sent as it is; other resources are grouped by the
//!   patient they are about (`subject` or `patient`) into `collection`
//!   bundles of one resource type with that `Patient` — found among the
//!   lines of the run's NDJSON files, by id — as JP-CLINS sends them, whole
//!   patients to a bundle in patient order (see [`whole_patients`]);
//! - a directory: its `.json` and `.ndjson` files, recursively, in name order.
//!
//! Each bundle is all or nothing (the hub writes it in one transaction), so
//! a failure leaves nothing half-written. A bad resource is reported by
//! file, line and element (`Condition.ndjson:17: Condition.code: …`), the
//! other bundles go on, and the exit status is 1. Resumable: each bundle
//! written is noted in a journal (`--journal`, one line per bundle: the
//! organisation and the SHA-256 of what was sent), and a rerun skips what
//! the journal holds; without the journal a rerun is still harmless, as
//! the hub answers a resubmission `UNCHANGED`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use futures_util::StreamExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// At most this many resources per bundle built from NDJSON lines: the
/// hub's limit of records per write (`writeRecords`), less the `Patient`.
pub const MAX_RESOURCES_PER_BUNDLE: usize = 499;

/// The largest bundle file the import sends (1 GiB).
const IMPORT_BODY_MAX: usize = 1 << 30;

/// How often a transient failure (`503`, the database restarting) is
/// retried before the bundle is reported failed.
const RETRIES: u32 = 5;

/// Where a bundle came from, for progress and error reports.
#[derive(Clone, Debug)]
enum Origin {
    /// A whole `.json` file.
    File(PathBuf),
    /// One line of an NDJSON file that is itself a bundle.
    Line(PathBuf, usize),
    /// Lines of NDJSON files gathered into one bundle: entry `i` is
    /// `lines[i]` (the patients first, then the resources of `file`).
    Grouped {
        file: PathBuf,
        lines: Vec<(PathBuf, usize)>,
    },
}

/// One bundle to send.
struct Unit {
    origin: Origin,
    /// Shared, not copied, by every attempt to send it.
    body: Bytes,
    /// Resources in it (the `Patient` included), for progress.
    resources: usize,
}

impl Unit {
    fn label(&self) -> String {
        match &self.origin {
            Origin::File(p) => p.display().to_string(),
            Origin::Line(p, line) => format!("{}:{line}", p.display()),
            Origin::Grouped { file, lines } => {
                let own: Vec<usize> = lines
                    .iter()
                    .filter(|(f, _)| f == file)
                    .map(|(_, l)| *l)
                    .collect();
                match (own.first(), own.last()) {
                    (Some(a), Some(b)) if a != b => format!("{}:{a}–{b}", file.display()),
                    (Some(a), _) => format!("{}:{a}", file.display()),
                    _ => file.display().to_string(),
                }
            }
        }
    }

    /// Where `Bundle.entry[i].resource…` of this unit came from, and the
    /// element path within the resource: `Condition.ndjson:17: Condition.code`.
    fn locate(&self, expression: &str) -> String {
        let Some((index, rest)) = entry_of(expression) else {
            return format!("{}: {expression}", self.label());
        };
        match &self.origin {
            Origin::File(p) => format!("{}: {expression}", p.display()),
            Origin::Line(p, line) => format!("{}:{line}: {expression}", p.display()),
            Origin::Grouped { lines, .. } => match lines.get(index) {
                Some((path, line)) => format!("{}:{line}: {rest}", path.display()),
                None => format!("{}: {expression}", self.label()),
            },
        }
    }
}

/// `Bundle.entry[3].resource.code` → `(3, "Condition.code")`-like: the
/// entry's index and the path from the resource on (with the resource
/// named by what follows `resource`).
fn entry_of(expression: &str) -> Option<(usize, String)> {
    let rest = expression.strip_prefix("Bundle.entry[")?;
    let (index, rest) = rest.split_once(']')?;
    let index = index.parse().ok()?;
    let path = rest
        .strip_prefix(".resource")
        .map(|p| format!("resource{p}"))
        .unwrap_or_else(|| format!("entry{rest}"));
    Some((index, path))
}

/// The files named (directories walked, in name order), each once. A
/// directory reached again through a link (`sub/up -> ..`) is walked once;
/// a `.json` or `.ndjson` name that is not a regular file (a FIFO, a
/// device) stops the import before anything is read: reading one would
/// wait for a writer, or never end.
fn files_of(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut walked = HashSet::new();
    walk(paths, &mut walked, &mut out)?;
    // A file named twice — by two paths, or through a link — is read once.
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

fn walk(
    paths: &[PathBuf],
    walked: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    for path in paths {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            let real = std::fs::canonicalize(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if !walked.insert(real) {
                continue;
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("listing {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            let found: Vec<PathBuf> = entries
                .into_iter()
                .filter(|entry| entry.is_dir() || is_fhir_file(entry))
                .collect();
            walk(&found, walked, out)?;
        } else if !is_fhir_file(path) {
            anyhow::bail!(
                "{}: not a FHIR file the import reads (.json: a Bundle; .ndjson: one resource per line)",
                path.display()
            );
        } else if !meta.is_file() {
            anyhow::bail!(
                "{}: not a regular file (a FIFO, a socket or a device): copy it to a file first",
                path.display()
            );
        } else {
            out.push(path.clone());
        }
    }
    Ok(())
}

fn is_fhir_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson")
    )
}

/// A bundle to send and its key in the journal.
type Keyed = (Unit, String);

/// A problem found while reading the files, before anything is sent.
struct Problem {
    at: String,
    message: String,
}

/// What the planner reads of an NDJSON line besides its text: the few
/// elements that place it. The rest of the line is not parsed into a tree —
/// a `Value` of a resource takes about ten times the memory of its text,
/// and the planner holds every line of the run until its bundles are built:
/// the fresh memory those trees took (zeroed page by page by the kernel)
/// was the largest single cost of an import.
#[derive(serde::Deserialize)]
struct Facts {
    #[serde(rename = "resourceType")]
    resource_type: Option<Value>,
    id: Option<Value>,
    subject: Option<Value>,
    patient: Option<Value>,
}

impl Facts {
    /// The reference to the resource's patient (`subject` or `patient`).
    fn reference(&self) -> Option<&str> {
        [&self.subject, &self.patient]
            .into_iter()
            .find_map(|f| f.as_ref()?["reference"].as_str())
    }
}

/// A resource's text read — an NDJSON line or a `.json` file: the text as
/// it was, without the JSON whitespace around it (what a `RawValue` of it
/// holds), checked to be one JSON object, and its [`Facts`] — in one parse:
/// deserialising the facts checks the whole text as JSON (the elements
/// not kept are still read, and skipped), so the text is not also parsed
/// into a `RawValue` first.
fn read_resource(text: &str) -> Result<(&str, Facts), String> {
    let text = text.trim_start_matches(super::inbound::BOM);
    let text = text.trim_matches(|c| matches!(c, ' ' | '\n' | '\t' | '\r'));
    let not_an_object = || "resourceType: not a FHIR resource (a JSON object)".to_string();
    match serde_json::from_str::<Facts>(text) {
        // Valid JSON that is not an object (a list reads as a struct too).
        Ok(_) if !text.starts_with('{') => Err(not_an_object()),
        Ok(facts) => Ok((text, facts)),
        Err(e) if renkei_fhir::inbound::is_too_deep(&e) => {
            Err(renkei_fhir::inbound::too_deep().diagnostics)
        }
        Err(e) if e.is_syntax() || e.is_eof() => Err(format!("not JSON: {e}")),
        Err(_) if !text.starts_with('{') => Err(not_an_object()),
        Err(e) => Err(format!("not a FHIR resource the import reads: {e}")),
    }
}

/// The entries of a bundle's text, counted without building them.
fn entries_in(bundle: &str) -> usize {
    #[derive(serde::Deserialize)]
    struct Entries {
        entry: Option<Vec<serde::de::IgnoredAny>>,
    }
    // A bundle whose entries are not a list is refused by the hub, which
    // says why; here it only counts for the progress.
    serde_json::from_str::<Entries>(bundle)
        .ok()
        .and_then(|b| b.entry)
        .map_or(0, |e| e.len())
}

/// A `Patient` line: where it is, and its text.
type PatientLine = (PathBuf, usize, Box<RawValue>);

/// Another resource's line: its number, its text and its [`Facts`].
type ResourceLine = (usize, String, Facts);

/// The bundles to send, in file order, and the problems of lines that
/// could not be read.
/// And how many lines were context only (an Organization, a Practitioner
/// … naming no patient), which the hub does not store.
fn plan(files: &[PathBuf]) -> anyhow::Result<(Vec<Unit>, Vec<Problem>, usize)> {
    let mut units = Vec::new();
    let mut problems = Vec::new();
    // NDJSON resources, read once: patients by id, the rest per file.
    let mut patients: BTreeMap<String, PatientLine> = BTreeMap::new();
    // Ids given to two different Patient lines.
    let mut clashing: HashSet<String> = HashSet::new();
    let mut others: Vec<(PathBuf, Vec<ResourceLine>)> = Vec::new();
    for file in files {
        if file.extension().and_then(|e| e.to_str()) == Some("json") {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let at = file.display().to_string();
            // FHIR JSON is UTF-8; a file that is not is one bad file, not
            // the end of the run.
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(Problem {
                        at,
                        message: format!("not JSON: not UTF-8 ({e})"),
                    });
                    continue;
                }
            };
            match read_resource(&text) {
                Ok((json, facts)) => match facts.resource_type.as_ref().and_then(Value::as_str) {
                    Some("Bundle") => units.push(Unit {
                        origin: Origin::File(file.clone()),
                        resources: entries_in(json),
                        body: Bytes::from(text),
                    }),
                    other => problems.push(Problem {
                        at,
                        message: format!(
                            "a .json file must hold one Bundle, not {}",
                            other.unwrap_or("a resource without resourceType")
                        ),
                    }),
                },
                Err(message) => problems.push(Problem { at, message }),
            }
            continue;
        }
        let reader = std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?,
        );
        let mut lines = Vec::new();
        for (i, line) in reader.split(b'\n').enumerate() {
            let number = i + 1;
            let line = line.with_context(|| format!("reading {}:{number}", file.display()))?;
            // A line that is not UTF-8 is one bad line, not the end of the run.
            let line = match String::from_utf8(line) {
                Ok(line) => line,
                Err(e) => {
                    problems.push(Problem {
                        at: format!("{}:{number}", file.display()),
                        message: format!("not JSON: not UTF-8 ({})", e.utf8_error()),
                    });
                    continue;
                }
            };
            if !line.trim().is_empty() {
                lines.push((number, line));
            }
        }
        let read = on_every_core(&lines, |(_, line)| {
            read_resource(line).map(|(json, facts)| (json.to_string(), facts))
        });
        let numbers: Vec<usize> = lines.iter().map(|(n, _)| *n).collect();
        drop(lines);
        let mut rest = Vec::new();
        for (number, line) in numbers.into_iter().zip(read) {
            let at = || format!("{}:{number}", file.display());
            let (json, facts) = match line {
                Ok(l) => l,
                Err(message) => {
                    problems.push(Problem { at: at(), message });
                    continue;
                }
            };
            match facts.resource_type.as_ref().and_then(Value::as_str) {
                Some("Bundle") => units.push(Unit {
                    origin: Origin::Line(file.clone(), number),
                    resources: entries_in(&json),
                    body: Bytes::from(json),
                }),
                Some("Patient") => match facts.id.as_ref().and_then(Value::as_str) {
                    // Sent as read: held as a `RawValue` (checked already).
                    Some(id) => {
                        let raw = RawValue::from_string(json)
                            .map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
                        match patients.get(id) {
                            // The same patient twice (one export read twice): one.
                            Some((_, _, earlier)) if earlier.get() == raw.get() => {}
                            // Two patients under one id (two systems' exports
                            // both hold `Patient/1`): which one a resource
                            // names cannot be told, so none is guessed.
                            Some((path, line, _)) => {
                                problems.push(Problem {
                                    at: at(),
                                    message: format!(
                                        "Patient.id: Patient/{id} is also {}:{line}, a different patient; import files whose Patient ids clash in separate runs",
                                        path.display()
                                    ),
                                });
                                clashing.insert(id.to_string());
                            }
                            None => {
                                patients.insert(id.to_string(), (file.clone(), number, raw));
                            }
                        }
                    }
                    None => problems.push(Problem {
                        at: at(),
                        message: "Patient.id: a Patient line needs its id, which the other lines reference".into(),
                    }),
                },
                Some(_) => rest.push((number, json, facts)),
                None => problems.push(Problem {
                    at: at(),
                    message: "resourceType: a line must be a FHIR resource".into(),
                }),
            }
        }
        if !rest.is_empty() {
            others.push((file.clone(), rest));
        }
    }
    // Each file's resources placed under their patients; the patients'
    // consents apart, to go with the patient into each of its bundles.
    let mut by_file: Vec<(PathBuf, Vec<Placed>)> = Vec::new();
    let mut consents: Consents = HashMap::new();
    let mut context = 0;
    for (file, resources) in others {
        // In line order, at most a bundle's worth of resources at a time,
        // each bundle with the patients its resources are about.
        let mut placed: Vec<Placed> = Vec::new();
        for (line, resource, facts) in resources {
            let kind = facts
                .resource_type
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default();
            let Some(reference) = facts.reference() else {
                // An Organization, a Practitioner … of a Bulk Data export:
                // context, which the hub does not store.
                if renkei_fhir::inbound::CONTEXT.contains(&kind) {
                    context += 1;
                    continue;
                }
                problems.push(Problem {
                    at: format!("{}:{line}", file.display()),
                    message: format!("{kind}.subject: the resource names no patient"),
                });
                continue;
            };
            // `Patient/<id>` as Bulk Data files name it, or `urn:uuid:<id>`
            // as `renkei export fhir` (and a bundle's entries) do.
            let id = reference
                .strip_prefix("Patient/")
                .or_else(|| reference.strip_prefix("urn:uuid:"))
                .unwrap_or(reference)
                .to_string();
            if clashing.contains(&id) {
                problems.push(Problem {
                    at: format!("{}:{line}", file.display()),
                    message: format!(
                        "{kind}.subject: Patient/{id} names two different Patient lines of the files given"
                    ),
                });
                continue;
            }
            if !patients.contains_key(&id) {
                problems.push(Problem {
                    at: format!("{}:{line}", file.display()),
                    message: format!(
                        "{kind}.subject: Patient/{id} is not among the Patient lines of the files given"
                    ),
                });
                continue;
            }
            if kind == "Consent" {
                consents
                    .entry(id)
                    .or_default()
                    .push((file.clone(), line, resource));
            } else {
                placed.push((id, line, resource));
            }
        }
        by_file.push((file, placed));
    }
    let mut bundled: HashSet<String> = HashSet::new();
    for (file, mut placed) in by_file {
        // Whole patients to a bundle, in patient order (each patient's
        // lines in line order: the sort is stable). The hub locks a
        // bundle's patients while it writes, so bundles in flight together
        // that name the same patients run one after the other; packed by
        // patient, they name different ones — and a patient's resources of
        // one file go in one bundle, in line order, unless they alone fill
        // more than one.
        placed.sort_by(|a, b| a.0.cmp(&b.0));
        let ids: Vec<&str> = placed.iter().map(|(id, _, _)| id.as_str()).collect();
        let bundles = whole_patients(&ids, MAX_RESOURCES_PER_BUNDLE);
        let built = on_every_core(&bundles, |range| {
            collection(&patients, &consents, &file, &[], &placed[range.clone()])
        });
        for unit in built {
            units.push(unit?);
        }
        bundled.extend(placed.into_iter().map(|(id, _, _)| id));
    }
    // A patient with a consent and nothing else: its own bundle (what
    // registers it with `--register-patients`).
    let mut alone: Vec<&String> = consents
        .keys()
        .filter(|id| !bundled.contains(*id))
        .collect();
    alone.sort();
    for id in alone {
        let (file, _, _) = &consents[id][0];
        units.push(collection(&patients, &consents, file, &[id], &[])?);
    }
    Ok((units, problems, context))
}

/// A resource line placed under its patient: the patient's id, the line's
/// number and its text.
type Placed = (String, usize, String);

/// The Consent lines of each patient (by the patient's id): their file,
/// line and text.
type Consents = HashMap<String, Vec<(PathBuf, usize, String)>>;

/// `f` of each item, in order, computed on every core: reading the lines
/// and building the bundles is the import's own work before the first
/// bundle is sent, and on one thread the hub's other cores would wait.
fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Splits resources sorted by patient (`ids`: each one's patient) into
/// bundles of at most `max`, each holding whole patients: a patient goes
/// to the next bundle rather than be split, unless it alone has more than
/// `max` resources.
fn whole_patients(ids: &[&str], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut bundles = Vec::new();
    let (mut start, mut end) = (0, 0);
    for group in ids.chunk_by(|a, b| a == b) {
        let (first, last) = (end, end + group.len());
        end = last;
        if last - start > max && first > start {
            bundles.push(start..first);
            start = first;
        }
        while last - start > max {
            bundles.push(start..start + max);
            start += max;
        }
    }
    if start < end {
        bundles.push(start..end);
    }
    bundles
}

/// A `urn:uuid:` full URL named by `parts`: the same lines make the same
/// bundle, byte for byte, so the journal recognises it on a rerun.
fn full_url(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{0}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format!(
        "urn:uuid:{}",
        uuid::Builder::from_sha1_bytes(bytes).into_uuid()
    )
}

/// A `collection` bundle of resources and the patients they are about
/// (first, each once), each resource pointing at its patient's entry by
/// the entry's `urn:uuid:` full URL. The lines go in as they were read,
/// but for the reference to the patient.
fn collection(
    patients: &BTreeMap<String, PatientLine>,
    consents: &Consents,
    file: &Path,
    only: &[&str],
    resources: &[Placed],
) -> anyhow::Result<Unit> {
    #[derive(serde::Serialize)]
    struct Bundle<'a> {
        #[serde(rename = "resourceType")]
        resource_type: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
        entry: Vec<Entry<'a>>,
    }
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        #[serde(rename = "fullUrl")]
        full_url: String,
        resource: Resource<'a>,
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Resource<'a> {
        AsRead(&'a RawValue),
        Pointed(BTreeMap<String, std::borrow::Cow<'a, RawValue>>),
    }
    let mut entries = Vec::new();
    let mut lines = Vec::new();
    // Each patient's entry URL, once: its resources point at it.
    let mut urls: HashMap<&str, String> = HashMap::new();
    let ids = only
        .iter()
        .copied()
        .chain(resources.iter().map(|(id, _, _)| id.as_str()));
    for id in ids {
        if !urls.contains_key(id)
            && let Some((path, line, patient)) = patients.get(id)
        {
            let url = full_url(&["Patient", id]);
            entries.push(Entry {
                full_url: url.clone(),
                resource: Resource::AsRead(patient),
            });
            lines.push((path.clone(), *line));
            // The patient's consent with it, in every bundle: the first
            // one sent registers the patient (`--register-patients`), and
            // the hub records a consent only with a registration.
            for (path, line, consent) in consents.get(id).into_iter().flatten() {
                let at = || format!("{}:{line}", path.display());
                entries.push(Entry {
                    full_url: full_url(&["Consent", id, &line.to_string(), consent]),
                    resource: Resource::Pointed(pointed_at(consent, &url).with_context(at)?),
                });
                lines.push((path.clone(), *line));
            }
            urls.insert(id, url);
        }
    }
    for (id, line, resource) in resources {
        let at = || format!("{}:{line}", file.display());
        let url = urls
            .get(id.as_str())
            .with_context(|| format!("{}: Patient/{id} has no entry", at()))?;
        entries.push(Entry {
            full_url: full_url(&[id, &line.to_string(), resource]),
            resource: Resource::Pointed(pointed_at(resource, url).with_context(at)?),
        });
        lines.push((file.to_path_buf(), *line));
    }
    let resources = entries.len();
    let bundle = Bundle {
        resource_type: "Bundle",
        kind: "collection",
        entry: entries,
    };
    Ok(Unit {
        origin: Origin::Grouped {
            file: file.to_path_buf(),
            lines,
        },
        body: Bytes::from(serde_json::to_vec(&bundle)?),
        resources,
    })
}

/// A resource's elements with its reference to its patient (`subject` or
/// `patient`) pointed at `url`; every other element as it was read.
fn pointed_at<'a>(
    resource: &'a str,
    url: &str,
) -> serde_json::Result<BTreeMap<String, std::borrow::Cow<'a, RawValue>>> {
    use std::borrow::Cow;
    let elements: BTreeMap<String, &'a RawValue> = serde_json::from_str(resource)?;
    let mut out = BTreeMap::new();
    for (name, value) in elements {
        let mut element = Cow::Borrowed(value);
        if matches!(name.as_str(), "subject" | "patient") {
            let mut reference: Value = serde_json::from_str(value.get())?;
            if reference["reference"].is_string() {
                reference["reference"] = json!(url);
                element = Cow::Owned(serde_json::value::to_raw_value(&reference)?);
            }
        }
        out.insert(name, element);
    }
    Ok(out)
}

/// The journal of bundles written: `<organisation id> <sha256>` per line.
struct Journal {
    path: PathBuf,
    done: HashSet<String>,
    file: Mutex<std::fs::File>,
}

impl Journal {
    fn open(path: &Path) -> anyhow::Result<Journal> {
        // A FIFO would wait for a writer for ever, a device (`/dev/zero`)
        // read until memory ran out: only a regular file (or none yet).
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => anyhow::bail!(
                "the journal {} is not a regular file: name a file (it is created if missing)",
                path.display()
            ),
            _ => {}
        }
        let (done, torn) = match std::fs::read_to_string(path) {
            Ok(text) => (
                text.lines().map(str::to_string).collect(),
                !text.is_empty() && !text.ends_with('\n'),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (HashSet::new(), false),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the journal {}", path.display()))?;
        // A run killed in the middle of a line left it without its end:
        // ended now, so that the next key starts a line of its own (the
        // torn one matches no bundle, which is sent again and answered
        // UNCHANGED).
        if torn {
            file.write_all(b"\n")
                .with_context(|| format!("writing the journal {}", path.display()))?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            done,
            file: Mutex::new(file),
        })
    }

    fn key(organization: uuid::Uuid, body: &[u8]) -> String {
        let digest = Sha256::digest(body);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{organization} {hex}")
    }

    /// Notes a bundle written; flushed at once, so a killed run loses at
    /// most the bundles in flight (which the hub would answer UNCHANGED).
    fn note(&self, key: &str) -> anyhow::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("journal lock poisoned"))?;
        // One write of the key and its line end: a kill between two writes
        // would leave a line the next run's key is glued to.
        file.write_all(format!("{key}\n").as_bytes())
            .and_then(|()| file.flush())
            .with_context(|| format!("writing the journal {}", self.path.display()))
    }
}

/// What the import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bundles: usize,
    pub skipped: usize,
    pub failed: usize,
    pub resources: usize,
    /// Entries answered `201 Created`.
    pub created: usize,
    /// Entries answered `200 OK` (a new version, or nothing changed).
    pub existing: usize,
    /// NDJSON lines read for context only (naming no patient), not sent.
    pub context: usize,
}

/// Progress on a terminal (a bar) or in a log (a line every few seconds).
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines {
        total: u64,
        done: u64,
        started: Instant,
        last: Instant,
    },
}

impl Progress {
    fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} resources ({per_sec}, eta {eta}) {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            Progress::Bar(bar)
        } else {
            let now = Instant::now();
            Progress::Lines {
                total,
                done: 0,
                started: now,
                last: now,
            }
        }
    }

    fn advance(&mut self, n: u64) {
        match self {
            Progress::Bar(bar) => bar.inc(n),
            Progress::Lines {
                total,
                done,
                started,
                last,
            } => {
                *done += n;
                if last.elapsed() >= Duration::from_secs(2) || *done == *total {
                    *last = Instant::now();
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    // Done, not imported: a refused bundle's resources
                    // count here too (the summary tells them apart).
                    eprintln!(
                        "done with {done}/{total} resources ({:.0}/s)",
                        *done as f64 / secs
                    );
                }
            }
        }
    }

    fn report(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.println(line),
            Progress::Lines { .. } => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Options of `renkei import fhir`.
pub struct ImportOptions {
    pub paths: Vec<PathBuf>,
    /// Register patients the hub cannot match (`POST /fhir?register=true`).
    pub register_patients: bool,
    pub journal: PathBuf,
    /// Bundles in flight at once.
    pub jobs: usize,
}

/// Imports the files as the API key's organisation. `Ok` with the summary
/// even when bundles failed (they are reported on stderr); `Err` when the
/// import could not run at all (unreadable files, a refused key).
pub async fn run(
    state: crate::http::AppState,
    api_key: &str,
    options: ImportOptions,
) -> anyhow::Result<Summary> {
    let principal = state
        .auth
        .authenticate(Some(&format!("Bearer {api_key}")))
        .await
        .map_err(|e| anyhow::anyhow!("the API key was refused: {}", e.message()))?;
    let organization = principal.organization_id();
    let files = files_of(&options.paths)?;
    if files.is_empty() {
        anyhow::bail!("no .json or .ndjson files in the paths given");
    }
    let (units, problems, context) = plan(&files)?;
    let journal = Journal::open(&options.journal)?;
    let mut summary = Summary {
        failed: problems.len(),
        context,
        ..Summary::default()
    };
    // Each bundle's journal key, computed once (hashing every body is a
    // pass over all the run's text): what decides the skip is what is noted.
    let keys = on_every_core(&units, |u| Journal::key(organization, &u.body));
    let (todo, done): (Vec<Keyed>, Vec<Keyed>) = units
        .into_iter()
        .zip(keys)
        .partition(|(_, key)| !journal.done.contains(key));
    summary.skipped = done.len();
    let total: usize = todo.iter().map(|(u, _)| u.resources).sum();
    let progress = Arc::new(Mutex::new(Progress::new(total as u64)));
    let say = |line: &str| {
        if let Ok(p) = progress.lock() {
            p.report(line);
        }
    };
    for p in &problems {
        say(&format!("{}: {}", p.at, p.message));
    }
    if summary.skipped > 0 {
        say(&format!(
            "skipping {} bundles already imported (journal {})",
            summary.skipped,
            options.journal.display()
        ));
    }
    // The router as `serve` builds it, without its body limit: the files
    // are the operator's own. What a bundle may hold is still the hub's rule.
    let router = crate::http::router(state.clone(), IMPORT_BODY_MAX, &[]);
    let path = if options.register_patients {
        "/fhir?register=true"
    } else {
        "/fhir"
    };
    let bearer = format!("Bearer {api_key}");
    // Each bundle in a task of its own: the hub's side of a bundle (its
    // parse, translation, GraphQL execution) is most of the import's CPU,
    // and futures merely polled by this stream would all run on the one
    // thread polling it, whatever `--jobs` says — the other cores idle.
    let results = futures_util::stream::iter(todo)
        .map(|(unit, key)| {
            let task = tokio::spawn({
                let (router, bearer, body) = (router.clone(), bearer.clone(), unit.body.clone());
                async move { send(&router, path, &bearer, &body).await }
            });
            async move {
                let outcome = task.await.unwrap_or_else(|e| {
                    Err(Failure::Internal(format!("the bundle's task failed: {e}")))
                });
                (unit, key, outcome)
            }
        })
        .buffer_unordered(options.jobs.max(1));
    futures_util::pin_mut!(results);
    while let Some((unit, key, outcome)) = results.next().await {
        match outcome {
            Ok(answer) => {
                for entry in answer.entry {
                    if entry.response.status.starts_with("201") {
                        summary.created += 1;
                    } else {
                        summary.existing += 1;
                    }
                }
                summary.bundles += 1;
                summary.resources += unit.resources;
                journal.note(&key)?;
            }
            Err(Failure::Refused(status, outcome)) => {
                summary.failed += 1;
                let issues = outcome["issue"].as_array().cloned().unwrap_or_default();
                if issues.is_empty() {
                    say(&format!("{}: refused ({status})", unit.label()));
                }
                for issue in issues {
                    let diagnostics = issue["diagnostics"].as_str().unwrap_or("refused");
                    let at = issue["expression"][0]
                        .as_str()
                        .map(|e| unit.locate(e))
                        .unwrap_or_else(|| unit.label());
                    say(&format!("{at}: {diagnostics} ({status})"));
                }
            }
            Err(Failure::Internal(why)) => {
                summary.failed += 1;
                say(&format!("{}: {why}", unit.label()));
            }
        }
        if let Ok(mut p) = progress.lock() {
            p.advance(unit.resources as u64);
        }
    }
    if let Ok(p) = progress.lock() {
        p.finish();
    }
    Ok(summary)
}

/// What the import reads of a bundle's answer (`transaction-response` or
/// `batch-response`): each entry's status, not the whole tree.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(default)]
    entry: Vec<AnswerEntry>,
}

#[derive(serde::Deserialize)]
struct AnswerEntry {
    response: AnswerResponse,
}

#[derive(serde::Deserialize)]
struct AnswerResponse {
    status: String,
}

enum Failure {
    /// The hub refused the bundle: its status and `OperationOutcome`.
    Refused(StatusCode, Value),
    Internal(String),
}

/// Sends one bundle, retrying while the hub answers `503` (the database
/// restarting): the bundle was not written, so sending it again is safe —
/// and were it written, the hub would answer it UNCHANGED.
async fn send(
    router: &axum::Router,
    path: &str,
    bearer: &str,
    body: &Bytes,
) -> Result<Answer, Failure> {
    let mut wait = Duration::from_millis(500);
    for attempt in 0..=RETRIES {
        let request = Request::post(path)
            .header(header::AUTHORIZATION, bearer)
            .header(header::CONTENT_TYPE, renkei_fhir::MEDIA_TYPE)
            .header(header::ACCEPT, renkei_fhir::MEDIA_TYPE)
            .body(Body::from(body.clone()))
            .map_err(|e| Failure::Internal(format!("building the request: {e}")))?;
        let response = router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| Failure::Internal(format!("the hub did not answer: {e}")))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| Failure::Internal(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Internal(format!("the hub's answer could not be read: {e}"))
            });
        }
        if status == StatusCode::SERVICE_UNAVAILABLE && attempt < RETRIES {
            tokio::time::sleep(wait).await;
            wait *= 2;
            continue;
        }
        // Two bundles in flight that name one new patient both try to
        // register it (`--register-patients`): the one that loses is
        // refused `409`, and sent once more matches the patient the other
        // registered. Any other conflict is refused again, and told.
        if status == StatusCode::CONFLICT && attempt == 0 {
            continue;
        }
        let outcome: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(Failure::Refused(status, outcome));
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_on_every_core_keeps_the_order_of_the_items() {
        let items: Vec<usize> = (0..1001).collect();
        let doubled = on_every_core(&items, |i| i * 2);
        assert_eq!(doubled, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(on_every_core(&[] as &[usize], |i| *i).is_empty());
        assert_eq!(on_every_core(&[7], |i| i + 1), vec![8]);
    }

    #[test]
    fn an_element_path_is_told_by_file_and_line() {
        let unit = Unit {
            origin: Origin::Grouped {
                file: PathBuf::from("Condition.ndjson"),
                lines: vec![
                    (PathBuf::from("Patient.ndjson"), 2),
                    (PathBuf::from("Condition.ndjson"), 4),
                    (PathBuf::from("Condition.ndjson"), 9),
                ],
            },
            body: Bytes::new(),
            resources: 3,
        };
        assert_eq!(
            unit.locate("Bundle.entry[2].resource.code"),
            "Condition.ndjson:9: resource.code"
        );
        assert_eq!(
            unit.locate("Bundle.entry[0].resource.identifier"),
            "Patient.ndjson:2: resource.identifier"
        );
        assert_eq!(unit.label(), "Condition.ndjson:4–9");
    }

    #[test]
    fn ndjson_resources_are_grouped_under_their_patient_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let patients = dir.path().join("Patient.ndjson");
        std::fs::write(
            &patients,
            "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n\n{\"resourceType\":\"Patient\",\"id\":\"p2\"}\n",
        )
        .unwrap();
        let conditions = dir.path().join("Condition.ndjson");
        std::fs::write(
            &conditions,
            "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p2\"}}\n\
             {\"resourceType\":\"Condition\",\"code\":{\"text\":\"高血圧\"},\"subject\":{\"reference\":\"Patient/p1\",\"display\":\"p one\"}}\n\
             {\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p2\"}}\n\
             {\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/nobody\"}}\n\
             not json\n\
             [1,2]\n\
             {\"resourceType\":\"Condition\",\"id\":\"a\",\"id\":\"b\"}\n",
        )
        .unwrap();
        let files = files_of(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files, vec![conditions.clone(), patients.clone()]);
        let (units, problems, _) = plan(&files).unwrap();
        assert_eq!(units.len(), 1);
        let unit = &units[0];
        // Two patients, then the three conditions by patient, each
        // patient's in line order.
        assert_eq!(unit.resources, 5);
        let bundle: Value = serde_json::from_slice(&unit.body).unwrap();
        assert_eq!(bundle["type"], "collection");
        assert_eq!(bundle["entry"][0]["resource"]["id"], "p1");
        assert_eq!(bundle["entry"][1]["resource"]["id"], "p2");
        assert_eq!(
            bundle["entry"][2]["resource"]["subject"]["reference"],
            bundle["entry"][0]["fullUrl"]
        );
        // The rest of the line as it was read: only the reference moved.
        assert_eq!(
            bundle["entry"][2]["resource"]["subject"]["display"],
            "p one"
        );
        assert_eq!(bundle["entry"][2]["resource"]["code"]["text"], "高血圧");
        // The same lines make the same bundle, byte for byte (the journal).
        assert_eq!(plan(&files).unwrap().0[0].body, unit.body);
        for entry in [3, 4] {
            assert_eq!(
                bundle["entry"][entry]["resource"]["subject"]["reference"],
                bundle["entry"][1]["fullUrl"]
            );
        }
        let lines: Vec<usize> = match &unit.origin {
            Origin::Grouped { lines, .. } => lines.iter().map(|(_, l)| *l).collect(),
            _ => panic!("grouped"),
        };
        assert_eq!(lines, vec![1, 3, 2, 1, 3]);
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(problems.len(), 4, "{at:?}");
        assert!(problems[0].at.ends_with("Condition.ndjson:5"));
        assert!(problems[0].message.starts_with("not JSON"));
        assert!(problems[1].at.ends_with("Condition.ndjson:6"));
        assert!(problems[1].message.contains("not a FHIR resource"));
        assert!(problems[2].at.ends_with("Condition.ndjson:7"));
        assert!(
            problems[2].message.contains("duplicate field"),
            "{}",
            problems[2].message
        );
        assert!(problems[3].message.contains("Patient/nobody"));
        assert!(problems[3].at.ends_with("Condition.ndjson:4"));
    }

    #[test]
    fn a_line_nested_past_the_json_readers_bound_is_told_too_deep() {
        // Nested in an element the planner reads (elsewhere the line is
        // skipped over, and the hub tells it at the bundle).
        let deep = format!(
            r#"{{"resourceType": "Observation", "subject": {}1{}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let told = read_resource(&deep).err().unwrap();
        assert!(told.contains("more than 64 levels deep"), "{told}");
        assert!(
            read_resource("{\"resourceType\": \"Observation\"")
                .err()
                .unwrap()
                .starts_with("not JSON")
        );
    }

    #[test]
    fn a_bundle_line_is_sent_as_it_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundles.ndjson");
        let bundle = "{\"resourceType\":\"Bundle\", \"type\":\"collection\",\"entry\":[{}]}";
        std::fs::write(&file, format!("  {bundle}\t\r\n\n")).unwrap();
        let (units, problems, _) = plan(std::slice::from_ref(&file)).unwrap();
        assert!(problems.is_empty());
        assert_eq!(units.len(), 1);
        // The line's own text, without the whitespace around it.
        assert_eq!(units[0].body, bundle.as_bytes());
        assert_eq!(units[0].resources, 1);
        assert_eq!(units[0].label(), format!("{}:1", file.display()));
    }

    #[test]
    fn a_json_file_is_sent_as_it_is_when_it_is_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("a.json");
        let text = "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{},{}]}";
        std::fs::write(&bundle, text).unwrap();
        let condition = dir.path().join("b.json");
        std::fs::write(&condition, "{\"resourceType\":\"Condition\"}").unwrap();
        let latin1 = dir.path().join("c.json");
        std::fs::write(&latin1, b"{\"resourceType\":\"Bundle\",\"id\":\"\xe9\"}").unwrap();
        let (units, problems, _) = plan(&[bundle, condition, latin1]).unwrap();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].body, text.as_bytes());
        assert_eq!(units[0].resources, 2);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].at.ends_with("b.json"));
        assert!(
            problems[0]
                .message
                .contains("must hold one Bundle, not Condition")
        );
        assert!(problems[1].at.ends_with("c.json"));
        assert!(problems[1].message.contains("not UTF-8"));
    }

    #[test]
    fn bundles_hold_whole_patients_unless_one_alone_is_too_many() {
        let ids = |spec: &[(&'static str, usize)]| -> Vec<&'static str> {
            spec.iter()
                .flat_map(|(id, n)| std::iter::repeat_n(*id, *n))
                .collect()
        };
        // a and b fit together; c would split: it starts the next bundle.
        assert_eq!(
            whole_patients(&ids(&[("a", 2), ("b", 2), ("c", 2)]), 5),
            vec![0..4, 4..6]
        );
        // d alone is more than a bundle: split, its rest joined by e.
        assert_eq!(
            whole_patients(&ids(&[("a", 1), ("d", 12), ("e", 2)]), 5),
            vec![0..1, 1..6, 6..11, 11..15]
        );
        assert_eq!(whole_patients(&ids(&[("a", 5)]), 5), vec![0..5]);
        assert!(whole_patients(&[], 5).is_empty());
    }
}
