//! `vigil metrics rebuild [--from --to]`: recompute the metrics rollups of
//! whole hours from the raw rows (`vigil_metrics_rules::rebuild`), in one
//! write transaction. For a database migrated to 0012 with history, after
//! restoring raw rows, or to check the incremental rollups.

use anyhow::{Context, Result, bail};
use vigil_db::Target;
use vigil_db::sql::{LibsqlSql, begin_immediate, finish};

/// `--from`/`--to` as RFC 3339 times or `YYYY-MM-DD` (UTC midnight).
fn time(flag: &str, value: Option<&str>) -> Result<Option<i64>> {
    let Some(v) = value else { return Ok(None) };
    let parsed =
        vigil_metrics_rules::window::parse_date(v).or_else(|| vigil_core::time::parse_rfc3339(v));
    match parsed {
        Some(ms) => Ok(Some(ms)),
        None => bail!("--{flag} {v:?} is neither an RFC 3339 time nor a date (YYYY-MM-DD)"),
    }
}

pub async fn rebuild(target: &Target, from: Option<&str>, to: Option<&str>) -> Result<()> {
    let (from, to) = (time("from", from)?, time("to", to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        bail!("--from must be before --to");
    }
    let conn = target
        .connect()
        .await
        .with_context(|| format!("{target:?}"))?;
    begin_immediate(&conn).await?;
    let written = vigil_metrics_rules::rebuild::rebuild(&LibsqlSql(&conn), from, to).await;
    let done = finish(&conn, written).await?;
    let span = |ms: Option<i64>, open: &str| ms.map_or(open.to_string(), vigil_core::time::rfc3339);
    println!(
        "{target:?}: rebuilt the rollups from {} to {}: {} event rows, {} alert rows, {} decision rows, {} histogram rows",
        span(done.from, "the start"),
        span(done.to, "now"),
        done.events,
        done.alerts,
        done.decisions,
        done.durations
    );
    Ok(())
}
