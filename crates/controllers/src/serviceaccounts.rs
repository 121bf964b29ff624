//! kube-controller-manager's **serviceaccount** controller: every active namespace has a
//! ServiceAccount named `default` (pods name it unless they name another, and the API server's
//! ServiceAccount admission refuses pods whose account does not exist). A namespace that
//! appears gets one; a deleted `default` is made again. Nothing is written when it exists.

use crate::queue::Queue;
use crate::runtime::{informer, is_code};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::Client;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The accounts every namespace gets (upstream's `--service-account...` defaults: one).
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// What to do for one namespace, from the caches.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Nothing,
    Create,
}

/// Upstream's `syncNamespace`: only an Active namespace (not terminating) gets the account.
pub fn decide(ns: Option<&Namespace>, existing: Option<&ServiceAccount>) -> Action {
    let Some(ns) = ns else {
        return Action::Nothing;
    };
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating || existing.is_some() {
        return Action::Nothing;
    }
    Action::Create
}

struct Ctx {
    client: Client,
    field_manager: String,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
    queue: Arc<Queue<String>>,
    stats: Arc<crate::Stats>,
}

impl Ctx {
    async fn sync(&self, ns: &str) -> kube::Result<()> {
        let namespace = self.namespaces.get(&ObjectRef::new(ns));
        let existing = self
            .accounts
            .get(&ObjectRef::new(DEFAULT_SERVICE_ACCOUNT).within(ns));
        if decide(namespace.as_deref(), existing.as_deref()) == Action::Nothing {
            return Ok(());
        }
        let sa = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let pp = PostParams {
            dry_run: false,
            field_manager: Some(self.field_manager.clone()),
        };
        match Api::<ServiceAccount>::namespaced(self.client.clone(), ns)
            .create(&pp, &sa)
            .await
        {
            Ok(_) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(namespace = ns, "created the default ServiceAccount");
                Ok(())
            }
            // Our cache was behind (409), or the namespace started terminating (403) or is
            // gone (404): nothing to do.
            Err(e) if is_code(&e, 409) || is_code(&e, 403) || is_code(&e, 404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Starts the controller's watches and, once both initial lists are in, its worker.
pub(crate) fn start(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &Client,
    field_manager: &str,
    stats: Arc<crate::Stats>,
) -> Arc<Queue<String>> {
    let (namespaces, w_namespaces) = reflector::store::<Namespace>();
    let (accounts, w_accounts) = reflector::store::<ServiceAccount>();
    let queue = Queue::new();
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        field_manager: field_manager.to_string(),
        namespaces,
        accounts,
        queue: queue.clone(),
        stats,
    });
    let (q1, q2, q3, q4) = (queue.clone(), queue.clone(), queue.clone(), queue.clone());
    let all_namespaces = ctx.namespaces.clone();
    tasks.spawn(informer(
        Api::<Namespace>::all(client.clone()),
        w_namespaces,
        move |old, new| {
            let name = new
                .and_then(|n| n.metadata.name.clone())
                .or_else(|| old.and_then(|o| o.metadata.name.clone()));
            if let Some(n) = name {
                q1.add(n);
            }
        },
        move || {
            for n in all_namespaces.state() {
                q2.add(n.metadata.name.clone().unwrap_or_default());
            }
        },
    ));
    let relisted = ctx.namespaces.clone();
    tasks.spawn(informer(
        Api::<ServiceAccount>::all(client.clone()),
        w_accounts,
        move |old, new| {
            // Only a deleted `default` needs work.
            if new.is_none() {
                if let Some(o) = old {
                    if o.metadata.name.as_deref() == Some(DEFAULT_SERVICE_ACCOUNT) {
                        q3.add(o.metadata.namespace.clone().unwrap_or_default());
                    }
                }
            }
        },
        move || {
            // After a relist, look at every namespace again (a deletion may have been missed
            // while the watch was down).
            for n in relisted.state() {
                q4.add(n.metadata.name.clone().unwrap_or_default());
            }
        },
    ));
    let worker_ctx = ctx.clone();
    tasks.spawn(async move {
        let ctx = worker_ctx;
        let ready = futures::future::join(
            ctx.namespaces.wait_until_ready(),
            ctx.accounts.wait_until_ready(),
        )
        .await;
        if ready.0.is_err() || ready.1.is_err() {
            return;
        }
        for n in ctx.namespaces.state() {
            ctx.queue.add(n.metadata.name.clone().unwrap_or_default());
        }
        while let Some(ns) = ctx.queue.get().await {
            if let Err(e) = ctx.sync(&ns).await {
                ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = %ns, error = %e, "creating the default ServiceAccount failed, retrying");
                ctx.queue.add_after(ns.clone(), Duration::from_secs(1));
            }
            ctx.queue.done(&ns);
        }
    });
    queue
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(json: serde_json::Value) -> Namespace {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn an_active_namespace_without_the_account_gets_one() {
        let active =
            ns(serde_json::json!({"metadata": {"name": "a"}, "status": {"phase": "Active"}}));
        assert_eq!(decide(Some(&active), None), Action::Create);
        let sa: ServiceAccount = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "default", "namespace": "a"}}),
        )
        .unwrap();
        assert_eq!(decide(Some(&active), Some(&sa)), Action::Nothing);
    }

    #[test]
    fn terminating_and_missing_namespaces_get_none() {
        let terminating =
            ns(serde_json::json!({"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}));
        assert_eq!(decide(Some(&terminating), None), Action::Nothing);
        let deleting = ns(
            serde_json::json!({"metadata": {"name": "a", "deletionTimestamp": "2026-11-21T23:27:32Z"}}),
        );
        assert_eq!(decide(Some(&deleting), None), Action::Nothing);
        assert_eq!(decide(None, None), Action::Nothing);
    }
}
