//! Rendering for humans (tables, detail lists, messages) and scripts (JSON).
//!
//! Everything shown to a person may come from a store or a file podium does not control (run
//! names, metric keys, server messages, paths): control characters are escaped, so a stored
//! `ESC[2J` shows as `\x1b[2J` instead of clearing the terminal, and a line break inside one
//! value (a tag value, a path, a message) shows as `\n` instead of breaking a table row or a
//! log line into two; table cells are cut to [`MAX_CELL_CHARS`] characters, so a huge name
//! cannot make rendering slow or the table unreadable. JSON output is exact (serde escapes
//! control characters itself).
//!
//! Tables and detail lists are laid out to the output width ([`crate::layout`]):
//! wrapped at spaces, never inside a word; a table whose columns cannot fit even so is shown
//! as one block per row instead. Run ids are shortened to `text::SHORT_ID_CHARS` characters
//! ([`short_id`]) unless `--wide`.

use std::borrow::Cow;
use std::fmt;

use clap::ValueEnum;
use comfy_table::{Cell, ContentArrangement, presets::UTF8_FULL_CONDENSED};
use podium_project::text;
use serde::Serialize;

use crate::layout::{self, display_width, widest_line, widest_word, wrap_indented};

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

/// A run id (or another long hex id) as a person reads it: its first `text::SHORT_ID_CHARS`
/// characters, unless `--wide` asked for whole ids. Anything that is not a hex string longer
/// than that is shown whole.
pub fn short_id(id: &str) -> String {
    shorten_id(id, layout::current().width.is_some())
}

fn shorten_id(id: &str, shorten: bool) -> String {
    if shorten {
        text::short_id(id).into_owned()
    } else {
        id.to_string()
    }
}

/// A number with `places` decimals; NaN and the infinities spelled as MLflow spells them.
pub fn decimal(value: f64, places: usize) -> String {
    if value.is_finite() {
        format!("{value:.places$}")
    } else {
        podium_project::metric_text(value)
    }
}

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

/// `text` as one line: every control character, line breaks included, and the Unicode
/// bidirectional controls (they reorder what a terminal shows) written as escapes (`\n`, `\t`,
/// `\x1b`, `\u{202e}`, …). For a value shown within a line (a path, a tag value, a message),
/// where a line break from a store or a file name would forge a line of output. The report
/// page's rule too (`text::visible`).
pub fn escape_line(text: &str) -> Cow<'_, str> {
    text::visible(text)
}

/// Prints a paragraph wrapped at spaces to the output width, its continuation lines indented
/// by two: for the notes and explanations under a table.
pub fn print_wrapped(text: &str) {
    println!("{}", paragraph(text));
}

/// [`print_wrapped`]'s text, for a caller that prints it elsewhere.
pub fn paragraph(text: &str) -> String {
    wrapped(text, layout::current().width)
}

fn wrapped(text: &str, width: Option<usize>) -> String {
    let text = escape_line(text);
    let Some(width) = width else {
        return text.into_owned();
    };
    wrap_indented(&text, width, width.saturating_sub(2).max(1)).join("\n  ")
}

/// A shell command a person may copy, wrapped to the output width at spaces with `\` line
/// continuations (so the copied lines still run as one command); its leading spaces start
/// every line.
pub fn command_text(command: &str) -> String {
    command_lines(command, layout::current().width)
}

fn command_lines(command: &str, width: Option<usize>) -> String {
    let command = escape_line(command);
    let Some(width) = width else {
        return command.into_owned();
    };
    let words = command.trim_start_matches(' ');
    let lead = " ".repeat(command.len() - words.len());
    // Room for " \" after each continued line and four more spaces before the next.
    let first = width.saturating_sub(lead.len() + 2).max(1);
    let lines = wrap_indented(words, first, first.saturating_sub(4).max(1));
    format!("{lead}{}", lines.join(&format!(" \\\n{lead}    ")))
}

/// A writer that escapes control characters ([`escape_line`]) in what passes through it,
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

/// A table with podium's look whose cells are made safe to show by [`cell_text`], laid out to
/// the output width when displayed: each column as wide as its content when they all fit, else
/// wrapped at spaces (headers too) with every column at least as wide as its widest word; when
/// even that does not fit, each row is shown as a block of `header  value` lines instead.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Appends a row.
    pub fn add_row<I, S>(&mut self, row: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cell>,
    {
        self.rows.push(safe_cells(row));
        self
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table laid out for `width` columns (`None`: as wide as its content).
    pub fn render(&self, width: Option<usize>) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let all_rows = || std::iter::once(&self.header).chain(&self.rows);
        let widest: Vec<usize> = (0..columns)
            .map(|column| {
                all_rows()
                    .map(|row| widest_line(cell(row, column)))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let widths = match width {
            None => Some(widest),
            Some(width) => {
                let narrowest: Vec<usize> = (0..columns)
                    .map(|column| {
                        all_rows()
                            .map(|row| widest_word(cell(row, column)))
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                // `│ a ┆ b │`: a space either side of each cell and a rule between and around.
                let borders = 3 * columns + 1;
                layout::column_widths(&narrowest, &widest, width.saturating_sub(borders))
            }
        };
        let Some(widths) = widths else {
            return self.blocks(width.unwrap_or(usize::MAX));
        };
        let laid_out = |row: &[String]| -> Vec<Cell> {
            (0..columns)
                .map(|column| {
                    let text = cell(row, column);
                    if widest_line(text) <= widths[column] {
                        return Cell::new(text);
                    }
                    Cell::new(wrap_indented(text, widths[column], widths[column]).join("\n"))
                })
                .collect()
        };
        let mut table = comfy_table::Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(laid_out(&self.header));
        for row in &self.rows {
            table.add_row(laid_out(row));
        }
        table.to_string()
    }

    /// Each row as a block: its first cell, then `header  value` for the others.
    fn blocks(&self, width: usize) -> String {
        let mut blocks = Vec::new();
        for row in &self.rows {
            let title = row.first().map(String::as_str).unwrap_or_default();
            let mut block = wrap_indented(title, width, width).join("\n");
            let mut details = Details::indented(2);
            for (column, text) in row.iter().enumerate().skip(1) {
                let label = self.header.get(column).map(String::as_str).unwrap_or("");
                details.items.push((label.to_string(), text.clone()));
            }
            if !details.items.is_empty() {
                block.push('\n');
                block.push_str(&details.render(Some(width)));
            }
            blocks.push(block);
        }
        blocks.join("\n\n")
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(layout::current().width))
    }
}

fn safe_cells<I, S>(row: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    row.into_iter()
        .map(|cell| cell_text(&cell.into().content()))
        .collect()
}

/// The text of a row's cell (an empty one past its end).
fn cell(row: &[String], column: usize) -> &str {
    row.get(column).map_or("", String::as_str)
}

/// A table with podium's look and the given header.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    Table {
        header: safe_cells(header),
        rows: Vec::new(),
    }
}

/// A detail list: one `label  text` entry per line, labels in a column, each text wrapped at
/// spaces beside its label — for values too long for a table cell (lists of keys,
/// parameters, explanations). Labels and texts are made safe by [`cell_text`].
#[derive(Debug, Default)]
pub struct Details {
    items: Vec<(String, String)>,
    indent: usize,
}

/// Text narrower than this beside a label goes under the label instead.
const MIN_DETAIL_TEXT: usize = 24;

impl Details {
    /// An empty list whose lines start `indent` spaces in.
    pub fn indented(indent: usize) -> Details {
        Details {
            items: Vec::new(),
            indent,
        }
    }

    /// Appends an entry.
    pub fn add(&mut self, label: &str, text: &str) -> &mut Self {
        self.items.push((cell_text(label), cell_text(text)));
        self
    }

    /// Whether the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The list laid out for `width` columns (`None`: texts unwrapped).
    pub fn render(&self, width: Option<usize>) -> String {
        let pad = " ".repeat(self.indent);
        let width = width.unwrap_or(usize::MAX / 2);
        let room = width.saturating_sub(self.indent);
        // Labels get at most a third of the room; a longer one stands on its own line.
        let label_width = self
            .items
            .iter()
            .map(|(label, _)| display_width(label))
            .filter(|label| *label <= room / 3)
            .max()
            .unwrap_or(0);
        let beside = room.saturating_sub(label_width + 2);
        let mut lines = Vec::new();
        for (label, text) in &self.items {
            let label_fits = display_width(label) <= label_width;
            if label_fits && beside >= MIN_DETAIL_TEXT {
                let gap = " ".repeat(label_width - display_width(label) + 2);
                let hang = " ".repeat(label_width + 2);
                for (index, line) in wrap_indented(text, beside, beside).iter().enumerate() {
                    let line = line.trim_end();
                    if index == 0 {
                        lines.push(format!("{pad}{label}{gap}{line}").trim_end().to_string());
                    } else {
                        lines.push(format!("{pad}{hang}{line}"));
                    }
                }
            } else {
                lines.push(format!("{pad}{label}"));
                let under = room.saturating_sub(2).max(1);
                for line in wrap_indented(text, under, under) {
                    if !line.is_empty() {
                        lines.push(format!("{pad}  {line}"));
                    }
                }
            }
        }
        lines.join("\n")
    }
}

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(layout::current().width))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

    /// Every word of the rendered text: split at spaces and the table's rules.
    fn words_of(text: &str) -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || "│┆─┌┐└┘├┤┬┴┼╞╪╡═".contains(c))
            .filter(|word| !word.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn assert_fits(text: &str, width: usize) {
        for line in text.lines() {
            assert!(
                display_width(line) <= width,
                "{} > {width}: {line:?}\n{text}",
                display_width(line)
            );
        }
    }

    #[test]
    fn tables_fit_the_width_without_breaking_a_word() {
        let mut table = table([
            "backbone",
            "champion trial",
            "groups (eligible/considered)",
            "why",
        ]);
        table.add_row([
            "deberta-v3-small",
            "f5549ad2e5de",
            "1 of 1",
            "a long explanation of why this row is what it is, in plain words",
        ]);
        table.add_row(["distilbert-base-uncased", "dec1931ae037", "2 of 3", "short"]);
        for width in [100, 80] {
            let shown = table.render(Some(width));
            assert_fits(&shown, width);
            for word in [
                "deberta-v3-small",
                "distilbert-base-uncased",
                "(eligible/considered)",
            ] {
                assert!(
                    words_of(&shown).contains(&word.to_string()),
                    "{word}:\n{shown}"
                );
            }
            assert!(shown.starts_with('┌'), "a table at {width}:\n{shown}");
        }
        // As wide as the content: one line per row.
        let wide = table.render(None);
        assert_eq!(wide.lines().count(), 6, "{wide}");
        assert!(wide.contains("groups (eligible/considered)"), "{wide}");
    }

    #[test]
    fn a_table_too_wide_for_its_words_becomes_blocks() {
        let mut table = table(["backbone", "champion trial", "refit run"]);
        table.add_row([
            "distilbert-base-uncased",
            "dec1931ae03742f482c98234b68daf11",
            "-",
        ]);
        table.add_row(["deberta-v3-small", "f5549ad2e5de4fbe9241e4c1e67d2bd6", "x"]);
        let shown = table.render(Some(40));
        assert_fits(&shown, 40);
        // A label wider than a third of the line stands on its own, its text under it.
        assert_eq!(
            shown,
            "distilbert-base-uncased\n  champion trial\n    dec1931ae03742f482c98234b68daf11\n  \
             refit run  -\n\ndeberta-v3-small\n  champion trial\n    \
             f5549ad2e5de4fbe9241e4c1e67d2bd6\n  refit run  x"
        );
        let roomy = table.render(Some(60));
        assert_fits(&roomy, 60);
        assert!(
            roomy.contains("  champion trial  dec1931ae03742f482c98234b68daf11"),
            "{roomy}"
        );
    }

    #[test]
    fn ids_are_shortened_unless_wide() {
        let id = "dec1931ae03742f482c98234b68daf11";
        assert_eq!(shorten_id(id, true), "dec1931ae037");
        assert_eq!(shorten_id(id, false), id);
        // Not a long hex id: whole.
        assert_eq!(shorten_id("run-1", true), "run-1");
        assert_eq!(
            shorten_id("distilbert-0-trial-1", true),
            "distilbert-0-trial-1"
        );
        assert_eq!(shorten_id("dec1931ae037", true), "dec1931ae037");
    }

    #[test]
    fn details_put_long_labels_on_their_own_line() {
        let mut details = Details::indented(2);
        details.add("train.yaml", "training, logging, distributed");
        details.add(
            "experiment/a_very_long_experiment_file_name.yaml",
            "model_config, env_config, naming, stages.smoke, stages.training",
        );
        let shown = details.render(Some(50));
        assert_fits(&shown, 50);
        assert_eq!(
            shown,
            "  train.yaml  training, logging, distributed\n  \
             experiment/a_very_long_experiment_file_name.yaml\n    model_config, env_config, \
             naming,\n    stages.smoke, stages.training"
        );
    }

    #[test]
    fn paragraphs_and_commands_wrap_at_spaces() {
        assert_eq!(
            wrapped(
                "composite = 0.700 × metric score + 0.300 × latency score",
                Some(30)
            ),
            "composite = 0.700 × metric\n  score + 0.300 × latency\n  score"
        );
        assert_eq!(wrapped("a\u{1b}b", Some(30)), "a\\x1bb");
        assert_eq!(
            command_lines(
                "  mlflow ui --backend-store-uri sqlite:////a/long/path/mlflow.db",
                Some(40)
            ),
            "  mlflow ui --backend-store-uri \\\n      sqlite:////a/long/path/mlflow.db"
        );
        assert_eq!(command_lines("podium run", None), "podium run");
    }

    proptest::proptest! {
        #[test]
        fn any_table_fits_and_keeps_every_word(
            cells in proptest::collection::vec(
                proptest::collection::vec("[a-z0-9._/()-]{1,10}( [a-z0-9._/()-]{1,10}){0,6}", 3),
                1..5,
            ),
            width in 30usize..130,
        ) {
            let mut table = table(["backbone", "a longer header", "why"]);
            for row in &cells {
                table.add_row(row.iter().map(String::as_str));
            }
            let shown = table.render(Some(width));
            for line in shown.lines() {
                proptest::prop_assert!(display_width(line) <= width, "{line:?}\n{shown}");
            }
            let mut expected: Vec<String> = cells.iter().flatten().flat_map(|c| words_of(c)).collect();
            let mut found = words_of(&shown);
            // The header's words are shown too (in the table, or as labels of the blocks).
            for word in ["backbone", "a", "longer", "header", "why"] {
                if let Some(at) = found.iter().position(|w| w == word) {
                    found.remove(at);
                }
            }
            expected.sort();
            found.retain(|w| expected.binary_search(w).is_ok());
            found.sort();
            proptest::prop_assert_eq!(found.len() >= expected.len(), true, "{:?}\n{}", expected, shown);
            for word in &expected {
                proptest::prop_assert!(found.contains(word), "{word} split:\n{shown}");
            }
        }
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
