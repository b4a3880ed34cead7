//! What a tool prints: a [`Report`] (JSON fields and human lines), tables,
//! times.

use serde_json::{Map, Value, json};

/// What a tool prints on success: fields for `--json` (beside `"ok": true`)
/// and text for people. A tool that streams (see [`run_streaming`]) puts here
/// what follows the streamed part: the fields after its streamed arrays, or
/// the text after its streamed lines.
#[derive(Debug, Default)]
pub struct Report {
    pub json: Map<String, Value>,
    pub human: String,
    /// Exit code of a successful run (non-zero only for answers that are
    /// exit codes by design, like a login decision).
    pub exit: u8,
    /// For output shown once and never again (a new secret, new backup
    /// codes): what state the change left and how to recover, said on
    /// stderr with exit 10 if the output cannot be written (a full disk, a
    /// closed pipe). Without it a closed pipe ends the run quietly and any
    /// other write error is exit 10.
    pub undelivered: Option<String>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.json.insert(key.to_string(), value.into());
        self
    }

    /// One line of text. Control, bidi and invisible characters in it (a
    /// stored value a database writer planted) are shown as escapes.
    pub fn line(mut self, text: impl AsRef<str>) -> Report {
        self.human
            .push_str(&crate::text::escape_for_terminal(text.as_ref()));
        self.human.push('\n');
        self
    }

    /// See [`Report::undelivered`].
    pub fn if_undelivered(mut self, recovery: impl Into<String>) -> Report {
        self.undelivered = Some(recovery.into());
        self
    }

    pub fn exit(mut self, code: u8) -> Report {
        self.exit = code;
        self
    }

    /// Lines of text (a table): escaped as [`Report::line`], newlines kept.
    pub fn text(mut self, text: impl AsRef<str>) -> Report {
        self.human
            .push_str(&crate::text::escape_block(text.as_ref()));
        self
    }
}

/// A plain table for people: columns and a rule under the header, no other
/// lines, so it stays narrow and greppable.
pub fn table(header: &[&str]) -> comfy_table::Table {
    use comfy_table::{ContentLineStyle, LineStyle, TableStyle};
    let style = TableStyle::new()
        .header_lines(ContentLineStyle::none().junction(' '))
        .header_separator(LineStyle::none().fill('-').junction(' '))
        .content_lines(ContentLineStyle::none().junction(' '));
    let mut table = comfy_table::Table::new();
    table.load_style(style);
    // No header (`-q`): no header line and no separator either.
    if !header.is_empty() {
        table.set_header(header.to_vec());
    }
    table
}

/// Append a table to a report, one trimmed line at a time.
pub fn push_table(mut report: Report, table: &mut comfy_table::Table) -> Report {
    for col in table.column_iter_mut() {
        col.set_padding((0, 1));
    }
    for line in table.lines() {
        report = report.line(line.trim_end());
    }
    report
}

/// `2026-11-28 09:30`: minutes are enough in a table, and it stays narrow.
pub fn short_time(t: Option<i64>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| {
            crate::clock::rfc3339(t)
                .replace('T', " ")
                .chars()
                .take(16)
                .collect()
        },
    )
}

/// An exemption as `mb-2fa-list` and `mb-2fa-policy` print it in JSON.
pub fn exemption_json(e: &crate::model::Exemption) -> Value {
    json!({
        "email": e.email,
        "kind": e.kind.as_str(),
        "reason": e.reason,
        "created_at": json_time(Some(e.created_at)),
        "created_by": e.created_by,
        "used": e.used_at.is_some(),
        "used_at": json_time(e.used_at),
        "sealed_at": json_time(e.sealed_at),
    })
}

/// Format an optional Unix time for people.
pub fn human_time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_string(), crate::clock::rfc3339)
}

/// Format an optional Unix time for JSON: RFC 3339 or null.
pub fn json_time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| Value::String(crate::clock::rfc3339(t)))
}
