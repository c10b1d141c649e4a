//! The lead's view of the queues: the figures of `Task/$queue-stats` for
//! the last days as a small table and a bar per queue. What the server
//! says is shown as it says it; a server without the operation says so.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{Layer, LayerView, PopupOutcome, centered};
use crate::fhir::sanitize::sanitize;
use crate::triage::stats::{QueueStats, minutes_text};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

/// The days the view covers.
pub const PERIOD_DAYS: u32 = 7;

#[derive(Debug, Clone, PartialEq)]
pub enum Figures {
    Loading,
    Loaded(Box<QueueStats>),
    Failed(String),
}

#[derive(Debug)]
pub struct StatsView {
    pub figures: Figures,
}

impl StatsView {
    pub fn loading() -> StatsView {
        StatsView {
            figures: Figures::Loading,
        }
    }

    /// The figures as lines of text (also what a test reads).
    pub fn lines(&self) -> Vec<String> {
        let s = match &self.figures {
            Figures::Loading => return vec!["Counting the queues…".into()],
            Figures::Failed(why) => {
                return vec![format!("No queue figures: {}", sanitize(why))];
            }
            Figures::Loaded(s) => s,
        };
        let share = if s.messages > 0 {
            format!(
                " ({:.0}%)",
                100.0 * f64::from(s.reached_physician) / f64::from(s.messages)
            )
        } else {
            String::new()
        };
        let mut out = vec![
            format!(
                "{} patient messages; {} reached a physician{share}",
                s.messages, s.reached_physician
            ),
            String::new(),
            format!(
                "{:<10} {:>6} {:>5} {:>9} {:>9} {:>9}",
                "Queue", "Volume", "Open", "1st act.", "Resolved", "Breaches"
            ),
        ];
        for q in &s.queues {
            out.push(format!(
                "{:<10} {:>6} {:>5} {:>9} {:>9} {:>9}",
                truncate(&sanitize(&q.queue), 10),
                q.volume,
                q.open,
                minutes_text(q.first_action_median_min),
                minutes_text(q.resolution_median_min),
                q.breaches
            ));
        }
        if s.queues.is_empty() {
            out.push("No task was created in the period.".into());
        }
        out.push("Times are medians (p90: chartty stats).".into());
        out.push(String::new());
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Layer for StatsView {
    fn context(&self) -> Context {
        Context::Viewer
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        match action {
            Action::Cancel | Action::Quit | Action::QueueStats => PopupOutcome::Close,
            _ => PopupOutcome::Consumed,
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView) {
        let theme = view.theme;
        let mut lines = self.lines();
        let width: u16 = 64;
        if let Figures::Loaded(s) = &self.figures {
            lines.extend(bars(s, usize::from(width) - 2));
        }
        let height = (lines.len() + 2) as u16;
        let rect = centered(area, width, height);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .title(format!(
                " Queue figures · last {PERIOD_DAYS} days · esc closes "
            ));
        let text: Vec<Line> = lines.into_iter().map(Line::from).collect();
        frame.render_widget(Paragraph::new(text).block(block), rect);
    }
}

/// One bar per queue, its volume; the widest fills the row, and any
/// volume at all shows at least one block.
fn bars(s: &QueueStats, width: usize) -> Vec<String> {
    let room = width.saturating_sub(17).max(1) as u64;
    let widest = u64::from(s.queues.iter().map(|q| q.volume).max().unwrap_or(0).max(1));
    s.queues
        .iter()
        .map(|q| {
            let len = (u64::from(q.volume) * room).div_ceil(widest) as usize;
            format!(
                "{:<10} {:>5} {}",
                truncate(&sanitize(&q.queue), 10),
                q.volume,
                "█".repeat(len)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::stats::QueueFigures;
    use crate::tui::keymap::Keymap;
    use crate::tui::theme::Theme;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn figures() -> QueueStats {
        let q = |queue: &str, volume, open, first, resolved, breaches| QueueFigures {
            queue: queue.into(),
            volume,
            open,
            first_action_median_min: first,
            first_action_p90_min: first.map(|m| m * 3.0),
            resolution_median_min: resolved,
            resolution_p90_min: resolved.map(|m| m * 2.0),
            breaches,
        };
        QueueStats {
            start: None,
            end: None,
            messages: 58,
            reached_physician: 11,
            queues: vec![
                q("nurse", 34, 9, Some(42.0), Some(310.0), 3),
                q("frontdesk", 10, 2, Some(95.0), Some(3000.0), 1),
                q("billing", 9, 4, None, None, 0),
                q("attending", 4, 1, Some(20.0), Some(125.0), 0),
                q("oncall", 3, 0, Some(8.0), Some(35.0), 0),
                q("review", 1, 1, None, None, 1),
            ],
        }
    }

    fn draw(view: &StatsView, w: u16, h: u16) -> Terminal<TestBackend> {
        let keymap = Keymap::defaults();
        let theme = Theme::default();
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|f| {
                view.render(
                    f,
                    f.area(),
                    &LayerView {
                        keymap: &keymap,
                        theme: &theme,
                        pane: Context::Tasks,
                    },
                )
            })
            .unwrap();
        terminal
    }

    #[test]
    fn the_figures_read_as_a_table_with_a_bar_per_queue() {
        let view = StatsView {
            figures: Figures::Loaded(Box::new(figures())),
        };
        let lines = view.lines();
        assert_eq!(
            lines[0],
            "58 patient messages; 11 reached a physician (19%)"
        );
        let nurse = lines.iter().find(|l| l.starts_with("nurse")).unwrap();
        assert_eq!(
            nurse.split_whitespace().collect::<Vec<_>>(),
            ["nurse", "34", "9", "42", "m", "5.2", "h", "3"]
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("frontdesk") && l.contains("2.1 d"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("billing") && l.contains("–"))
        );
        for (w, h) in [(120, 40), (80, 24)] {
            let t = draw(&view, w, h);
            let shown = format!("{}", t.backend());
            // The widest bar is the nurse queue's.
            let bar = |q: &str| {
                shown
                    .lines()
                    .find(|l| l.contains(q) && l.contains('█'))
                    .map_or(0, |l| l.matches('█').count())
            };
            assert!(
                bar("nurse") > bar("frontdesk") && bar("frontdesk") > bar("oncall"),
                "{shown}"
            );
            insta::assert_snapshot!(format!("figures_{w}x{h}"), t.backend());
        }
    }

    #[test]
    fn loading_failure_and_hostile_names_are_said_plainly() {
        let mut view = StatsView::loading();
        assert_eq!(view.lines(), ["Counting the queues…"]);
        view.figures = Figures::Failed("the server is down\u{1b}[2J".into());
        let line = view.lines().join("");
        assert!(
            line.starts_with("No queue figures: the server is down") && !line.contains('\u{1b}')
        );
        let mut s = figures();
        s.queues[0].queue = "\u{1b}]52;c;x\u{7}nurse".into();
        s.messages = 0;
        view.figures = Figures::Loaded(Box::new(s));
        let text = view.lines().join("\n");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(text.starts_with("0 patient messages; 11 reached a physician\n"));
        assert_eq!(view.update(Action::Cancel), PopupOutcome::Close);
        assert_eq!(view.update(Action::MoveDown), PopupOutcome::Consumed);
    }
}
