//! Everything a key can do. Keymap files name these in snake_case; the help
//! popup, the command palette and `chartty keys` describe them with
//! [`Action::description`].

use serde::{Deserialize, Serialize};

macro_rules! actions {
    ($($variant:ident => $name:literal, $desc:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Action {
            $($variant,)+
        }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant,)+];

            /// The name used in keymap files.
            pub fn name(self) -> &'static str {
                match self { $(Action::$variant => $name,)+ }
            }

            pub fn description(self) -> &'static str {
                match self { $(Action::$variant => $desc,)+ }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)+ _ => None }
            }
        }
    };
}

actions! {
    Noop => "noop", "Unbind: the key does nothing";
    Quit => "quit", "Quit chartty (asks first if anything is unsaved)";
    Lock => "lock", "Lock the screen now; patient data leaves memory";
    Help => "help", "Show the keys of this pane and the global keys";
    CommandPalette => "command_palette", "Search every action by name and run it";
    Cancel => "cancel", "Close the popup or leave the search box";
    FocusSearch => "focus_search", "Type to find a patient by name, MRN or birth date";
    PaneSearch => "pane_search", "Go to patient search";
    PaneSummary => "pane_summary", "Go to the summary (cover sheet)";
    PaneResults => "pane_results", "Go to results (labs and vitals)";
    PaneNotes => "pane_notes", "Go to notes";
    PaneTasks => "pane_tasks", "Go to the task queue of my role";
    PaneEditor => "pane_editor", "Go to the note being written";
    NextPane => "next_pane", "Next pane";
    PrevPane => "prev_pane", "Previous pane";
    MoveDown => "move_down", "Move the selection down";
    MoveUp => "move_up", "Move the selection up";
    PageDown => "page_down", "Move the selection a page down";
    PageUp => "page_up", "Move the selection a page up";
    GoTop => "go_top", "Go to the first row";
    GoBottom => "go_bottom", "Go to the last row";
    Open => "open", "Open the selected row";
    Back => "back", "Close the detail view";
    Refresh => "refresh", "Reload from the server";
    ClosePatient => "close_patient", "Close the open chart";
    QueueStats => "queue_stats", "Queue figures of the last 7 days: volume, time to first action and to resolution, breaches, messages that reached a physician";
    RawView => "raw_view", "Show the selected record as the server sent it (sanitised FHIR JSON)";
    Outbox => "outbox", "Show the changes waiting for the link, and any the server refused with both versions";
    DeleteBack => "delete_back", "Delete the character before the cursor";
    DeleteWord => "delete_word", "Delete the word before the cursor";
    ClearInput => "clear_input", "Clear the text input";
    Confirm => "confirm", "Answer yes";
    NewNote => "new_note", "Start a note for the open chart from a template";
    Addendum => "addendum", "Start an addendum to the selected signed note";
    NextField => "next_field", "Expand the .phrase before the cursor, else go to the next blank or pick-list";
    PrevField => "prev_field", "Go to the previous blank or pick-list";
    ExpandPhrase => "expand_phrase", "Expand the .phrase before the cursor";
    RefreshData => "refresh_data", "Pull the chart's data into the note again";
    Sign => "sign", "Sign the note (asks first); co-sign the selected co-signature task";
    TakeOver => "take_over", "Take over a task someone else has (what yes to claim runs)";
    SignNow => "sign_now", "Sign without asking again (what yes to sign runs)";
    OpenChart => "open_chart", "Open the chart of the selected task's patient";
    Mark => "mark", "Mark or unmark the selected task (actions then apply to every marked task)";
    Claim => "claim", "Take the selected (or marked) tasks: owner me, in progress";
    Route => "route", "Send the selected (or marked) tasks to another queue (pick the queue)";
    Escalate => "escalate", "Escalate to a physician: attending queue, priority one step up (reason asked)";
    Reply => "reply", "Answer the patient from a reply template; recorded on the task";
    Complete => "complete", "Close the selected (or marked) tasks with a disposition (picked)";
    Defer => "defer", "Move the due time (+1 h, +4 h, tomorrow 08:00, next Monday 08:00, or typed)";
    FilterCategory => "filter_category", "Show one category of the queue (refill, results, ...)";
    FilterPatient => "filter_patient", "Show the tasks of one patient";
    ClearFilters => "clear_filters", "Show the whole queue again";
    RecordBilling => "record_billing", "Record the time on the patient's messages for billing (CPT 99421–99423; physicians; asks first)";
    RecordBillingNow => "record_billing_now", "Record for billing without asking again (what yes runs)";
}
