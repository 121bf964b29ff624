//! The baseline: a single-member etcd (Debian's `etcd-server`) on this machine, driven over its
//! gRPC API the way kube-apiserver drives it: a create is one transaction "create_revision of
//! the key is 0 → put", a list is one range read of the resource's key prefix, a watch is one
//! gRPC watch on that prefix. Whatever kube-apiserver adds (HTTPS, JSON, admission, its watch
//! cache) comes on top, so etcd's own figures bound kube-apiserver + etcd from the good side.

mod pb;

use crate::process::{free_port, Server};
use crate::stats::ms;
use crate::workload::{CreateRun, ListRun, WatchResult, WatchRun, Workload};
use anyhow::{anyhow, bail, Context, Result};
use pb::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

pub struct Etcd {
    server: Server,
    url: String,
}

/// An etcd client connection: one HTTP/2 connection, as each etcd client (and each
/// kube-apiserver) holds.
#[derive(Clone)]
struct Conn(Grpc<Channel>);

impl Conn {
    async fn txn(&mut self, req: TxnRequest) -> Result<TxnResponse> {
        self.0.ready().await?;
        let r = self
            .0
            .unary(
                tonic::Request::new(req),
                PathAndQuery::from_static("/etcdserverpb.KV/Txn"),
                ProstCodec::default(),
            )
            .await?;
        Ok(r.into_inner())
    }

    async fn range(&mut self, req: RangeRequest) -> Result<RangeResponse> {
        self.0.ready().await?;
        let r = self
            .0
            .unary(
                tonic::Request::new(req),
                PathAndQuery::from_static("/etcdserverpb.KV/Range"),
                ProstCodec::default(),
            )
            .await?;
        Ok(r.into_inner())
    }

    /// kube-apiserver's create: put only if the key does not exist yet.
    async fn create(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<i64> {
        let req = TxnRequest {
            compare: vec![Compare {
                result: COMPARE_RESULT_EQUAL,
                target: COMPARE_TARGET_CREATE,
                key: key.clone(),
                target_union: Some(TargetUnion::CreateRevision(0)),
            }],
            success: vec![RequestOp {
                request: Some(Request::RequestPut(PutRequest { key, value })),
            }],
            failure: vec![],
        };
        let r = self.txn(req).await?;
        if !r.succeeded {
            bail!("create transaction failed: the key exists");
        }
        Ok(r.header.map_or(0, |h| h.revision))
    }
}

/// `/registry/configmaps/NS/` and the end of its range.
fn prefix(ns: &str) -> (Vec<u8>, Vec<u8>) {
    let p = format!("/registry/configmaps/{ns}/").into_bytes();
    let mut end = p.clone();
    *end.last_mut().unwrap() += 1;
    (p, end)
}

impl Etcd {
    pub async fn start(bin: &Path) -> Result<Etcd> {
        let dir = tempfile::Builder::new().prefix("etcd-bench-").tempdir()?;
        let (client_port, peer_port) = (free_port(), free_port());
        let url = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(bin)
            .arg("--name=bench")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=bench={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} (Debian package etcd-server)", bin.display()))?;
        let etcd = Etcd {
            server: Server::new(child, dir),
            url,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = etcd.conn().await {
                if c.range(RangeRequest {
                    key: b"health".to_vec(),
                    ..Default::default()
                })
                .await
                .is_ok()
                {
                    return Ok(etcd);
                }
            }
            if Instant::now() > deadline {
                bail!("etcd did not answer within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    async fn conn(&self) -> Result<Conn> {
        let ch = Channel::from_shared(self.url.clone())?.connect().await?;
        Ok(Conn(
            Grpc::new(ch)
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        ))
    }

    /// `value_bytes`: the size of the object switchboard stored for the same create, so both
    /// systems move the same bytes.
    pub async fn creates(&self, w: &Workload, ns: &str, value_bytes: usize) -> Result<CreateRun> {
        let mut conns = Vec::new();
        for _ in 0..w.clients {
            let mut c = self.conn().await?;
            c.range(RangeRequest {
                key: b"warm".to_vec(),
                ..Default::default()
            })
            .await?;
            conns.push(c);
        }
        let value: Arc<Vec<u8>> =
            Arc::new((0..value_bytes).map(|i| b'a' + (i % 26) as u8).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for mut c in conns {
            let (next, value, n, (p, _)) = (next.clone(), value.clone(), w.objects, prefix(ns));
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(lat);
                    }
                    let mut key = p.clone();
                    key.extend_from_slice(format!("cm-{i:06}").as_bytes());
                    let t = Instant::now();
                    c.create(key, value.to_vec()).await?;
                    lat.push(ms(t.elapsed()));
                }
            }));
        }
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await??);
        }
        Ok(CreateRun {
            count: latencies.len(),
            elapsed: started.elapsed(),
            latencies,
            object_bytes: value_bytes,
        })
    }

    /// Linearizable range reads of the whole prefix: every key and value.
    pub async fn lists(&self, w: &Workload, ns: &str) -> Result<ListRun> {
        let mut c = self.conn().await?;
        let (key, range_end) = prefix(ns);
        let mut latencies = Vec::new();
        let (mut items, mut bytes) = (0, 0);
        for i in 0..=w.lists {
            let t = Instant::now();
            let r = c
                .range(RangeRequest {
                    key: key.clone(),
                    range_end: range_end.clone(),
                    ..Default::default()
                })
                .await?;
            let took = ms(t.elapsed());
            if i == 0 {
                items = r.kvs.len();
                bytes = r.kvs.iter().map(|kv| kv.key.len() + kv.value.len()).sum();
                continue;
            }
            latencies.push(took);
        }
        Ok(ListRun {
            items,
            bytes,
            latencies,
        })
    }

    pub async fn watches(&self, w: &Workload, ns: &str, value_bytes: usize) -> Result<WatchResult> {
        let mut writer = self.conn().await?;
        let (key, range_end) = prefix(ns);
        let rev = writer
            .range(RangeRequest {
                key: b"warm".to_vec(),
                ..Default::default()
            })
            .await?
            .header
            .map_or(0, |h| h.revision);
        let run = WatchRun::new(w);
        let mut tasks = Vec::new();
        for _ in 0..w.watchers {
            // One connection per watcher, as 100 separate watching programs would have.
            let mut c = self.conn().await?;
            let (run, key, range_end) = (run.clone(), key.clone(), range_end.clone());
            tasks.push(tokio::spawn(async move {
                let create = WatchRequest {
                    request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                        key: key.clone(),
                        range_end,
                        start_revision: rev + 1,
                    })),
                };
                // The request stream stays open: closing it would end the watch.
                let requests = futures::StreamExt::chain(
                    futures::stream::iter([create]),
                    futures::stream::pending(),
                );
                c.0.ready().await?;
                let mut stream =
                    c.0.streaming(
                        tonic::Request::new(requests),
                        PathAndQuery::from_static("/etcdserverpb.Watch/Watch"),
                        ProstCodec::<WatchRequest, WatchResponse>::default(),
                    )
                    .await?
                    .into_inner();
                let mut seen = vec![None; run.events];
                let mut left = run.events + 1;
                while left > 0 {
                    let resp = stream
                        .message()
                        .await?
                        .ok_or_else(|| anyhow!("etcd watch ended early"))?;
                    let now = Instant::now();
                    if resp.canceled {
                        bail!("etcd watch canceled: {}", resp.cancel_reason);
                    }
                    for ev in resp.events {
                        let k = ev.kv.map(|kv| kv.key).unwrap_or_default();
                        let name = std::str::from_utf8(&k[key.len().min(k.len())..]).unwrap_or("");
                        if name == "ready" {
                            run.ready.fetch_add(1, Ordering::Relaxed);
                            left -= 1;
                        } else if let Some(i) = name
                            .strip_prefix("w-")
                            .and_then(|i| i.parse::<usize>().ok())
                        {
                            if seen[i].replace(now).is_none() {
                                left -= 1;
                            }
                        }
                    }
                }
                Ok::<_, anyhow::Error>(seen)
            }));
        }
        let value: Vec<u8> = (0..value_bytes).map(|i| b'a' + (i % 26) as u8).collect();
        let writer = tokio::sync::Mutex::new(writer);
        run.drive(tasks, |name| {
            let mut k = key.clone();
            k.extend_from_slice(name.as_bytes());
            let (value, writer) = (value.clone(), &writer);
            async move { writer.lock().await.create(k, value).await.map(|_| ()) }
        })
        .await
    }
}
