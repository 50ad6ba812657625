//! Laying text out for a person: how wide the output is, paragraphs wrapped at spaces (a word —
//! a backbone name, a hash, a path — is never broken), and how wide each table column gets.
//!
//! The width is decided once per process ([`init`]): `COLUMNS` when it is set to a number,
//! else the terminal's width when stdout is a terminal, else [`DEFAULT_WIDTH`]; `--wide` lifts
//! the limit (tables as wide as their content, run ids whole). Everything here measures display
//! columns (`unicode-width`), not bytes or chars, so CJK and emoji count double as a terminal
//! draws them.
//!
//! ```ignore
//! assert_eq!(wrap_indented("one two three", 8, 8), ["one two", "three"]);
//! // Too long for its line: alone on it, whole.
//! assert_eq!(wrap_indented("deberta-v3-small", 5, 5), ["deberta-v3-small"]);
//! ```

use std::sync::OnceLock;

use unicode_width::UnicodeWidthStr;

/// The width when stdout is not a terminal and `COLUMNS` is not set.
pub const DEFAULT_WIDTH: usize = 100;
/// The narrowest width podium lays out for (a smaller `COLUMNS` is raised to it).
pub const MIN_WIDTH: usize = 20;

/// How output is laid out in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Columns available; `None` with `--wide`.
    pub width: Option<usize>,
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

/// Decides the layout for this process (first call wins): `wide` from `--wide`, the width from
/// `COLUMNS` or the terminal.
pub fn init(wide: bool) {
    let terminal = terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0.into());
    let columns = std::env::var("COLUMNS").ok();
    let layout = Layout {
        width: (!wide).then(|| output_width(columns.as_deref(), terminal)),
    };
    let _ = LAYOUT.set(layout);
}

/// The layout of this process ([`DEFAULT_WIDTH`] columns when [`init`] was not called).
pub fn current() -> Layout {
    LAYOUT.get().copied().unwrap_or(Layout {
        width: Some(DEFAULT_WIDTH),
    })
}

/// The width rule: `COLUMNS` (a positive number) wins, else the terminal's width, else
/// [`DEFAULT_WIDTH`]; never below [`MIN_WIDTH`].
pub fn output_width(columns: Option<&str>, terminal: Option<usize>) -> usize {
    let from_env = columns
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|width| *width > 0);
    from_env
        .or(terminal.filter(|width| *width > 0))
        .unwrap_or(DEFAULT_WIDTH)
        .max(MIN_WIDTH)
}

/// Display columns of `text` (one line).
pub fn display_width(text: &str) -> usize {
    // Printable ASCII is one column a byte (control characters are escaped before layout).
    if text.is_ascii() {
        text.len()
    } else {
        UnicodeWidthStr::width(text)
    }
}

/// The widest word (run of non-spaces) of `text`, over all its lines.
pub fn widest_word(text: &str) -> usize {
    text.lines()
        .flat_map(|line| line.split(' '))
        .map(display_width)
        .max()
        .unwrap_or(0)
}

/// The widest line of `text`.
pub fn widest_line(text: &str) -> usize {
    text.lines().map(display_width).max().unwrap_or(0)
}

/// `text` wrapped at spaces, its first line `first` columns wide and the others `rest` (the
/// caller puts its indent or label before them): each line of it is filled greedily with whole
/// words; a word wider than its line gets a line of its own, whole. Line breaks in `text` are
/// kept; an empty text is one empty line.
pub fn wrap_indented(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let room = |out: &Vec<String>| if out.is_empty() { first } else { rest };
        if display_width(line) <= room(&out) {
            out.push(line.to_string());
            continue;
        }
        let mut current = String::new();
        let mut current_width = 0;
        for word in line.split(' ').filter(|word| !word.is_empty()) {
            let word_width = display_width(word);
            if current.is_empty() {
                current.push_str(word);
                current_width = word_width;
            } else if current_width + 1 + word_width <= room(&out) {
                current.push(' ');
                current.push_str(word);
                current_width += 1 + word_width;
            } else {
                out.push(std::mem::take(&mut current));
                current.push_str(word);
                current_width = word_width;
            }
        }
        out.push(current);
    }
    out
}

/// Column widths (content only, no padding or borders) for cells whose columns want
/// `widest` (their widest line) and need at least `narrowest` (their widest word), within
/// `available` columns: every column as wide as it wants when they all fit; else each at its
/// narrowest plus a share of what is left, the columns that want the most more served first;
/// `None` when even the narrowest widths do not fit.
pub fn column_widths(
    narrowest: &[usize],
    widest: &[usize],
    available: usize,
) -> Option<Vec<usize>> {
    if widest.iter().sum::<usize>() <= available {
        return Some(widest.to_vec());
    }
    let mut widths = narrowest.to_vec();
    let mut left = available.checked_sub(widths.iter().sum())?;
    // Water-filling: one column at a time to the one still wanting the most, so the long text
    // columns share what is left and short ones are not stretched for nothing.
    while left > 0 {
        let wanting = (0..widths.len())
            .filter(|&column| widths[column] < widest[column])
            .max_by_key(|&column| (widest[column] - widths[column], std::cmp::Reverse(column)));
        let Some(column) = wanting else {
            break;
        };
        widths[column] += 1;
        left -= 1;
    }
    Some(widths)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn wrap(text: &str, width: usize) -> Vec<String> {
        wrap_indented(text, width, width)
    }

    #[test]
    fn the_width_rule() {
        assert_eq!(output_width(None, None), 100);
        assert_eq!(output_width(None, Some(132)), 132);
        assert_eq!(output_width(Some("80"), Some(132)), 80);
        assert_eq!(output_width(Some(" 90 "), None), 90);
        for ignored in ["", "wide", "-3", "0"] {
            assert_eq!(output_width(Some(ignored), Some(120)), 120, "{ignored:?}");
        }
        assert_eq!(output_width(Some("3"), None), MIN_WIDTH);
    }

    #[test]
    fn words_wrap_whole() {
        assert_eq!(wrap("one two three", 8), ["one two", "three"]);
        assert_eq!(wrap("one two three", 13), ["one two three"]);
        assert_eq!(wrap("deberta-v3-small x", 5), ["deberta-v3-small", "x"]);
        assert_eq!(wrap("a\nb c", 1), ["a", "b", "c"]);
        assert_eq!(wrap("", 5), [""]);
        // Display columns, not chars: each of these is two columns wide.
        assert_eq!(wrap("日本 語", 4), ["日本", "語"]);
        // A first line of its own width (a label or prompt before it).
        assert_eq!(wrap_indented("aa bb cc dd", 5, 8), ["aa bb", "cc dd"]);
        assert_eq!(wrap_indented("aa bb cc dd", 2, 8), ["aa", "bb cc dd"]);
    }

    #[test]
    fn columns_get_what_they_want_or_share_what_is_left() {
        assert_eq!(column_widths(&[3, 4], &[10, 20], 40), Some(vec![10, 20]));
        // 10 left: the second column first, until both want 7 more; then in turn.
        assert_eq!(column_widths(&[3, 4], &[10, 20], 17), Some(vec![4, 13]));
        assert_eq!(column_widths(&[3, 4], &[10, 20], 27), Some(vec![9, 18]));
        assert_eq!(column_widths(&[3, 4], &[10, 20], 6), None);
    }

    proptest! {
        #[test]
        fn wrapped_lines_fit_and_keep_every_word(
            words in proptest::collection::vec("[a-z0-9._/-]{1,12}", 0..20),
            width in 1usize..40,
        ) {
            let text = words.join(" ");
            let lines = wrap(&text, width);
            for line in &lines {
                let fits = display_width(line) <= width;
                let lone_word = !line.contains(' ') && display_width(line) > width;
                prop_assert!(fits || lone_word, "{line:?} at {width}");
            }
            let rewrapped: Vec<&str> = lines.iter().flat_map(|l| l.split(' ')).filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(rewrapped, words.iter().map(String::as_str).collect::<Vec<_>>());
        }

        #[test]
        fn column_widths_fit_and_never_cut_a_word(
            columns in proptest::collection::vec((1usize..15, 0usize..30), 1..8),
            available in 1usize..120,
        ) {
            let narrowest: Vec<usize> = columns.iter().map(|(n, _)| *n).collect();
            let widest: Vec<usize> = columns.iter().map(|(n, extra)| n + extra).collect();
            match column_widths(&narrowest, &widest, available) {
                Some(widths) => {
                    prop_assert!(widths.iter().sum::<usize>() <= available);
                    for ((w, n), x) in widths.iter().zip(&narrowest).zip(&widest) {
                        prop_assert!(n <= w && w <= x);
                    }
                }
                None => prop_assert!(narrowest.iter().sum::<usize>() > available),
            }
        }
    }
}
