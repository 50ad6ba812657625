//! Rendering for humans (tables, messages) and scripts (JSON).
//!
//! Everything shown to a person may come from a store or a file podium does not control (run
//! names, metric keys, server messages, paths): control characters are escaped, so a stored
//! `ESC[2J` shows as `\x1b[2J` instead of clearing the terminal, and a line break inside one
//! value (a tag value, a path, a message) shows as `\n` instead of breaking a table row or a
//! log line into two; table cells are cut to [`MAX_CELL_CHARS`] characters, so a huge name
//! cannot make rendering slow or the table unreadable. JSON output is exact (serde escapes
//! control characters itself).

use std::borrow::Cow;
use std::fmt;

use clap::ValueEnum;
use comfy_table::{Cell, ContentArrangement, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Tables for humans.
    #[default]
    Table,
    /// JSON on stdout for scripts.
    Json,
}

/// Characters of one table cell shown; the rest is replaced by a note saying how much.
pub const MAX_CELL_CHARS: usize = 256;

/// Prints a value as pretty JSON followed by a newline.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints one line of text that may hold store or config text (run names, metric keys,
/// error messages, paths), control characters and line breaks escaped ([`escape_line`]).
pub fn print_line(text: &str) {
    println!("{}", escape_line(text));
}

/// [`print_line`] on stderr.
pub fn eprint_line(text: &str) {
    eprintln!("{}", escape_line(text));
}

/// `text` as one line: [`escape_controls`], and line breaks written `\n` too. For a value
/// shown within a line (a path, a tag value, a message), where a line break from a store or a
/// file name would forge a line of output.
///
/// ```ignore
/// assert_eq!(escape_line("a\nb\u{1b}"), "a\\nb\\x1b");
/// ```
pub fn escape_line(text: &str) -> Cow<'_, str> {
    if !text.contains('\n') {
        return escape_controls(text);
    }
    Cow::Owned(escape_controls(text).replace('\n', "\\n"))
}

/// `text` with every control character except the line break written as an escape (`\t`,
/// `\r`, `\x1b`, `\u{9b}`, …), and the Unicode bidirectional overrides too (they reorder
/// what a terminal shows). Text without any is returned as is.
///
/// ```ignore
/// assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\x1b[2Jb");
/// ```
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A writer that escapes control characters ([`escape_controls`]) in what passes through it,
/// for the log lines on stderr. Each write is one log event, as the log formatter writes them:
/// its final line break ends the line, and any line break before it (a path or a message
/// holding one) is escaped, so one event is always one line.
#[derive(Debug)]
pub struct EscapingWriter<W>(pub W);

impl<W: std::io::Write> std::io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (event, end) = match text.strip_suffix('\n') {
            Some(event) => (event, "\n"),
            None => (text.as_ref(), ""),
        };
        self.0.write_all(escape_line(event).as_bytes())?;
        self.0.write_all(end.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A table cell's text: control characters and line breaks escaped ([`escape_line`]: a tag
/// value holding a line break stays in its row), cut to [`MAX_CELL_CHARS`] characters.
pub fn cell_text(text: &str) -> String {
    let (shown, left_out) = match text.char_indices().nth(MAX_CELL_CHARS) {
        None => (text, 0),
        Some((cut, _)) => (&text[..cut], text.len() - cut),
    };
    let mut out = escape_line(shown).into_owned();
    if left_out > 0 {
        out.push_str(&format!("… ({left_out} more bytes)"));
    }
    out
}

/// A table with podium's look whose cells are made safe to show by [`cell_text`].
#[derive(Debug)]
pub struct Table(comfy_table::Table);

impl Table {
    /// Appends a row.
    pub fn add_row<I, S>(&mut self, row: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cell>,
    {
        self.0.add_row(safe_cells(row));
        self
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

fn safe_cells<I, S>(row: I) -> Vec<Cell>
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    row.into_iter()
        .map(|cell| Cell::new(cell_text(&cell.into().content())))
        .collect()
}

/// A table with podium's look and the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    let mut table = comfy_table::Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(safe_cells(header));
    Table(table)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_line_breaks_kept() {
        assert_eq!(escape_controls("plain"), Cow::Borrowed("plain"));
        assert_eq!(escape_controls("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape_controls("x\ty\rz\n"), "x\\ty\\rz\n");
        assert_eq!(escape_controls("\u{9b}31m\u{7f}"), "\\u{9b}31m\\x7f");
        assert_eq!(escape_controls("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(escape_controls("café ✓"), "café ✓");
    }

    #[test]
    fn tables_never_show_raw_escapes() {
        let mut table = table(["name\u{1b}]0;title\u{7}", "value"]);
        table.add_row(["run\u{1b}[2J", "1"]);
        let shown = table.to_string();
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(!shown.contains('\u{7}'), "{shown}");
        assert!(shown.contains("run\\x1b[2J"), "{shown}");
    }

    #[test]
    fn line_breaks_inside_values_stay_on_their_line() {
        assert_eq!(escape_line("plain"), Cow::Borrowed("plain"));
        assert_eq!(escape_line("a\nb\u{1b}[2J"), "a\\nb\\x1b[2J");
        let mut table = table(["tag", "value"]);
        table.add_row(["code.note", "first line\nsecond line"]);
        let shown = table.to_string();
        assert!(shown.contains("first line\\nsecond line"), "{shown}");
        // Header, its rule and one row between the borders: a broken row would add a line.
        assert_eq!(shown.lines().count(), 5, "{shown}");
    }

    #[test]
    fn the_log_writer_escapes_what_it_passes_on_one_event_one_line() {
        use std::io::Write;
        let mut writer = EscapingWriter(Vec::new());
        writer
            .write_all("WARN run evil\u{1b}[2J\n".as_bytes())
            .unwrap();
        // A line break inside an event (a path holding one) would forge a log line.
        writer
            .write_all("WARN reading /tmp/evil\nERROR forged: line\n".as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(writer.0).unwrap(),
            "WARN run evil\\x1b[2J\nWARN reading /tmp/evil\\nERROR forged: line\n"
        );
    }

    #[test]
    fn huge_cells_are_cut_and_render_fast() {
        let huge = "n".repeat(50 << 20);
        let started = std::time::Instant::now();
        let mut table = table(["name"]);
        table.add_row([huge.as_str()]);
        let shown = table.to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(shown.len() < 4096, "{}", shown.len());
        assert!(shown.contains("more bytes)"), "{shown}");
        assert_eq!(
            cell_text(&"é".repeat(300))
                .chars()
                .filter(|c| *c == 'é')
                .count(),
            256
        );
    }
}
