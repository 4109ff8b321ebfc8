//! The report every measuring command writes: a heading with the machine,
//! its load and the command line, the command's own lines and table, its
//! failures; saved to `--out DIR`, printed, and failing the run when
//! anything failed.

use std::path::Path;

use anyhow::{Context, bail};
use chrono::Utc;
use sea_orm::sqlx::{self, postgres::PgPool};

use crate::load::{command_line, cpu_model, shell_out};

/// `### <command> — <label> — <time>` and the machine, its load average at
/// the start (`load_before`), PostgreSQL's version and the command line
/// (secrets hidden), as Markdown lines.
pub(crate) async fn heading(
    command: &str,
    label: &str,
    load_before: &str,
    pool: &PgPool,
) -> String {
    format!(
        "### {command} — {label} — {}\n\n- machine: {} ({} CPUs), `{}`\n- load average at start: {}\n- PostgreSQL: {}\n- command: `{}`\n",
        Utc::now().to_rfc3339(),
        cpu_model(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        shell_out("uname", &["-srm"]).trim(),
        load_before.trim(),
        sqlx::query_scalar::<_, String>("SHOW server_version")
            .fetch_one(pool)
            .await
            .unwrap_or_default(),
        command_line(),
    )
}

/// Adds the failures to `report`, writes it to `out/<file>`, prints it, and
/// fails when there were failures.
pub(crate) fn finish(
    out: &Path,
    file: &str,
    mut report: String,
    failed: &[String],
) -> anyhow::Result<()> {
    if !failed.is_empty() {
        report.push_str("\n**Failures:**\n\n");
        for f in failed {
            report.push_str(&format!("- {f}\n"));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(file);
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("{report}");
    eprintln!("written to {}", path.display());
    if !failed.is_empty() {
        bail!("{} failures", failed.len());
    }
    Ok(())
}
