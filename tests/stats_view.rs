//! The lead's view in the TUI: `S` in the queue (or "queue_stats" in the
//! palette) shows the server's queue figures for the last 7 days, the same
//! numbers `Task/$queue-stats` gives, as far as the role may see.

mod common;

use chartty::roles::Role;
use chartty::triage::stats::QueueStats;
use chartty::tui::popups::Popup;
use chartty::tui::popups::stats::Figures;
use common::*;

async fn server_figures(p: &Portal, role: Role) -> QueueStats {
    let v = get_as(p, role, "Task/$queue-stats?period=7d").await;
    QueueStats::from_parameters(&v).unwrap()
}

fn shown(h: &chartty::tui::headless::Headless) -> Option<QueueStats> {
    match h.app.popup() {
        Some(Popup::Stats(view)) => match &view.figures {
            Figures::Loaded(s) => Some((**s).clone()),
            other => panic!("the figures did not load: {other:?}"),
        },
        _ => None,
    }
}

/// A scheduling message from a patient, posted by the patient app now (the
/// demo clinic's own are dated by its fixed clock, which a 7-day window
/// leaves behind as the calendar moves on).
async fn a_message_now(p: &Portal) {
    let body = serde_json::json!({
        "resourceType": "Communication", "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "scheduling"}]}],
        "subject": {"reference": "Patient/p-hostile"}, "sender": {"reference": "Patient/p-hostile"},
        "payload": [{"contentString": "Can I come on Thursday instead?"}]
    });
    patient_message(p, &body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_view_shows_the_servers_figures_for_the_role() {
    let p = demo_portal(30, 4).await;
    a_message_now(&p).await;
    for role in [Role::Attending, Role::Frontdesk] {
        let mut h = signed_in(&p, role, &settings(), None).await;
        h.keys("5").unwrap();
        h.keys("S").unwrap();
        assert!(matches!(h.app.popup(), Some(Popup::Stats(_))));
        h.settle().await;
        let mine = shown(&h).expect("the stats view is open");
        let server = server_figures(&p, role).await;
        // The period ends when asked: the counts agree, the ends differ by
        // the moments the two requests were made.
        assert_eq!(
            (mine.messages, mine.reached_physician, &mine.queues),
            (server.messages, server.reached_physician, &server.queues),
            "{role}"
        );
        let text = screen(&mut h, 120, 40);
        assert!(text.contains("Queue figures · last 7 days"), "{text}");
        assert!(mine.messages >= 1, "{mine:?}");
        assert!(
            mine.queues.iter().any(|q| q.queue == "frontdesk"),
            "{mine:?}"
        );
        if role == Role::Frontdesk {
            assert!(
                mine.queues.iter().all(|q| q.queue == "frontdesk"),
                "{mine:?}"
            );
        }
        h.keys("<esc>").unwrap();
        assert!(h.app.popup().is_none());
    }
}
