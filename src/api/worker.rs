//! Runs requests concurrently on a tokio runtime and hands back results.
//! A request in a [`Slot`] cancels the one still running in that slot (an
//! older search, a chart the user moved away from): its reply could only be
//! dropped, and on a slow link it would hold up the one that matters.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::api::ApiClient;
use crate::api::contract::{ApiRequest, Completed, RequestId, Slot};

pub struct Worker {
    client: ApiClient,
    handle: tokio::runtime::Handle,
    tx: mpsc::UnboundedSender<Completed>,
    running: HashMap<Slot, (RequestId, AbortHandle)>,
}

impl Worker {
    /// A worker and the receiving end of its results.
    pub fn new(
        client: ApiClient,
        handle: tokio::runtime::Handle,
    ) -> (Worker, mpsc::UnboundedReceiver<Completed>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Worker {
                client,
                handle,
                tx,
                running: HashMap::new(),
            },
            rx,
        )
    }

    pub fn client(&self) -> &ApiClient {
        &self.client
    }

    /// Start a request; returns the id of a request it cancelled, if any
    /// (no reply will come for that one).
    pub fn submit(&mut self, id: RequestId, request: ApiRequest) -> Option<RequestId> {
        let client = self.client.clone();
        let tx = self.tx.clone();
        let slot = request.slot();
        let task = self.handle.spawn(async move {
            let kind = request.kind();
            let started = Instant::now();
            let result = client.execute(request).await;
            let latency = started.elapsed();
            match &result {
                Ok(_) => tracing::debug!(id, kind, ms = latency.as_millis() as u64, "ok"),
                Err(e) => tracing::warn!(id, kind, status = ?e.status, "request failed"),
            }
            let _ = tx.send(Completed {
                id,
                result,
                latency,
            });
        });
        let slot = slot?;
        let (old, handle) = self.running.insert(slot, (id, task.abort_handle()))?;
        if handle.is_finished() {
            return None;
        }
        handle.abort();
        tracing::debug!(id = old, "superseded");
        Some(old)
    }
}
