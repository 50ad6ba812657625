//! Text from stores and configs made safe to show, and numbers written for people.
//!
//! The template engine escapes HTML (`<`, `>`, `&`, quotes) in every value it prints; what it
//! cannot know is that a run name may hold control characters (an `ESC[2J` from a terminal
//! session) or Unicode bidirectional controls that make a page show text in another order than
//! it holds (`evil\u{202e}txt.exe`). [`visible`] writes both as escapes before the template
//! sees them, so the page shows exactly what the store holds.

use std::borrow::Cow;

/// `text` with every control character (line breaks included) and every Unicode bidirectional
/// control written as a visible escape (`\x1b`, `\u{202e}`); other text unchanged. For a value
/// shown within a line (a cell, a label, a path), where a line break would forge a line.
///
/// ```
/// use podium_report::text::visible;
/// assert_eq!(visible("deberta"), "deberta");
/// assert_eq!(visible("a\u{1b}[2Jb"), "a\\x1b[2Jb");
/// assert_eq!(visible("model\u{202e}lmth.exe"), "model\\u{202e}lmth.exe");
/// assert_eq!(visible("a\nb"), "a\\nb");
/// ```
pub fn visible(text: &str) -> Cow<'_, str> {
    escaped(text, hides_itself)
}

/// [`visible`] keeping line breaks: for a message of several lines shown as such (a terminal
/// error, a paragraph), where only the other controls could rewrite what the reader sees.
///
/// ```
/// use podium_report::text::visible_lines;
/// assert_eq!(visible_lines("a\nb\u{1b}"), "a\nb\\x1b");
/// ```
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    escaped(text, |c| c != '\n' && hides_itself(c))
}

fn escaped(text: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if !escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the bidirectional marks, embeddings, overrides and isolates.
fn hides_itself(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// How many characters of a long hex id (a run id) a person reads: as many as MLflow's UI needs
/// to find a run.
pub const SHORT_ID_CHARS: usize = 12;

/// A run id (or another long hex id) as a person reads it: its first [`SHORT_ID_CHARS`]
/// characters. Anything that is not a hex string longer than that is shown whole.
///
/// ```
/// use podium_report::text::short_id;
/// assert_eq!(short_id("0123456789abcdef0123456789abcdef"), "0123456789ab");
/// assert_eq!(short_id("not-a-hex-run-id-at-all"), "not-a-hex-run-id-at-all");
/// ```
pub fn short_id(id: &str) -> Cow<'_, str> {
    let long_hex = id.len() > SHORT_ID_CHARS && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    if long_hex {
        Cow::Borrowed(&id[..SHORT_ID_CHARS])
    } else {
        Cow::Borrowed(id)
    }
}

/// A metric value: four decimals (an F1 score), or scientific notation when that shows
/// nothing of it.
pub fn metric(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value != 0.0 && (value.abs() < 1e-3 || value.abs() >= 1e6) {
        format!("{value:.3e}")
    } else {
        format!("{value:.4}")
    }
}

/// Milliseconds with three significant digits or more (`0.412`, `12.3`, `154`).
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// A score in [0, 1] or a weight: three decimals.
pub fn score(value: f64) -> String {
    format!("{value:.3}")
}

/// A signed difference with the unit after it (`+0.0123`, `−1.52 ms`).
pub fn signed(value: f64, formatted: impl Fn(f64) -> String, unit: &str) -> String {
    let sign = if value < 0.0 { "\u{2212}" } else { "+" };
    format!("{sign}{}{unit}", formatted(value.abs()))
}

/// Unix milliseconds as UTC time, RFC 3339 to the second: the format of the pipeline's
/// `benchmark.json` timestamps, written by the one function that writes them.
pub use podium_bench::cache::utc_timestamp;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_line_breaks_kept_where_asked() {
        assert!(matches!(visible_lines("plain"), Cow::Borrowed("plain")));
        assert_eq!(visible_lines("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(visible_lines("x\ty\rz\n"), "x\\ty\\rz\n");
        assert_eq!(visible("x\ty\rz\n"), "x\\ty\\rz\\n");
        assert_eq!(visible_lines("\u{9b}31m\u{7f}"), "\\u{9b}31m\\x7f");
        assert_eq!(visible_lines("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(visible_lines("café ✓"), "café ✓");
    }

    #[test]
    fn hostile_text_is_shown_as_it_is_held() {
        assert_eq!(
            visible("<script>alert(1)</script>"),
            "<script>alert(1)</script>"
        );
        assert_eq!(visible("tab\there\nnew"), "tab\\there\\nnew");
        assert_eq!(visible("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(
            visible("a\u{2066}b\u{2069}\u{200f}"),
            "a\\u{2066}b\\u{2069}\\u{200f}"
        );
        assert!(matches!(visible("plain ü"), Cow::Borrowed(_)));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(metric(0.86), "0.8600");
        assert_eq!(metric(0.00001234), "1.234e-5");
        assert_eq!(ms(0.41234), "0.412");
        assert_eq!(ms(12.345), "12.3");
        assert_eq!(ms(154.2), "154");
        assert_eq!(signed(-1.5, ms, " ms"), "\u{2212}1.50 ms");
        assert_eq!(signed(0.01, metric, ""), "+0.0100");
        assert_eq!(short_id("0123456789abcdef0123"), "0123456789ab");
        assert_eq!(short_id("r1"), "r1");
    }
}
