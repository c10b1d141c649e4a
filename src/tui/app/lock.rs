//! The lock screen: after the idle time, at once on `lock`, and on a
//! hang-up. Locking saves what the editor holds, then drops every patient
//! fact and the token from memory; only the person who was signed in
//! unlocks (the token this session started with, or a sign-in on another
//! device), and the chart that was open comes back, with its draft.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::{App, Origin};
use crate::api::signin::DeviceStart;
use crate::api::{ApiError, ApiReply, ApiRequest, Secret};
use crate::tui::matcher::MatchJob;
use crate::tui::panes::{PaneId, Panes};

impl std::fmt::Debug for LockStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A token being typed never shows in a debug print.
        match self {
            LockStep::Choose => f.write_str("Choose"),
            LockStep::Token(t) => write!(f, "Token({} characters)", t.chars().count()),
            LockStep::Starting => f.write_str("Starting"),
            LockStep::Device(d) => write!(f, "Device({d:?})"),
            LockStep::Checking => f.write_str("Checking"),
        }
    }
}

/// Why the screen locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    Asked,
    Idle,
    HangUp,
    /// The server refused the sign-in (revoked, or expired past refresh).
    SignInEnded,
}

/// What the lock screen is doing.
#[derive(Clone, PartialEq)]
pub enum LockStep {
    /// Waiting for the user to pick a way to unlock.
    Choose,
    /// Typing (or pasting) the token; only its length is shown.
    Token(String),
    /// Asking the server for a device code.
    Starting,
    /// Showing the code; waiting for its approval.
    Device(DeviceStart),
    /// Checking the token or the sign-in.
    Checking,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LockState {
    pub reason: LockReason,
    pub step: LockStep,
    /// The last failure to unlock, said on the screen.
    pub problem: Option<String>,
    /// The chart open when the screen locked (its id only).
    resume: Option<String>,
    resume_focus: PaneId,
    /// The token is out of memory (the api layer said so).
    pub tokens_dropped: bool,
    /// Waiting for writes in flight before the token goes.
    lock_pending: bool,
    /// The current unlock attempt (answers to older ones are not shown).
    attempt: u32,
}

impl App {
    pub fn locked(&self) -> Option<&LockState> {
        self.locked.as_ref()
    }

    /// Lock now: save the note being written, forget the patient data,
    /// then let go of the token (once writes in flight are done).
    pub fn lock(&mut self, reason: LockReason) {
        if self.locked.is_some() {
            return;
        }
        // Time on a message thread is written before the token goes.
        self.work_stop();
        if let Some(save) = self.panes.editor.due_save(None) {
            self.run_commands(vec![save]);
        }
        let resume = self
            .chart
            .as_ref()
            .and_then(|c| c.patient.id.clone())
            .or_else(|| self.opening.as_ref().map(|(id, _)| id.clone()));
        self.locked = Some(LockState {
            reason,
            step: LockStep::Choose,
            problem: None,
            resume,
            resume_focus: if self.focus == PaneId::Editor {
                PaneId::Notes
            } else {
                self.focus
            },
            tokens_dropped: false,
            lock_pending: true,
            attempt: 0,
        });
        self.forget_patient_data();
        self.release_token_when_idle();
        tracing::info!(?reason, "screen locked");
        self.dirty = true;
    }

    /// Everything a patient could be recognised by leaves memory: the chart,
    /// every pane, the popups, the working set in the matcher, drafts read
    /// back at start (they stay on disk, sealed), the last notice.
    fn forget_patient_data(&mut self) {
        self.chart = None;
        self.opening = None;
        self.popup = None;
        self.pending_keys.clear();
        self.notice = None;
        self.pending_search = None;
        self.server_found = (String::new(), Vec::new());
        self.recovered.clear();
        self.panes = Panes::default();
        self.focus = PaneId::Search;
        self.match_jobs.push(MatchJob::Clear);
        // A search the matcher has not answered is answered by nothing now
        // (the clear drops it): none is waited for.
        self.match_done = self.match_sent;
        // Replies to reads still on their way are not applied.
        self.in_flight.retain(|_, o| o.is_write());
        self.latest.clear();
    }

    pub(super) fn release_token_when_idle(&mut self) {
        let Some(l) = &mut self.locked else { return };
        if l.lock_pending && self.in_flight.values().all(|o| !o.is_write()) {
            l.lock_pending = false;
            let login = self.login.clone();
            self.submit(ApiRequest::Lock { login }, Origin::Lock);
        }
    }

    /// Called for every reply while locked: lock and unlock answers only.
    pub(super) fn locked_reply(&mut self, origin: &Origin, result: Result<ApiReply, ApiError>) {
        self.dirty = true;
        let Some(l) = &mut self.locked else { return };
        match (origin, result) {
            (Origin::Lock, _) => l.tokens_dropped = true,
            // Whichever attempt is approved unlocks (the api layer checked
            // it is the same person).
            (Origin::Unlock { .. }, Ok(ApiReply::Unlocked { .. })) => self.unlocked(),
            (Origin::Unlock { attempt }, _) if *attempt != l.attempt => {}
            (Origin::Unlock { attempt }, Ok(ApiReply::UnlockCode(start))) => {
                let attempt = *attempt;
                l.step = LockStep::Device(start.clone());
                self.submit(ApiRequest::UnlockWait { start }, Origin::Unlock { attempt });
            }
            (Origin::Unlock { .. }, Ok(_)) => {}
            (Origin::Unlock { .. }, Err(e)) => {
                l.step = LockStep::Choose;
                l.problem = Some(e.message);
            }
            _ => {}
        }
        self.release_token_when_idle();
    }

    fn unlocked(&mut self) {
        let Some(l) = self.locked.take() else { return };
        tracing::info!("screen unlocked");
        self.last_input = self.clock.instant;
        self.start_requests();
        if let Some(id) = l.resume {
            self.opening = Some((id.clone(), "the chart open before the lock".into()));
            self.submit(
                ApiRequest::OpenChart {
                    patient_id: id.clone(),
                    name: None,
                    features: self.features,
                },
                Origin::Chart { patient_id: id },
            );
        }
        self.focus = l.resume_focus;
        self.dirty = true;
    }

    /// Keys on the lock screen: a fixed set, not the keymap (nothing
    /// behind the lock is reachable).
    pub(super) fn lock_key(&mut self, key: KeyEvent) {
        let Some(l) = &mut self.locked else { return };
        self.dirty = true;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match &mut l.step {
            LockStep::Token(typed) => match key.code {
                KeyCode::Enter => {
                    let token = std::mem::take(typed);
                    l.step = LockStep::Checking;
                    l.attempt += 1;
                    let attempt = l.attempt;
                    self.submit(
                        ApiRequest::UnlockWithToken {
                            token: Secret(token),
                        },
                        Origin::Unlock { attempt },
                    );
                }
                KeyCode::Esc => l.step = LockStep::Choose,
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Char('u') if ctrl => typed.clear(),
                KeyCode::Char(c) if !ctrl => typed.push(c),
                _ => {}
            },
            // Until the token is out of memory (writes in flight first),
            // there is nothing to unlock: only quitting.
            LockStep::Choose if !l.tokens_dropped => match key.code {
                KeyCode::Char('q') => self.quit(),
                KeyCode::Char('c') if ctrl => self.quit(),
                _ => {}
            },
            LockStep::Choose => match key.code {
                KeyCode::Char('t') if self.session.token.is_some() => {
                    l.problem = None;
                    l.step = LockStep::Token(String::new());
                }
                KeyCode::Char('d') => {
                    l.problem = None;
                    l.step = LockStep::Starting;
                    l.attempt += 1;
                    let attempt = l.attempt;
                    self.submit(ApiRequest::UnlockStart, Origin::Unlock { attempt });
                }
                // A server that asks for no sign-in has nobody to check.
                KeyCode::Enter if self.session.token.is_none() && self.session.bearer.is_none() => {
                    l.step = LockStep::Checking;
                    l.attempt += 1;
                    let attempt = l.attempt;
                    self.submit(ApiRequest::UnlockOpen, Origin::Unlock { attempt });
                }
                KeyCode::Char('q') => self.quit(),
                KeyCode::Char('c') if ctrl => self.quit(),
                _ => {}
            },
            LockStep::Starting | LockStep::Device(_) | LockStep::Checking => match key.code {
                // The wait goes on; an approval still unlocks.
                KeyCode::Esc => l.step = LockStep::Choose,
                KeyCode::Char('q') => self.quit(),
                KeyCode::Char('c') if ctrl => self.quit(),
                _ => {}
            },
        }
    }

    pub(super) fn lock_paste(&mut self, text: &str) {
        if let Some(LockState {
            step: LockStep::Token(typed),
            ..
        }) = &mut self.locked
        {
            typed.push_str(text.trim());
            self.dirty = true;
        }
    }

    /// Locks after `idle_lock` without a key.
    pub(super) fn check_idle(&mut self, now: Instant) {
        if let Some(idle) = self.idle_lock
            && self.locked.is_none()
            && now.saturating_duration_since(self.last_input) >= idle
        {
            self.lock(LockReason::Idle);
        }
    }

    pub(super) fn render_lock(&self, frame: &mut Frame) {
        let Some(l) = &self.locked else { return };
        let t = &self.theme;
        let area = frame.area();
        let [_, middle, _] = Layout::vertical([
            Constraint::Fill(1),
            Constraint::Length(14),
            Constraint::Fill(1),
        ])
        .areas(area);
        let why = match l.reason {
            LockReason::Asked => "Locked.",
            LockReason::Idle => "Locked after a while without a key.",
            LockReason::HangUp => "Locked: the terminal hung up.",
            LockReason::SignInEnded => "Your sign-in has ended: sign in again to go on.",
        };
        let who = self
            .session
            .user
            .as_deref()
            .unwrap_or("the person signed in");
        let mut lines = vec![
            Line::from(Span::styled(why, t.title)),
            Line::from(format!(
                "The chart, the lists and the queue were cleared. Only {who} can unlock."
            )),
            Line::from("Notes being written were saved; they come back with the chart."),
            Line::from(""),
        ];
        match &l.step {
            LockStep::Choose if !l.tokens_dropped => {
                lines.push(Line::from("Saving the note being written…   q  quit"));
            }
            LockStep::Choose if self.session.token.is_none() && self.session.bearer.is_none() => {
                lines.push(Line::from("Enter  go on (this server asks for no sign-in)"));
                lines.push(Line::from("q  quit (drafts are kept)"));
            }
            LockStep::Choose => {
                lines.push(Line::from(
                    "d  sign in on another device (a code to approve)",
                ));
                if self.session.token.is_some() {
                    lines.push(Line::from(
                        "t  type or paste the token this session started with",
                    ));
                }
                lines.push(Line::from("q  quit (drafts are kept)"));
            }
            LockStep::Token(typed) => {
                lines.push(Line::from(format!(
                    "Token: {}  (Enter to unlock, Esc to go back)",
                    "•".repeat(typed.chars().count().min(40))
                )));
            }
            LockStep::Starting => lines.push(Line::from("Asking the server for a code…")),
            LockStep::Device(start) => {
                lines.push(Line::from(format!("Open  {}", start.verification_uri)));
                lines.push(Line::from(vec![
                    Span::raw("and enter the code  "),
                    Span::styled(start.user_code.clone(), t.title),
                ]));
                lines.push(Line::from(
                    "Waiting for the approval…   Esc  back   q  quit",
                ));
            }
            LockStep::Checking => lines.push(Line::from("Checking…")),
        }
        if let Some(hint) = &self.session.unlock_hint {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(hint.clone(), t.dim)));
        }
        if let Some(p) = &l.problem {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(p.clone(), t.alert_critical)));
        }
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(t.border_set(false))
            .border_style(t.border)
            .title(" chartty — locked ");
        frame.render_widget(
            Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
            middle,
        );
    }
}
