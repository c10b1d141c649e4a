//! The terminal backend. ratatui works out which cells changed; this writes
//! them in as few bytes as it safely can, for a clinician on a slow link
//! (at 20 kbit/s every kilobyte is 0.4 s of waiting).
//!
//! Against ratatui's own crossterm backend it saves on
//! - cursor moves: none where the cursor already is; a relative one (`\r`,
//!   `\r\n`, forward, back, up, down, to a column) where that is shorter
//!   than an absolute one; over a short gap of unchanged plain cells, those
//!   cells written again;
//! - styles: one SGR sequence per change, holding only what changed (or a
//!   reset and the new style, whichever is shorter), the 16 colours in
//!   their short form;
//! - blanks: a blank that stays blank is not written; runs of blanks and
//!   blank line ends are erased (ECH, EL) instead of written as spaces;
//! - the cursor: hidden or shown only when that changes.
//!
//! What it relies on: nothing else writes to the terminal while it is
//! drawn (so the cursor is where the last frame left it), and a cell of
//! one ASCII character moves the cursor on by one. After any other
//! character the column is trusted only to write on (as ratatui's backend
//! does) and the next jump is absolute or starts at a carriage return;
//! after a wide one, or at the right margin, nothing is assumed. Rows that
//! ever held a wide character are never written over from memory.

use std::io::{self, Write};

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::{Cell, CellWidth as _};
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// Styles a blank cell shows even without a character.
const VISIBLE_ON_BLANK: Modifier = Modifier::REVERSED
    .union(Modifier::UNDERLINED)
    .union(Modifier::SLOW_BLINK)
    .union(Modifier::RAPID_BLINK)
    .union(Modifier::CROSSED_OUT);

/// A gap longer than this is always jumped: writing it again never wins.
const LONGEST_REWRITE: u16 = 6;

/// Where the column is, as far as the output so far tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Unknown,
    /// After a character other than plain ASCII: writing on lands here as
    /// in ratatui's backend, but no relative move counts from it.
    Near(u16),
    Exact(u16),
}

/// The terminal's cursor as the output so far leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    row: Option<u16>,
    col: Col,
}

impl Cursor {
    pub const UNKNOWN: Cursor = Cursor {
        row: None,
        col: Col::Unknown,
    };

    pub fn at(x: u16, y: u16) -> Cursor {
        Cursor {
            row: Some(y),
            col: Col::Exact(x),
        }
    }

    /// Where the cursor is, when that is known to the cell.
    pub fn exact(self) -> Option<Position> {
        match (self.row, self.col) {
            (Some(y), Col::Exact(x)) => Some(Position { x, y }),
            _ => None,
        }
    }
}

/// The drawing style the terminal is set to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Pen {
    fg: Color,
    bg: Color,
    underline: Color,
    modifier: Modifier,
}

impl Pen {
    fn of(cell: &Cell) -> Pen {
        Pen {
            fg: cell.fg,
            bg: cell.bg,
            underline: cell.underline_color,
            modifier: cell.modifier,
        }
    }
}

/// SGR codes that clear a group of modifiers, and the modifiers each sets.
const CLEARS: &[(Modifier, u8)] = &[
    (Modifier::BOLD.union(Modifier::DIM), 22),
    (Modifier::ITALIC, 23),
    (Modifier::UNDERLINED, 24),
    (Modifier::SLOW_BLINK.union(Modifier::RAPID_BLINK), 25),
    (Modifier::REVERSED, 27),
    (Modifier::HIDDEN, 28),
    (Modifier::CROSSED_OUT, 29),
];
const SETS: &[(Modifier, u8)] = &[
    (Modifier::BOLD, 1),
    (Modifier::DIM, 2),
    (Modifier::ITALIC, 3),
    (Modifier::UNDERLINED, 4),
    (Modifier::SLOW_BLINK, 5),
    (Modifier::RAPID_BLINK, 6),
    (Modifier::REVERSED, 7),
    (Modifier::HIDDEN, 8),
    (Modifier::CROSSED_OUT, 9),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    Fg,
    Bg,
    Underline,
}

/// The SGR parameters that set `color` on `layer`.
fn color_params(layer: Layer, color: Color, params: &mut Vec<String>) {
    let (base, bright, extended, reset) = match layer {
        Layer::Fg => (30, 90, 38, 39),
        Layer::Bg => (40, 100, 48, 49),
        Layer::Underline => (0, 0, 58, 59),
    };
    let named = |n: u8| -> Option<u8> {
        (layer != Layer::Underline).then(|| if n < 8 { base + n } else { bright + n - 8 })
    };
    let index = match color {
        Color::Reset => {
            params.push(reset.to_string());
            return;
        }
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(i) => {
            params.push(format!("{extended};5;{i}"));
            return;
        }
        Color::Rgb(r, g, b) => {
            params.push(format!("{extended};2;{r};{g};{b}"));
            return;
        }
    };
    match named(index) {
        Some(code) => params.push(code.to_string()),
        None => params.push(format!("{extended};5;{index}")),
    }
}

/// The one SGR sequence that takes the terminal from `from` to `to`
/// (nothing when they are the same).
fn sgr(from: Pen, to: Pen, out: &mut Vec<u8>) {
    if from == to {
        return;
    }
    // Only what changed.
    let mut step = Vec::new();
    let mut kept = from.modifier;
    for (group, code) in CLEARS {
        if from.modifier.intersects(*group) && !to.modifier.contains(from.modifier & *group) {
            step.push(code.to_string());
            kept.remove(*group);
        }
    }
    for (m, code) in SETS {
        if to.modifier.contains(*m) && !kept.contains(*m) {
            step.push(code.to_string());
        }
    }
    if from.fg != to.fg {
        color_params(Layer::Fg, to.fg, &mut step);
    }
    if from.bg != to.bg {
        color_params(Layer::Bg, to.bg, &mut step);
    }
    if from.underline != to.underline {
        color_params(Layer::Underline, to.underline, &mut step);
    }
    // A reset, then the whole of the new style.
    let mut fresh = vec!["0".to_string()];
    for (m, code) in SETS {
        if to.modifier.contains(*m) {
            fresh.push(code.to_string());
        }
    }
    if to.fg != Color::Reset {
        color_params(Layer::Fg, to.fg, &mut fresh);
    }
    if to.bg != Color::Reset {
        color_params(Layer::Bg, to.bg, &mut fresh);
    }
    if to.underline != Color::Reset {
        color_params(Layer::Underline, to.underline, &mut fresh);
    }
    let len = |p: &[String]| p.iter().map(|s| s.len() + 1).sum::<usize>();
    out.extend_from_slice(b"\x1b[");
    if to == Pen::default() {
        // `ESC [ m` is a reset.
    } else if len(&step) <= len(&fresh) {
        out.extend_from_slice(step.join(";").as_bytes());
    } else {
        out.extend_from_slice(fresh.join(";").as_bytes());
    }
    out.push(b'm');
}

/// `ESC [ n final`, the count left out where it is the default 1.
fn csi(n: u16, fin: u8, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\x1b[");
    if n != 1 {
        out.extend_from_slice(n.to_string().as_bytes());
    }
    out.push(fin);
}

/// The absolute move to (x, y).
fn cup(x: u16, y: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\x1b[");
    match (y, x) {
        (0, 0) => {}
        (_, 0) => out.extend_from_slice((y + 1).to_string().as_bytes()),
        _ => out.extend_from_slice(format!("{};{}", y + 1, x + 1).as_bytes()),
    }
    out.push(b'H');
}

/// The shortest bytes that take the cursor from `from` to (x, y), assuming
/// only what `from` says. With `write_on`, a column reached by writing on
/// after a character other than plain ASCII counts as being there.
fn plan_move(from: Cursor, x: u16, y: u16, write_on: bool, out: &mut Vec<u8>) {
    if from.row == Some(y) {
        match from.col {
            Col::Exact(c) if c == x => return,
            Col::Near(c) if c == x && write_on => return,
            _ => {}
        }
    }
    let mut best = Vec::new();
    cup(x, y, &mut best);
    let mut consider = |candidate: Vec<u8>| {
        if candidate.len() < best.len() {
            best = candidate;
        }
    };
    if let Some(r) = from.row {
        // Up or down first (the column stays), then across.
        let mut vertical = Vec::new();
        if y > r {
            csi(y - r, b'B', &mut vertical);
        } else if y < r {
            csi(r - y, b'A', &mut vertical);
        }
        let mut across: Vec<Vec<u8>> = Vec::new();
        if let Col::Exact(c) = from.col {
            let mut b = Vec::new();
            if x > c {
                csi(x - c, b'C', &mut b);
            } else if x < c {
                csi(c - x, b'D', &mut b);
            }
            across.push(b);
        }
        let mut b = Vec::new();
        csi(x + 1, b'G', &mut b);
        across.push(b);
        let mut b = vec![b'\r'];
        if x > 0 {
            csi(x, b'C', &mut b);
        }
        across.push(b);
        for a in &across {
            let mut c = vertical.clone();
            c.extend_from_slice(a);
            consider(c);
        }
        // To the line start first, then down by line feeds: `\r\n` reads
        // the same with or without the terminal's newline translation.
        if y > r && y - r <= 3 {
            let mut c = vec![b'\r'];
            c.extend(std::iter::repeat_n(b'\n', usize::from(y - r)));
            if x > 0 {
                csi(x, b'C', &mut c);
            }
            consider(c);
        }
    }
    out.extend_from_slice(&best);
}

/// A cell that looks blank: a space, no background, no style that shows on
/// a blank.
fn looks_blank(cell: &Cell) -> bool {
    cell.symbol() == " " && cell.bg == Color::Reset && !cell.modifier.intersects(VISIBLE_ON_BLANK)
}

/// One printable ASCII character: it moves the cursor by exactly one in
/// every terminal.
fn plain(cell: &Cell) -> bool {
    matches!(cell.symbol().as_bytes(), [0x20..=0x7e])
}

/// The cursor and pen while a frame is written (cheap to copy, to try one
/// way of writing against another).
#[derive(Debug, Clone, Copy)]
struct Pencil {
    cursor: Cursor,
    pen: Pen,
}

impl Pencil {
    fn move_to(&mut self, x: u16, y: u16, write_on: bool, out: &mut Vec<u8>) {
        let before = out.len();
        plan_move(self.cursor, x, y, write_on, out);
        if out.len() != before {
            self.cursor = Cursor::at(x, y);
        }
    }

    fn pen_to(&mut self, pen: Pen, out: &mut Vec<u8>) {
        sgr(self.pen, pen, out);
        self.pen = pen;
    }

    /// Write `cell` where the cursor is, at (x, y).
    fn put(&mut self, x: u16, y: u16, cell: &Cell, cols: u16, out: &mut Vec<u8>) {
        self.pen_to(Pen::of(cell), out);
        let symbol = cell.symbol();
        out.extend_from_slice(symbol.as_bytes());
        let next = x.saturating_add(1);
        self.cursor = if plain(cell) {
            Cursor {
                row: Some(y),
                col: if next >= cols {
                    Col::Unknown
                } else {
                    Col::Exact(next)
                },
            }
        } else if symbol.cell_width() == 1 {
            Cursor {
                row: Some(y),
                col: if next >= cols {
                    Col::Unknown
                } else {
                    Col::Near(next)
                },
            }
        } else {
            Cursor::UNKNOWN
        };
    }
}

/// What the terminal shows, and how to bring it to the next frame.
#[derive(Debug, Clone)]
pub struct Painter {
    cols: u16,
    rows: u16,
    shown: Vec<Cell>,
    /// Rows whose remembered cells are what the terminal shows, cell for
    /// cell: only these are written over from memory or erased to the end.
    trusted: Vec<bool>,
    pencil: Pencil,
}

impl Painter {
    /// A blank screen of this size, the cursor somewhere, the default style.
    pub fn new(cols: u16, rows: u16) -> Painter {
        let cells = usize::from(cols) * usize::from(rows);
        Painter {
            cols,
            rows,
            shown: vec![Cell::default(); cells],
            trusted: vec![true; usize::from(rows)],
            pencil: Pencil {
                cursor: Cursor::UNKNOWN,
                pen: Pen::default(),
            },
        }
    }

    pub fn size(&self) -> (u16, u16) {
        (self.cols, self.rows)
    }

    pub fn cursor(&self) -> Cursor {
        self.pencil.cursor
    }

    /// Say where the terminal's cursor is (for a start from a known place).
    pub fn set_cursor(&mut self, cursor: Cursor) {
        self.pencil.cursor = cursor;
    }

    /// The screen was erased (with the default style): all blank.
    pub fn cleared(&mut self, cols: u16, rows: u16) {
        let pencil = self.pencil;
        *self = Painter::new(cols, rows);
        self.pencil = pencil;
    }

    /// Something this does not follow changed the screen: nothing shown is
    /// written again from memory, and the next move is absolute.
    pub fn forget(&mut self) {
        self.trusted.iter_mut().for_each(|t| *t = false);
        self.pencil.cursor = Cursor::UNKNOWN;
    }

    fn index(&self, x: u16, y: u16) -> usize {
        usize::from(y) * usize::from(self.cols) + usize::from(x)
    }

    /// Put the cursor at (x, y).
    pub fn move_cursor(&mut self, x: u16, y: u16, out: &mut Vec<u8>) {
        self.pencil.move_to(x, y, false, out);
    }

    /// Back to the default style, as every frame ends (what else writes to
    /// the terminal, and the screen after it, then start from the default).
    pub fn reset_pen(&mut self, out: &mut Vec<u8>) {
        self.pencil.pen_to(Pen::default(), out);
    }

    /// Write the changed cells `updates` (in ratatui's diff order) and
    /// remember them as shown. The style is the default again at the end.
    pub fn paint(&mut self, updates: &[(u16, u16, Cell)], out: &mut Vec<u8>) {
        let mut dirty: Vec<(u16, u16)> = Vec::with_capacity(updates.len());
        for (x, y, cell) in updates {
            let (x, y) = (*x, *y);
            if x >= self.cols || y >= self.rows {
                // Drawn beyond the size this knows: the terminal grew
                // without a clear. What is shown outside is unknown.
                let (cols, rows) = (self.cols.max(x + 1), self.rows.max(y + 1));
                self.grow(cols, rows);
            }
            let i = self.index(x, y);
            if cell.cell_width() != 1 || self.shown[i].cell_width() != 1 {
                self.trusted[usize::from(y)] = false;
            }
            // A blank that stays a blank (only its colour for text
            // changed) looks the same: nothing to write.
            let unseen =
                self.trusted[usize::from(y)] && looks_blank(&self.shown[i]) && looks_blank(cell);
            self.shown[i] = cell.clone();
            if !unseen {
                dirty.push((y, x));
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        let mut rest = dirty.as_slice();
        while let Some(&(y, _)) = rest.first() {
            let n = rest.iter().take_while(|(r, _)| *r == y).count();
            let xs: Vec<u16> = rest[..n].iter().map(|(_, x)| *x).collect();
            rest = &rest[n..];
            self.paint_row(y, &xs, out);
        }
        self.reset_pen(out);
    }

    fn grow(&mut self, cols: u16, rows: u16) {
        let mut bigger = Painter::new(cols, rows);
        for y in 0..self.rows {
            for x in 0..self.cols {
                let from = self.index(x, y);
                let to = bigger.index(x, y);
                bigger.shown[to] = self.shown[from].clone();
            }
        }
        bigger.pencil = self.pencil;
        *self = bigger;
        self.forget();
    }

    /// The first column from which the row is blank to its end (`cols`
    /// when it does not end blank, or cannot be trusted to).
    fn blank_from(&self, y: u16) -> u16 {
        if !self.trusted[usize::from(y)] {
            return self.cols;
        }
        let row = &self.shown[self.index(0, y)..self.index(0, y) + usize::from(self.cols)];
        let n = row.iter().rev().take_while(|c| looks_blank(c)).count();
        self.cols - n as u16
    }

    fn paint_row(&mut self, y: u16, xs: &[u16], out: &mut Vec<u8>) {
        let mut plain_way = Vec::new();
        let mut a = self.pencil;
        self.write_row(&mut a, y, xs, &mut plain_way);
        // Or: erase the row from the first change on, and write only what
        // is not blank there (a row that changed much, with wide gaps).
        if self.trusted[usize::from(y)]
            && let Some(&first) = xs.first()
        {
            let mut erase_first = Vec::new();
            let mut b = self.pencil;
            b.move_to(first, y, false, &mut erase_first);
            b.pen_to(Pen::default(), &mut erase_first);
            erase_first.extend_from_slice(b"\x1b[K");
            let shown: Vec<u16> = (first..self.cols)
                .filter(|x| !looks_blank(&self.shown[self.index(*x, y)]))
                .collect();
            self.write_cells(&mut b, y, &shown, &mut erase_first);
            if erase_first.len() < plain_way.len() {
                out.extend_from_slice(&erase_first);
                self.pencil = b;
                return;
            }
        }
        out.extend_from_slice(&plain_way);
        self.pencil = a;
    }

    /// Write the changed cells of a row, the blank end of the line erased
    /// where that is shorter.
    fn write_row(&self, pencil: &mut Pencil, y: u16, xs: &[u16], out: &mut Vec<u8>) {
        let tail = self.blank_from(y);
        let split = xs.iter().position(|x| *x >= tail).unwrap_or(xs.len());
        self.write_cells(pencil, y, &xs[..split], out);
        if split < xs.len() {
            // Either the blank cells one by one, or an erase to the end of
            // the line from the first of them: whichever is shorter.
            let mut one_by_one = Vec::new();
            let mut a = *pencil;
            self.write_cells(&mut a, y, &xs[split..], &mut one_by_one);
            let mut erase = Vec::new();
            let mut b = *pencil;
            b.move_to(xs[split], y, false, &mut erase);
            b.pen_to(Pen::default(), &mut erase);
            erase.extend_from_slice(b"\x1b[K");
            if erase.len() < one_by_one.len() {
                out.extend_from_slice(&erase);
                *pencil = b;
            } else {
                out.extend_from_slice(&one_by_one);
                *pencil = a;
            }
        }
    }

    /// Write the cells at `xs` of row `y`, each from where the last one left
    /// the cursor.
    fn write_cells(&self, pencil: &mut Pencil, y: u16, xs: &[u16], out: &mut Vec<u8>) {
        let trusted = self.trusted[usize::from(y)];
        let mut i = 0;
        while let Some(&x) = xs.get(i) {
            if trusted && looks_blank(&self.shown[self.index(x, y)]) {
                // A run of blanks from here, changed cells or not: erased
                // in place (ECH, the cursor stays) where that is shorter
                // than writing its changed cells.
                let end = (x..self.cols)
                    .find(|c| !looks_blank(&self.shown[self.index(*c, y)]))
                    .unwrap_or(self.cols);
                let n = xs[i..].iter().take_while(|c| **c < end).count();
                if end - x >= 4 {
                    let then = xs.get(i + n).copied();
                    let mut written = Vec::new();
                    let mut a = *pencil;
                    for &g in &xs[i..i + n] {
                        self.write_one(&mut a, y, g, &mut written);
                    }
                    let mut erased = Vec::new();
                    let mut b = *pencil;
                    b.move_to(x, y, false, &mut erased);
                    b.pen_to(Pen::default(), &mut erased);
                    csi(end - x, b'X', &mut erased);
                    // Both then go on to the next change on the row.
                    let onward = |p: Pencil| {
                        let mut m = Vec::new();
                        if let Some(t) = then {
                            let mut p = p;
                            p.move_to(t, y, true, &mut m);
                        }
                        m.len()
                    };
                    if erased.len() + onward(b) < written.len() + onward(a) {
                        out.extend_from_slice(&erased);
                        *pencil = b;
                    } else {
                        out.extend_from_slice(&written);
                        *pencil = a;
                    }
                    i += n;
                    continue;
                }
            }
            self.write_one(pencil, y, x, out);
            i += 1;
        }
    }

    /// Write the cell at (x, y) from where the cursor is: by a move, or over
    /// a short gap by writing the cells between again.
    fn write_one(&self, pencil: &mut Pencil, y: u16, x: u16, out: &mut Vec<u8>) {
        let cell = &self.shown[self.index(x, y)];
        if self.trusted[usize::from(y)]
            && pencil.cursor.row == Some(y)
            && let Col::Exact(c) = pencil.cursor.col
            && c < x
            && x - c <= LONGEST_REWRITE
            && (c..x).all(|g| plain(&self.shown[self.index(g, y)]))
        {
            let mut jump = Vec::new();
            let mut j = *pencil;
            j.move_to(x, y, true, &mut jump);
            j.pen_to(Pen::of(cell), &mut jump);
            let mut again = Vec::new();
            let mut a = *pencil;
            for g in c..x {
                a.put(g, y, &self.shown[self.index(g, y)], self.cols, &mut again);
            }
            a.pen_to(Pen::of(cell), &mut again);
            if again.len() < jump.len() {
                out.extend_from_slice(&again);
                *pencil = a;
            } else {
                out.extend_from_slice(&jump);
                *pencil = j;
            }
        } else {
            pencil.move_to(x, y, true, out);
        }
        pencil.put(x, y, cell, self.cols, out);
    }
}

/// A ratatui backend that writes through a [`Painter`].
pub struct LeanBackend<W: Write> {
    writer: W,
    painter: Painter,
    out: Vec<u8>,
    /// Whether the cursor is shown, once this has said so.
    cursor_shown: Option<bool>,
}

impl<W: Write> LeanBackend<W> {
    /// For a terminal of `size` (columns, rows) just switched to a blank
    /// alternate screen.
    pub fn new(writer: W, (cols, rows): (u16, u16)) -> LeanBackend<W> {
        LeanBackend {
            writer,
            painter: Painter::new(cols, rows),
            out: Vec::new(),
            cursor_shown: None,
        }
    }

    fn terminal_size() -> io::Result<(u16, u16)> {
        ratatui::crossterm::terminal::size()
    }
}

impl<W: Write> Backend for LeanBackend<W> {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        let updates: Vec<(u16, u16, Cell)> = content.map(|(x, y, c)| (x, y, c.clone())).collect();
        self.painter.paint(&updates, &mut self.out);
        Ok(())
    }

    fn append_lines(&mut self, n: u16) -> io::Result<()> {
        self.out.extend(std::iter::repeat_n(b'\n', usize::from(n)));
        self.painter.forget();
        Ok(())
    }

    fn hide_cursor(&mut self) -> io::Result<()> {
        if self.cursor_shown != Some(false) {
            self.out.extend_from_slice(b"\x1b[?25l");
            self.cursor_shown = Some(false);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> io::Result<()> {
        if self.cursor_shown != Some(true) {
            self.out.extend_from_slice(b"\x1b[?25h");
            self.cursor_shown = Some(true);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> io::Result<Position> {
        Ok(self.painter.cursor().exact().unwrap_or(Position::ORIGIN))
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> io::Result<()> {
        let Position { x, y } = position.into();
        self.painter.move_cursor(x, y, &mut self.out);
        Ok(())
    }

    fn clear(&mut self) -> io::Result<()> {
        self.clear_region(ClearType::All)
    }

    fn clear_region(&mut self, clear_type: ClearType) -> io::Result<()> {
        // Erased cells take the current background: the default one.
        self.painter.reset_pen(&mut self.out);
        let seq: &[u8] = match clear_type {
            ClearType::All => b"\x1b[2J",
            ClearType::AfterCursor => b"\x1b[J",
            ClearType::BeforeCursor => b"\x1b[1J",
            ClearType::CurrentLine => b"\x1b[2K",
            ClearType::UntilNewLine => b"\x1b[K",
        };
        self.out.extend_from_slice(seq);
        if clear_type == ClearType::All {
            let (cols, rows) = Self::terminal_size().unwrap_or(self.painter.size());
            self.painter.cleared(cols, rows);
        } else {
            self.painter.forget();
        }
        Ok(())
    }

    fn size(&self) -> io::Result<Size> {
        let (width, height) = Self::terminal_size()?;
        Ok(Size { width, height })
    }

    fn window_size(&mut self) -> io::Result<WindowSize> {
        let ws = ratatui::crossterm::terminal::window_size()?;
        Ok(WindowSize {
            columns_rows: Size {
                width: ws.columns,
                height: ws.rows,
            },
            pixels: Size {
                width: ws.width,
                height: ws.height,
            },
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out)?;
            self.out.clear();
        }
        self.writer.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ratatui::backend::CrosstermBackend;
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    /// What one frame's diff costs through the painter.
    fn painted(painter: &mut Painter, prev: &Buffer, next: &Buffer) -> Vec<u8> {
        let updates: Vec<(u16, u16, Cell)> = prev
            .diff(next)
            .into_iter()
            .map(|(x, y, c)| (x, y, c.clone()))
            .collect();
        let mut out = Vec::new();
        painter.paint(&updates, &mut out);
        out
    }

    /// The same diff through ratatui's own crossterm backend.
    fn reference(prev: &Buffer, next: &Buffer) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut backend = CrosstermBackend::new(&mut out);
            backend
                .draw(prev.diff(next).into_iter())
                .expect("writing to memory");
            ratatui::backend::Backend::flush(&mut backend).expect("writing to memory");
        }
        out
    }

    fn buffer(lines: &[&str]) -> Buffer {
        Buffer::with_lines(lines.iter().copied())
    }

    #[test]
    fn a_style_change_is_one_sequence_with_what_changed() {
        let mut out = Vec::new();
        let bold_red = Pen {
            fg: Color::Red,
            modifier: Modifier::BOLD,
            ..Pen::default()
        };
        sgr(Pen::default(), bold_red, &mut out);
        assert_eq!(out, b"\x1b[1;31m");
        out.clear();
        let dim_red = Pen {
            modifier: Modifier::DIM,
            ..bold_red
        };
        sgr(bold_red, dim_red, &mut out);
        assert_eq!(out, b"\x1b[22;2m");
        out.clear();
        sgr(dim_red, Pen::default(), &mut out);
        assert_eq!(out, b"\x1b[m");
        out.clear();
        let grey_bar = Pen {
            bg: Color::DarkGray,
            ..Pen::default()
        };
        sgr(bold_red, grey_bar, &mut out);
        assert_eq!(out, b"\x1b[0;100m");
    }

    #[test]
    fn moves_take_the_shortest_form() {
        let mv = |from: Cursor, x, y| {
            let mut out = Vec::new();
            plan_move(from, x, y, true, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(mv(Cursor::at(5, 3), 5, 3), "");
        assert_eq!(mv(Cursor::UNKNOWN, 0, 0), "\x1b[H");
        assert_eq!(mv(Cursor::UNKNOWN, 10, 20), "\x1b[21;11H");
        assert_eq!(mv(Cursor::at(30, 3), 0, 4), "\r\n");
        assert_eq!(mv(Cursor::at(30, 3), 0, 5), "\r\n\n");
        assert_eq!(mv(Cursor::at(30, 3), 33, 3), "\x1b[3C");
        assert_eq!(mv(Cursor::at(30, 3), 30, 4), "\x1b[B");
        assert_eq!(mv(Cursor::at(30, 3), 0, 3), "\r");
        // After a character other than plain ASCII only absolute columns.
        let near = Cursor {
            row: Some(3),
            col: Col::Near(10),
        };
        assert_eq!(mv(near, 10, 3), "");
        assert_eq!(mv(near, 12, 3), "\x1b[13G");
        // At the right margin (a wrap pending) only a line start is safe.
        let margin = Cursor {
            row: Some(3),
            col: Col::Unknown,
        };
        assert_eq!(mv(margin, 0, 4), "\r\n");
    }

    #[test]
    fn a_row_move_in_a_list_costs_few_bytes() {
        // The selection moves from one row to the next in a bordered list.
        let mut prev = Buffer::empty(Rect::new(0, 0, 40, 6));
        let mut next = prev.clone();
        for (buf, selected) in [(&mut prev, 2u16), (&mut next, 3)] {
            for y in 1..5u16 {
                let style = if y == selected {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                buf.set_string(0, y, "│", Style::default());
                buf.set_string(1, y, format!("{:<38}", format!("Patient {y}, Ann")), style);
                buf.set_string(39, y, "│", Style::default());
            }
        }
        let mut painter = Painter::new(40, 6);
        painted(&mut painter, &Buffer::empty(prev.area), &prev);
        let bytes = painted(&mut painter, &prev, &next);
        let theirs = reference(&prev, &next);
        assert_eq!(bytes.len(), 75, "{:?}", String::from_utf8_lossy(&bytes));
        assert!(
            bytes.len() < theirs.len(),
            "{} vs {}",
            bytes.len(),
            theirs.len()
        );
    }

    #[test]
    fn blank_line_ends_are_erased() {
        let prev = buffer(&["a long line of text here", "second"]);
        let next = buffer(&["a                       ", "second"]);
        let mut painter = Painter::new(24, 2);
        painted(&mut painter, &Buffer::empty(prev.area), &prev);
        painter.set_cursor(Cursor::at(6, 1));
        let bytes = painted(&mut painter, &prev, &next);
        assert_eq!(bytes, b"\x1b[1;3H\x1b[K");
    }

    /// A model of the SGR state a terminal keeps, for checking [`sgr`]
    /// without a terminal (the vt100 crate knows no blink, hidden or
    /// crossed out, nor bold and dim at once).
    fn apply(mut pen: Pen, seq: &[u8]) -> Pen {
        let body = seq
            .strip_prefix(b"\x1b[")
            .and_then(|s| s.strip_suffix(b"m"))
            .expect("one SGR sequence");
        let text = String::from_utf8(body.to_vec()).unwrap();
        let params: Vec<u16> = text
            .split(';')
            .map(|p| if p.is_empty() { 0 } else { p.parse().unwrap() })
            .collect();
        let named = |n: u16| match n {
            0 => Color::Black,
            1 => Color::Red,
            2 => Color::Green,
            3 => Color::Yellow,
            4 => Color::Blue,
            5 => Color::Magenta,
            6 => Color::Cyan,
            7 => Color::Gray,
            8 => Color::DarkGray,
            9 => Color::LightRed,
            10 => Color::LightGreen,
            11 => Color::LightYellow,
            12 => Color::LightBlue,
            13 => Color::LightMagenta,
            14 => Color::LightCyan,
            _ => Color::White,
        };
        let mut i = 0;
        while i < params.len() {
            let p = params[i];
            let extended = |i: &mut usize| -> Color {
                if params[*i + 1] == 5 {
                    let n = params[*i + 2];
                    *i += 2;
                    if n < 16 {
                        named(n)
                    } else {
                        Color::Indexed(n as u8)
                    }
                } else {
                    let c = Color::Rgb(
                        params[*i + 2] as u8,
                        params[*i + 3] as u8,
                        params[*i + 4] as u8,
                    );
                    *i += 4;
                    c
                }
            };
            match p {
                0 => pen = Pen::default(),
                1..=9 => {
                    let (m, _) = SETS.iter().find(|(_, c)| u16::from(*c) == p).unwrap();
                    pen.modifier.insert(*m);
                }
                22..=29 => {
                    let (g, _) = CLEARS.iter().find(|(_, c)| u16::from(*c) == p).unwrap();
                    pen.modifier.remove(*g);
                }
                30..=37 => pen.fg = named(p - 30),
                90..=97 => pen.fg = named(p - 90 + 8),
                40..=47 => pen.bg = named(p - 40),
                100..=107 => pen.bg = named(p - 100 + 8),
                39 => pen.fg = Color::Reset,
                49 => pen.bg = Color::Reset,
                59 => pen.underline = Color::Reset,
                38 => pen.fg = extended(&mut i),
                48 => pen.bg = extended(&mut i),
                58 => pen.underline = extended(&mut i),
                other => panic!("unexpected SGR parameter {other}"),
            }
            i += 1;
        }
        pen
    }

    fn any_color() -> impl Strategy<Value = Color> {
        prop_oneof![
            Just(Color::Reset),
            (0u8..16).prop_map(|n| apply(Pen::default(), format!("\x1b[38;5;{n}m").as_bytes()).fg),
            (16u8..=255).prop_map(Color::Indexed),
            any::<(u8, u8, u8)>().prop_map(|(r, g, b)| Color::Rgb(r, g, b)),
        ]
    }

    fn any_pen() -> impl Strategy<Value = Pen> {
        (any_color(), any_color(), any_color(), 0u16..512).prop_map(|(fg, bg, underline, m)| Pen {
            fg,
            bg,
            underline,
            modifier: Modifier::from_bits_truncate(m),
        })
    }

    proptest! {
        #[test]
        fn sgr_reaches_the_style_asked_for(from in any_pen(), to in any_pen()) {
            let mut out = Vec::new();
            sgr(from, to, &mut out);
            if from == to {
                prop_assert!(out.is_empty());
            } else {
                prop_assert_eq!(apply(from, &out), to);
            }
        }
    }

    /// Styles the random screens use: few, so that runs of one style occur.
    fn styles() -> Vec<Style> {
        vec![
            Style::default(),
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().bg(Color::DarkGray),
            Style::default().add_modifier(Modifier::REVERSED),
            Style::default().fg(Color::Cyan).add_modifier(Modifier::DIM),
            Style::default()
                .fg(Color::Indexed(123))
                .add_modifier(Modifier::UNDERLINED | Modifier::ITALIC),
            Style::default().bg(Color::Rgb(10, 20, 30)).fg(Color::White),
            Style::default().fg(Color::DarkGray),
        ]
    }

    const WORDS: &[&str] = &["a", "bc", " ", "   ", "─", "│", "é", "日", "x y", "--"];

    /// A screen of `cols` x `rows`, each row written as a few styled words.
    fn any_screen(cols: u16, rows: u16) -> impl Strategy<Value = Buffer> {
        let row = proptest::collection::vec((0..WORDS.len(), 0..8usize, 0u16..3), 0..12);
        proptest::collection::vec(row, usize::from(rows)).prop_map(move |rows_spec| {
            let mut buf = Buffer::empty(Rect::new(0, 0, cols, rows));
            let styles = styles();
            for (y, words) in rows_spec.iter().enumerate() {
                let mut x = 0u16;
                for (w, s, skip) in words {
                    x = x.saturating_add(*skip);
                    if x >= cols {
                        break;
                    }
                    let (nx, _) =
                        buf.set_stringn(x, y as u16, WORDS[*w], usize::from(cols - x), styles[*s]);
                    x = nx;
                }
            }
            buf
        })
    }

    fn vt_color(c: vt100::Color) -> String {
        format!("{c:?}")
    }

    /// Each cell as a terminal shows it: a blank cell only by what shows
    /// on a blank.
    fn seen(screen: &vt100::Screen, cols: u16, rows: u16) -> Vec<String> {
        let mut cells = Vec::new();
        for y in 0..rows {
            for x in 0..cols {
                let Some(c) = screen.cell(y, x) else {
                    cells.push("?".into());
                    continue;
                };
                let text = c.contents();
                if text.is_empty() || text == " " {
                    cells.push(format!(
                        "blank bg={} inv={} ul={}",
                        vt_color(c.bgcolor()),
                        c.inverse(),
                        c.underline()
                    ));
                } else {
                    cells.push(format!(
                        "{text:?} fg={} bg={} b={} d={} i={} u={} r={} w={}",
                        vt_color(c.fgcolor()),
                        vt_color(c.bgcolor()),
                        c.bold(),
                        c.dim(),
                        c.italic(),
                        c.underline(),
                        c.inverse(),
                        c.is_wide_continuation()
                    ));
                }
            }
        }
        cells
    }

    fn parser(rows: u16, cols: u16) -> vt100::Parser {
        let n = |v: u16| std::num::NonZeroU16::new(v).expect("a size");
        vt100::Parser::new(n(rows), n(cols), 0)
    }

    fn replay(parser: &mut vt100::Parser, bytes: &[u8]) {
        parser.process(bytes);
    }

    const COLS: u16 = 16;
    const ROWS: u16 = 5;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Through a terminal model, the painter's bytes show what ratatui's
        /// own backend shows, frame after frame, from any cursor position.
        #[test]
        fn painted_frames_show_what_ratatuis_backend_shows(
            frames in proptest::collection::vec(any_screen(COLS, ROWS), 1..4),
            starts in proptest::collection::vec((0u16..COLS, 0u16..ROWS, 0u8..3), 4),
        ) {
            let mut mine = parser(ROWS, COLS);
            let mut theirs = parser(ROWS, COLS);
            let mut painter = Painter::new(COLS, ROWS);
            let mut prev = Buffer::empty(Rect::new(0, 0, COLS, ROWS));
            for (next, (cx, cy, how)) in frames.iter().zip(starts) {
                // Where the cursor was left: put there by a move the
                // painter knows of, or somewhere it does not know.
                match how {
                    0 => {
                        let mut out = Vec::new();
                        painter.move_cursor(cx, cy, &mut out);
                        replay(&mut mine, &out);
                    }
                    1 => {
                        replay(&mut mine, format!("\x1b[{};{}H", cy + 1, cx + 1).as_bytes());
                        painter.set_cursor(Cursor::UNKNOWN);
                    }
                    _ => {}
                }
                let bytes = painted(&mut painter, &prev, next);
                replay(&mut mine, &bytes);
                replay(&mut theirs, &reference(&prev, next));
                prop_assert_eq!(
                    seen(mine.screen(), COLS, ROWS),
                    seen(theirs.screen(), COLS, ROWS),
                    "bytes {:?}",
                    String::from_utf8_lossy(&bytes)
                );
                // The cursor is where the painter says.
                if let Some(p) = painter.cursor().exact() {
                    prop_assert_eq!(mine.screen().cursor_position(), (p.y, p.x));
                }
                prev = next.clone();
            }
        }
    }

    #[test]
    fn ratatuis_backend_shows_the_buffer_in_the_model() {
        // The check above compares with ratatui's backend; this one that
        // the model shows a plain buffer as drawn.
        let next = buffer(&["ab  c", " d e "]);
        let mut parser = parser(2, 5);
        parser.process(&reference(&Buffer::empty(next.area), &next));
        assert_eq!(parser.screen().contents(), "ab  c\n d e");
    }
}
