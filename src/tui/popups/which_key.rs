//! Which-key: after the first key of a sequence, a small box at the bottom
//! lists the keys that may follow and what they do.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{truncate, width};
use crate::tui::keymap::{Binding, Key, display_sequence};
use crate::tui::theme::Theme;

/// The rows of the box: (keys still to press, description), in candidate order.
pub fn rows(pending: &[Key], candidates: &[&Binding]) -> Vec<(String, String)> {
    candidates
        .iter()
        .map(|b| {
            let rest = b.keys.get(pending.len()..).unwrap_or(&[]);
            (display_sequence(rest), b.desc.clone())
        })
        .collect()
}

/// Draw the box at the bottom of `area`, in as many columns as it needs.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    pending: &[Key],
    candidates: &[&Binding],
    theme: &Theme,
) {
    let rows = rows(pending, candidates);
    if rows.is_empty() || area.height < 3 || area.width < 10 {
        return;
    }
    let key_col = rows.iter().map(|(k, _)| width(k)).max().unwrap_or(1);
    let desc_col = rows.iter().map(|(_, d)| width(d)).max().unwrap_or(1);
    let inner_width = area.width.saturating_sub(2) as usize;
    // One entry: " key  desc " ; columns side by side when there are many.
    let entry_width = (key_col + desc_col + 4).min(inner_width);
    let max_height = (area.height / 2).max(3).saturating_sub(2) as usize;
    let columns = rows
        .len()
        .div_ceil(max_height.max(1))
        .clamp(1, (inner_width / entry_width.max(1)).max(1));
    let height = rows.len().div_ceil(columns).min(max_height.max(1));
    let col_width = (inner_width / columns).min(entry_width + 2);

    let mut lines: Vec<Line> = Vec::with_capacity(height);
    for r in 0..height {
        let mut spans = Vec::new();
        for c in 0..columns {
            let Some((keys, desc)) = rows.get(c * height + r) else {
                break;
            };
            let desc_width = col_width.saturating_sub(key_col + 3);
            let desc = truncate(desc, desc_width);
            let pad = key_col.saturating_sub(width(keys));
            let used = 1 + pad + width(keys) + 2 + width(&desc);
            spans.push(Span::raw(" ".repeat(1 + pad)));
            spans.push(Span::styled(keys.clone(), theme.key_hint));
            spans.push(Span::raw("  "));
            spans.push(Span::styled(desc, theme.base));
            spans.push(Span::raw(" ".repeat(col_width.saturating_sub(used))));
        }
        lines.push(Line::from(spans));
    }

    let box_width = (col_width * columns + 2).min(area.width as usize) as u16;
    let box_height = height as u16 + 2;
    let box_area = Rect {
        x: area.x + area.width - box_width,
        y: area.y + area.height - box_height,
        width: box_width,
        height: box_height,
    };
    let block = Block::bordered()
        .border_set(theme.border_set(false))
        .border_style(theme.border)
        .style(theme.base)
        .title(Span::styled(
            format!(" {} … ", display_sequence(pending)),
            theme.title,
        ));
    frame.render_widget(Clear, box_area);
    frame.render_widget(Paragraph::new(lines).block(block), box_area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::keymap::{Context, Keymap, Lookup};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn pending_g(keymap: &Keymap, context: Context) -> Vec<&Binding> {
        match keymap.lookup(context, &[], Key::char('g')) {
            Lookup::Pending(c) => c,
            other => panic!("g should be pending, got {other:?}"),
        }
    }

    #[test]
    fn rows_show_the_rest_of_each_sequence() {
        let keymap = Keymap::defaults();
        let cands = pending_g(&keymap, Context::Search);
        let rows = rows(&[Key::char('g')], &cands);
        assert_eq!(
            rows[0],
            ("g".to_string(), "Go to the first row".to_string())
        );
        assert!(
            rows.iter()
                .any(|(k, d)| k == "t" && d.contains("task queue"))
        );
    }

    #[test]
    fn snapshot_g_pending_at_80x24() {
        let keymap = Keymap::defaults();
        let cands = pending_g(&keymap, Context::Search);
        let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
        t.draw(|f| render(f, f.area(), &[Key::char('g')], &cands, &Theme::default()))
            .unwrap();
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn snapshot_many_candidates_in_columns_at_80x12() {
        let src = (b'a'..=b'p')
            .map(|c| {
                format!(
                    "{{ on = \"z {}\", run = \"refresh\", desc = \"Refresh {}\" }}",
                    c as char, c as char
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let load = Keymap::load_str(&format!("[global]\nkeymap = [{src}]\n"), "k.toml");
        assert!(load.warnings.is_empty(), "{:?}", load.warnings);
        let Lookup::Pending(cands) = load.keymap.lookup(Context::Global, &[], Key::char('z'))
        else {
            panic!("z should be pending");
        };
        let mut t = Terminal::new(TestBackend::new(80, 12)).unwrap();
        t.draw(|f| render(f, f.area(), &[Key::char('z')], &cands, &Theme::default()))
            .unwrap();
        let screen = format!("{}", t.backend());
        assert!(
            screen.contains("Refresh a") && screen.contains("Refresh p"),
            "{screen}"
        );
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn nothing_drawn_without_candidates_or_room() {
        let mut t = Terminal::new(TestBackend::new(20, 2)).unwrap();
        let keymap = Keymap::defaults();
        let cands = pending_g(&keymap, Context::Search);
        t.draw(|f| render(f, f.area(), &[Key::char('g')], &cands, &Theme::default()))
            .unwrap();
        assert_eq!(
            format!("{}", t.backend()).trim_matches(|c| c == ' ' || c == '\n' || c == '"'),
            ""
        );
    }
}
