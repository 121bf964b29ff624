//! [`NftNetlink`]: applies `nft -f` scripts by speaking nf_tables netlink directly. The `nft`
//! CLI (1.0.6) dumps every chain and set of the table from the kernel before each transaction,
//! which costs 20-70 ms per sync at 10k Services; encoding the script ourselves and sending it
//! as one batch costs what the kernel needs. The script text stays the contract: [`script`]
//! encodes exactly the commands our renderer and differ write, byte for byte as nft does, and
//! refuses anything else ([`Unsupported`]), for which [`crate::NftAuto`] runs the CLI.

mod msg;
mod rule;
mod script;
mod types;
mod udata;

pub use types::Unsupported;

use crate::backend::{BackendError, Nft, NftCli};
use msg::*;
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use proxy_core::IpFamily;
use script::{Batch, SetKey, SetTypes};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use types::{split_concat_id, Family, SetData, SetType};

/// How many kernel errors of one failed batch are quoted in the error.
const MAX_REPORTED_ERRORS: usize = 5;

/// The nf_tables messages `NftNetlink` would send for `script` (without the batch framing and
/// with sequence numbers 0), or why it would fall back to the CLI. For tests that compare them
/// with `nft --debug=mnl`.
pub fn encode_script(script: &str) -> Result<Vec<Vec<u8>>, Unsupported> {
    let mut none: HashMap<SetKey, SetType> = HashMap::new();
    Ok(script::encode(script, &mut none)?.msgs)
}

/// As [`encode_script`], for a script that runs after `base` (whose set declarations it may
/// use, as an incremental transaction uses those of the full load before it).
pub fn encode_script_after(base: &str, script: &str) -> Result<Vec<Vec<u8>>, Unsupported> {
    let mut known: HashMap<SetKey, SetType> = HashMap::new();
    for (k, t) in script::encode(base, &mut HashMap::new())?.declared {
        if let Some(t) = t {
            known.insert(k, t);
        }
    }
    Ok(script::encode(script, &mut known)?.msgs)
}

/// A NETLINK_NETFILTER socket of one network namespace, and what it knows of the sets there.
pub struct NftNetlink {
    fd: OwnedFd,
    seq: u32,
    /// Key/data types of the sets programmed through this socket (or read back with GETSET),
    /// to encode element batches of sets the script does not declare.
    sets: HashMap<SetKey, SetType>,
    sndbuf: usize,
    rcvbuf: usize,
    /// For `list_table_json` (startup only).
    cli: NftCli,
}

fn nl_err(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Failed {
        cmd: "nf_tables netlink".into(),
        stderr: format!("{what}: {e}"),
    }
}

fn open_socket() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
    Ok(fd)
}

impl NftNetlink {
    /// A socket in the current network namespace.
    pub fn new() -> Result<Self, BackendError> {
        let fd = open_socket().map_err(|e| nl_err("opening a NETLINK_NETFILTER socket", e))?;
        Ok(Self::with_fd(fd, NftCli::default()))
    }

    /// A socket in the named network namespace (`ip netns`): opened by a thread that enters
    /// the namespace; the socket stays bound to it for its life.
    pub fn in_netns(name: &str) -> Result<Self, BackendError> {
        let path = format!("/var/run/netns/{name}");
        let fd = std::thread::spawn(move || -> Result<OwnedFd, String> {
            let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            open_socket().map_err(|e| format!("socket: {e}"))
        })
        .join()
        .map_err(|_| nl_err("opening a socket in a netns", "thread panicked"))?
        .map_err(|e| nl_err("opening a socket in a netns", e))?;
        Ok(Self::with_fd(fd, NftCli::in_netns(name)))
    }

    fn with_fd(fd: OwnedFd, cli: NftCli) -> Self {
        NftNetlink {
            fd,
            seq: 1,
            sets: HashMap::new(),
            sndbuf: 0,
            rcvbuf: 0,
            cli,
        }
    }

    /// Forget the set types learned: another writer (the CLI fallback) changed the table.
    pub fn forget_sets(&mut self) {
        self.sets.clear();
    }

    /// Encodes `script` into one batch, or says what it does not support.
    pub fn encode(&mut self, script: &str) -> Result<EncodedScript, Unsupported> {
        let mut known = KernelSets {
            cache: &self.sets,
            fd: &self.fd,
            seq: &mut self.seq,
            fetched: Vec::new(),
        };
        let batch = script::encode(script, &mut known)?;
        let fetched = std::mem::take(&mut known.fetched);
        for (k, t) in fetched {
            self.sets.insert(k, t);
        }
        Ok(EncodedScript(batch))
    }

    /// Sends an encoded script as one transaction and reads every acknowledgement; on an error
    /// the kernel has applied nothing.
    pub fn send(&mut self, enc: EncodedScript, script: &str) -> Result<(), BackendError> {
        self.send_batch(enc, script).map_err(|f| match f {
            SendFailure::NotSent(e) | SendFailure::Failed(e) => e,
        })
    }

    /// As [`NftNetlink::send`], telling apart a batch the kernel never received (the socket
    /// refused it: safe to send the script another way) from one it received.
    pub fn send_batch(&mut self, enc: EncodedScript, script: &str) -> Result<(), SendFailure> {
        let batch = enc.0;
        let n = batch.msgs.len();
        if n == 0 {
            return Ok(());
        }
        let first = self.seq;
        self.seq = self.seq.wrapping_add(n as u32 + 2);
        let total: usize = batch.msgs.iter().map(|m| m.len()).sum::<usize>() + 40;
        let mut buf = Vec::with_capacity(total);
        buf.extend(
            Msg::new(
                NFNL_MSG_BATCH_BEGIN,
                NLM_F_REQUEST,
                first,
                0,
                NFNL_SUBSYS_NFTABLES,
            )
            .finish(),
        );
        for (i, m) in batch.msgs.iter().enumerate() {
            let at = buf.len();
            buf.extend_from_slice(m);
            let seq = first.wrapping_add(1 + i as u32);
            buf[at + 8..at + 12].copy_from_slice(&seq.to_ne_bytes());
            let flags = u16::from_ne_bytes([buf[at + 6], buf[at + 7]]) | NLM_F_ACK;
            buf[at + 6..at + 8].copy_from_slice(&flags.to_ne_bytes());
        }
        buf.extend(
            Msg::new(
                NFNL_MSG_BATCH_END,
                NLM_F_REQUEST,
                first.wrapping_add(n as u32 + 1),
                0,
                NFNL_SUBSYS_NFTABLES,
            )
            .finish(),
        );
        // The whole batch is one datagram, and the kernel queues every ack before we read
        // one: size both buffers for this batch (as nft does).
        if buf.len() + 4096 > self.sndbuf {
            self.sndbuf = (buf.len() + 65536).next_power_of_two();
            setsockopt(&self.fd, sockopt::SndBufForce, &self.sndbuf)
                .map_err(|e| SendFailure::NotSent(nl_err("SO_SNDBUFFORCE", e)))?;
        }
        let want_rcv = (n * 1024 + (1 << 20)).min(1 << 30);
        if want_rcv > self.rcvbuf {
            self.rcvbuf = want_rcv.next_power_of_two();
            setsockopt(&self.fd, sockopt::RcvBufForce, &self.rcvbuf)
                .map_err(|e| SendFailure::NotSent(nl_err("SO_RCVBUFFORCE", e)))?;
        }
        loop {
            match send(self.fd.as_raw_fd(), &buf, MsgFlags::empty()) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SendFailure::NotSent(nl_err("sending the batch", e))),
            }
        }
        // The kernel processed the batch inside send(): every reply is queued now.
        let mut acks = 0usize;
        let mut errors: Vec<(u32, i32)> = Vec::new();
        let mut lost = false;
        let mut rbuf = vec![0u8; 1 << 16];
        loop {
            let len = match recv(self.fd.as_raw_fd(), &mut rbuf, MsgFlags::MSG_DONTWAIT) {
                Ok(len) => len,
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ENOBUFS) => {
                    lost = true;
                    continue;
                }
                Err(e) => return Err(SendFailure::Failed(nl_err("reading acknowledgements", e))),
            };
            for (ty, seq, payload) in messages(&rbuf[..len]) {
                if ty != NLMSG_ERROR || payload.len() < 4 {
                    continue;
                }
                let err = i32::from_ne_bytes(payload[0..4].try_into().expect("4 bytes"));
                // The error names the request it answers by its header's sequence number.
                let orig_seq = payload
                    .get(12..16)
                    .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(seq);
                if err == 0 {
                    acks += 1;
                } else {
                    errors.push((orig_seq, err));
                }
            }
        }
        if !errors.is_empty() {
            let lines: Vec<&str> = script.lines().collect();
            let mut text = Vec::new();
            for (seq, err) in errors.iter().take(MAX_REPORTED_ERRORS) {
                let idx = seq.wrapping_sub(first).wrapping_sub(1) as usize;
                let cmd = batch
                    .origin
                    .get(idx)
                    .and_then(|l| lines.get(*l))
                    .copied()
                    .unwrap_or("(batch framing)");
                let errno = nix::errno::Errno::from_raw(-err);
                text.push(format!("{}: {cmd}", errno.desc()));
            }
            if errors.len() > MAX_REPORTED_ERRORS {
                text.push(format!(
                    "... and {} more errors",
                    errors.len() - MAX_REPORTED_ERRORS
                ));
            }
            return Err(SendFailure::Failed(BackendError::Failed {
                cmd: "nf_tables netlink batch (nothing applied)".into(),
                stderr: text.join("\n"),
            }));
        }
        if lost || acks != n {
            return Err(SendFailure::Failed(nl_err(
                "the batch's outcome is unknown",
                format!(
                    "{acks} of {n} messages acknowledged{}",
                    if lost { ", replies lost (ENOBUFS)" } else { "" }
                ),
            )));
        }
        for (f, t) in &batch.dropped_tables {
            self.sets.retain(|(ff, tt, _), _| !(ff == f && tt == t));
        }
        for (k, t) in batch.declared {
            match t {
                Some(t) => {
                    self.sets.insert(k, t);
                }
                None => {
                    self.sets.remove(&k);
                }
            }
        }
        Ok(())
    }
}

/// Why [`NftNetlink::send_batch`] failed.
#[derive(Debug)]
pub enum SendFailure {
    /// The socket did not take the batch: the kernel saw nothing.
    NotSent(BackendError),
    /// The kernel received the batch and refused it (nothing applied), or its outcome could
    /// not be read.
    Failed(BackendError),
}

/// An encoded script, ready for [`NftNetlink::send`].
pub struct EncodedScript(Batch);

impl EncodedScript {
    /// The nf_tables messages, as [`encode_script`] returns them (for tests comparing them
    /// with nft's, here with set types read back from the kernel).
    pub fn messages(&self) -> &[Vec<u8>] {
        &self.0.msgs
    }
}

/// Netlink messages in a datagram: (type, sequence number, payload after the header).
fn messages(mut b: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes(b[0..4].try_into().expect("4 bytes")) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        let seq = u32::from_ne_bytes(b[8..12].try_into().expect("4 bytes"));
        out.push((ty, seq, &b[16..len]));
        let next = len.div_ceil(4) * 4;
        if next >= b.len() {
            break;
        }
        b = &b[next..];
    }
    out
}

/// Attributes (type without flags, value) of an nfgenmsg payload.
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        let next = len.div_ceil(4) * 4;
        if next >= b.len() {
            break;
        }
        b = &b[next..];
    }
    out
}

/// Set types from the cache, else read from the kernel with GETSET (a table adopted from a
/// previous run has sets this process never declared).
struct KernelSets<'a> {
    cache: &'a HashMap<SetKey, SetType>,
    fd: &'a OwnedFd,
    seq: &'a mut u32,
    fetched: Vec<(SetKey, SetType)>,
}

impl SetTypes for KernelSets<'_> {
    fn set_type(&mut self, family: Family, table: &str, set: &str) -> Option<SetType> {
        let key = (family, table.to_string(), set.to_string());
        if let Some(t) = self.cache.get(&key) {
            return Some(t.clone());
        }
        if let Some((_, t)) = self.fetched.iter().find(|(k, _)| *k == key) {
            return Some(t.clone());
        }
        let t = self.get_set(family, table, set)?;
        self.fetched.push((key, t.clone()));
        Some(t)
    }
}

impl KernelSets<'_> {
    fn get_set(&mut self, family: Family, table: &str, set: &str) -> Option<SetType> {
        let seq = *self.seq;
        *self.seq = self.seq.wrapping_add(1);
        let mut m = Msg::nft(NFT_MSG_GETSET, NLM_F_ACK, seq, family.nfproto());
        m.str(1, table);
        m.str(2, set);
        send(self.fd.as_raw_fd(), &m.finish(), MsgFlags::empty()).ok()?;
        let mut rbuf = vec![0u8; 1 << 16];
        let mut found = None;
        loop {
            let len = recv(self.fd.as_raw_fd(), &mut rbuf, MsgFlags::empty()).ok()?;
            let mut done = false;
            for (ty, rseq, payload) in messages(&rbuf[..len]) {
                if rseq != seq {
                    continue;
                }
                if ty == NLMSG_ERROR || ty == NLMSG_DONE {
                    done = true;
                } else if ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSET as u16
                    && payload.len() > 4
                {
                    found = parse_set(&payload[4..]);
                }
            }
            if done {
                return found;
            }
        }
    }
}

fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(0..4)?.try_into().ok()?))
}

fn parse_set(payload: &[u8]) -> Option<SetType> {
    let mut key = None;
    let mut data = None;
    let mut flags = 0;
    for (ty, v) in attributes(payload) {
        match ty {
            3 => flags = be32(v)?,
            4 => key = split_concat_id(be32(v)?),
            6 => data = Some(be32(v)?),
            _ => {}
        }
    }
    let data = match data {
        None => None,
        Some(NFT_DATA_VERDICT) => Some(SetData::Verdict),
        Some(id) => Some(SetData::Fields(split_concat_id(id)?)),
    };
    if (flags & script::NFT_SET_MAP != 0) != data.is_some() {
        return None;
    }
    Some(SetType { key: key?, data })
}

impl Nft for NftNetlink {
    /// Encodes and sends `script`; a script with a construct the encoder does not know is an
    /// error here (use [`crate::NftAuto`] to fall back to the CLI).
    fn apply(&mut self, script: &str) -> Result<(), BackendError> {
        let enc = self.encode(script).map_err(|u| BackendError::Failed {
            cmd: "nf_tables netlink encoder".into(),
            stderr: format!("unsupported: {u}"),
        })?;
        self.send(enc, script)
    }

    fn list_table_json(&mut self, family: IpFamily) -> Result<Option<String>, BackendError> {
        self.cli.list_table_json(family)
    }
}
