//! Per-id locks: two requests for the same capture id never race on its file and row
//! (a retried upload against the first, a deletion against an upload).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The locks of the ids in use; an id's entry goes when its last holder lets go.
#[derive(Debug, Default)]
pub struct IdLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl IdLocks {
    /// Waits until no one else holds `id`.
    pub async fn lock(&self, id: &str) -> IdGuard<'_> {
        let m = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        let guard = m.clone().lock_owned().await;
        IdGuard {
            locks: self,
            id: id.to_string(),
            _guard: guard,
            mutex: m,
        }
    }
}

/// Holds one id until dropped.
pub struct IdGuard<'a> {
    locks: &'a IdLocks,
    id: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    mutex: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for IdGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.locks.0.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and ours. Anyone else waiting holds a third.
        if Arc::strong_count(&self.mutex) <= 2 {
            map.remove(&self.id);
        }
    }
}
