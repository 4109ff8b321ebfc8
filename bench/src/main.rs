//! `renkei-bench`: the benchmark of the patient summary at regional scale.
//!
//! - `generate` loads a synthetic region of N patients with ~R records each
//!   into PostgreSQL (COPY, indexes rebuilt after the load);
//! - `load` runs the summary query against a running hub at several
//!   concurrencies beside the floor (the same data by hand-written SQL) and
//!   appends the numbers to `bench/RESULTS.md`;
//! - `hostile` measures the summary query's latency with and without
//!   clients sending hostile documents (huge literals, 1,000 aliases);
//! - `writes` writes records through `writeRecords` in batches beside a
//!   plain `COPY` of the same rows;
//! - `fhir-import` imports FHIR NDJSON with `renkei import fhir` beside a
//!   plain `COPY` of the rows it wrote.
//!
//! See `bench/README.md`.

mod copy;
mod events;
mod fhir_import;
mod generate;
mod hostile;
mod load;
mod region;
mod report;
mod rng;
mod vocab;
mod writes;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "renkei-bench",
    about = "Benchmark of the renkei patient summary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load a synthetic region into a fresh PostgreSQL database.
    Generate(generate::GenerateArgs),
    /// Measure the summary query on a running hub, and the hand-written-SQL floor.
    Load(Box<load::LoadArgs>),
    /// p50/p99 of normal summary queries with and without hostile clients.
    Hostile(Box<hostile::HostileArgs>),
    /// Records/s through writeRecords beside a COPY of the same rows.
    Writes(Box<writes::WritesArgs>),
    /// Resources/s through `renkei import fhir` beside a COPY of the same rows.
    FhirImport(Box<fhir_import::FhirImportArgs>),
    /// One event to many subscribers of a patient, beside a hand-written fan-out.
    Events(Box<events::EventsArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Generate(args) => generate::run(args).await,
        Command::Load(args) => load::run(*args).await,
        Command::Hostile(args) => hostile::run(*args).await,
        Command::Writes(args) => writes::run(*args).await,
        Command::FhirImport(args) => fhir_import::run(*args).await,
        Command::Events(args) => events::run(*args).await,
    }
}
