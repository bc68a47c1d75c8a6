//! The monthly service report: figures and their definitions (`figures`), charts (`charts`),
//! and three renderings of the same figures — terminal text (`text`), HTML (`html`), and the
//! mail to the supervisors (`mail`). JSON is the figures serialized. The report mailed on the
//! 1st is queued by `workers::report`.

pub mod charts;
pub mod figures;
pub mod html;
pub mod mail;
pub mod text;

use crate::domain::Millis;
use crate::store::{Store, StoreError};
use chrono_tz::Tz;
pub use figures::{Month, MonthFigures, MonthlyReport, Targets};

/// The report of `month` and the month before, in `tz`, as of `now`: two passes of
/// [`Store::month_rows`] (each an indexed scan of that month's rows).
pub async fn monthly(
    store: &Store,
    month: Month,
    tz: Tz,
    targets: &Targets,
    now: Millis,
) -> Result<MonthlyReport, StoreError> {
    let figures = |m: Month| async move {
        let (from, to) = m.bounds(tz);
        let rows = store.month_rows(from, to, now).await?;
        Ok::<_, StoreError>(MonthFigures::build(m, &rows, tz, targets))
    };
    Ok(MonthlyReport {
        month: figures(month).await?,
        previous: figures(month.previous()).await?,
        targets: *targets,
    })
}
