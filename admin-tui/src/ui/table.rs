//! Tables that use the width they are given: every column as wide as its widest cell (or its
//! heading), and, when that does not fit, columns cut in an order that keeps what identifies a
//! row: free text first (addresses, node lists, payloads), then names (users, nodes), ids last,
//! and numbers never. What is cut is cut in the middle with an ellipsis (`c_7HqK…R1sT`), so both
//! ends of an id stay readable.
//!
//! Pure layout over strings: the views hand in their cells, this module sizes and cuts them and
//! builds the ratatui [`Table`] (the caller adds its block and highlight).

use ratatui::layout::Constraint;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Row, Table};

/// How readily a column gives up width when the table does not fit: the lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Give {
    /// Free text (addresses, lists, payloads): cut first, down to 4 columns.
    Text,
    /// Names (users, nodes, versions): cut next, down to 6 columns.
    Name,
    /// Ids (clients, rooms): cut last, down to 8 columns.
    Id,
    /// Numbers and short words: never cut.
    Fixed,
}

impl Give {
    /// The narrowest a column of this kind is cut to.
    fn floor(self) -> usize {
        match self {
            Give::Text => 4,
            Give::Name => 6,
            Give::Id => 8,
            Give::Fixed => usize::MAX,
        }
    }
}

/// One column: its heading and how it gives up width.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    pub head: &'static str,
    pub give: Give,
}

/// Shorthand for a [`Col`].
pub const fn col(head: &'static str, give: Give) -> Col {
    Col { head, give }
}

/// Columns between two cells.
const SPACING: usize = 1;
/// Most columns a cell gets beyond its content when the table has room to spare.
const MAX_AIR: usize = 2;

/// `s` in at most `w` columns: whole when it fits, else its start and end around `…`.
pub fn cut_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_owned();
    }
    match w {
        0 => String::new(),
        1 => "…".to_owned(),
        _ => {
            let keep = w - 1;
            let tail = keep / 2;
            let head = keep - tail;
            let mut out: String = s.chars().take(head).collect();
            out.push('…');
            out.extend(s.chars().skip(n - tail));
            out
        }
    }
}

/// The width of each column of `cols` holding `rows`, in `width` columns: as wide as its
/// content (and up to [`MAX_AIR`] more, with room to spare) when everything fits; else cut, text first, then names, then ids (each kind down to
/// its floor, the widest column of the kind first), numbers only when nothing else is left.
pub fn fit(cols: &[Col], rows: &[Vec<String>], width: u16) -> Vec<u16> {
    let mut widths: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .chain([c.head.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let avail = usize::from(width).saturating_sub(SPACING * cols.len().saturating_sub(1));
    let mut over = widths.iter().sum::<usize>().saturating_sub(avail);
    // Each kind down to its floor, in order; then (a terminal narrower than the console is
    // made for) each kind, numbers last, down to one column.
    let passes = [Give::Text, Give::Name, Give::Id]
        .map(|g| (g, g.floor()))
        .into_iter()
        .chain([Give::Text, Give::Name, Give::Id, Give::Fixed].map(|g| (g, 1)));
    for (give, floor) in passes {
        while over > 0 {
            // The widest column of this kind still above the floor gives one column.
            let widest = (0..cols.len())
                .filter(|&i| cols[i].give == give && widths[i] > floor)
                .max_by_key(|&i| (widths[i], std::cmp::Reverse(i)));
            let Some(i) = widest else { break };
            widths[i] -= 1;
            over -= 1;
        }
    }
    // Room to spare: a little more air between the columns (the rest stays on the right).
    let slack = avail.saturating_sub(widths.iter().sum::<usize>());
    let air = (slack / cols.len().max(1)).min(MAX_AIR);
    widths
        .into_iter()
        .map(|w| u16::try_from(w + air).unwrap_or(u16::MAX))
        .collect()
}

/// A table of `rows` (cells and the row's style) under `cols`' headings, sized by [`fit`] for
/// `width` columns (the inside of its block) and cut by [`cut_middle`].
pub fn table<'a>(cols: &[Col], rows: Vec<(Vec<String>, Style)>, width: u16) -> Table<'a> {
    let cells: Vec<Vec<String>> = rows.iter().map(|(c, _)| c.clone()).collect();
    let widths = fit(cols, &cells, width);
    let cut = |i: usize, s: &str| cut_middle(s, usize::from(widths[i]));
    let body: Vec<Row<'a>> = rows
        .into_iter()
        .map(|(cells, style)| {
            let cells: Vec<String> = cells.iter().enumerate().map(|(i, s)| cut(i, s)).collect();
            Row::new(cells).style(style)
        })
        .collect();
    let header: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| cut(i, c.head))
        .collect();
    Table::new(body, widths.iter().map(|w| Constraint::Length(*w)))
        .header(Row::new(header).style(Style::new().fg(Color::Cyan)))
        .column_spacing(SPACING as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn cuts_in_the_middle() {
        assert_eq!(cut_middle("c_7HqK2mX9pL4vR1sT", 18), "c_7HqK2mX9pL4vR1sT");
        assert_eq!(cut_middle("c_7HqK2mX9pL4vR1sT", 11), "c_7Hq…vR1sT");
        assert_eq!(cut_middle("c_7HqK2mX9pL4vR1sT", 10), "c_7Hq…R1sT");
        assert_eq!(cut_middle("abc", 1), "…");
        assert_eq!(cut_middle("abc", 0), "");
        assert_eq!(cut_middle("héllo wörld", 5), "hé…ld");
    }

    #[test]
    fn columns_take_their_content_when_it_fits() {
        let cols = [
            col("ID", Give::Id),
            col("USER", Give::Name),
            col("ADDRESS", Give::Text),
            col("RMS", Give::Fixed),
        ];
        let rows = cells(&[&["c_7HqK2mX9pL4vR1sT", "anon-k1x6YUbSOhP", "127.0.0.1", "1"]]);
        assert_eq!(fit(&cols, &rows, 200), [20, 18, 11, 5], "and a little air");
        assert_eq!(fit(&cols, &rows, 53), [19, 17, 10, 4]);
        // Exactly enough: 18 + 16 + 9 + 3 and three spaces.
        assert_eq!(fit(&cols, &rows, 49), [18, 16, 9, 3]);
    }

    #[test]
    fn text_gives_first_then_names_then_ids_never_numbers() {
        let cols = [
            col("ID", Give::Id),
            col("USER", Give::Name),
            col("ADDRESS", Give::Text),
            col("RMS", Give::Fixed),
        ];
        let rows = cells(&[&[
            "c_7HqK2mX9pL4vR1sT",
            "anon-k1x6YUbSOhP",
            "2001:db8::8a2e:370:7334",
            "100",
        ]]);
        // 18 + 16 + 23 + 3 + 3 = 63. At 50: the address gives 13.
        assert_eq!(fit(&cols, &rows, 50), [18, 16, 10, 3]);
        // At 40: the address is down to 4, the user gives the rest.
        assert_eq!(fit(&cols, &rows, 40), [18, 12, 4, 3]);
        // At 30: the user is down to 6, the id gives the rest.
        assert_eq!(fit(&cols, &rows, 30), [14, 6, 4, 3]);
        // Below every floor: text, names, ids, and numbers last, down to a column each.
        assert_eq!(fit(&cols, &rows, 20), [8, 5, 1, 3]);
        assert_eq!(fit(&cols, &rows, 10), [2, 1, 1, 3]);
    }
}
