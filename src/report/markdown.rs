//! The Markdown rendering of a report, for notifications and `--output markdown`.

use super::Report;

pub fn render(report: &Report) -> String {
    super::text::render(report, false)
}
