//! The part that touches the wire: one raw AF_PACKET socket per interface (pnet_datalink),
//! a blocking reader thread per interface that answers ARP requests and Neighbor
//! Solicitations for the addresses this node announces, and a sender for gratuitous ARP /
//! unsolicited NA when this node takes an address over. For IPv6 addresses it also joins their
//! solicited-node multicast groups on the interface, as MetalLB's NDP responder does: the kernel
//! then sends MLD reports, so a switch with MLD snooping forwards the solicitations to us.

use crate::frames::{self, MacAddr, Request};
use pnet_datalink::{Channel, DataLinkSender, NetworkInterface};
use prometheus_client::metrics::counter::Counter;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// What this node answers for: address -> interfaces (empty = every interface).
pub type Table = HashMap<IpAddr, BTreeSet<String>>;

/// Counters the agent exports (prometheus-client counters are shared handles).
#[derive(Debug, Default, Clone)]
pub struct SpeakerStats {
    pub arp_replies: Counter,
    pub ndp_replies: Counter,
    pub announcements: Counter,
}

struct Iface {
    mac: MacAddr,
    index: u32,
    tx: Mutex<Box<dyn DataLinkSender>>,
    stop: Arc<AtomicBool>,
    groups: Mutex<Groups>,
}

/// The solicited-node groups joined on one interface. Memberships belong to a socket (any
/// IPv6 socket will do; this one never receives anything of interest) and end when it closes.
#[derive(Default)]
struct Groups {
    socket: Option<UdpSocket>,
    joined: BTreeSet<Ipv6Addr>,
}

/// Raw sockets on this namespace's interfaces.
pub struct Speaker {
    table: Arc<RwLock<Table>>,
    ifaces: Mutex<HashMap<String, Arc<Iface>>>,
    pub stats: SpeakerStats,
}

fn usable(i: &NetworkInterface) -> bool {
    i.is_up() && !i.is_loopback() && i.mac.is_some_and(|m| m != MacAddr::zero())
}

fn answers(table: &RwLock<Table>, ip: IpAddr, iface: &str) -> bool {
    let t = table.read().unwrap_or_else(|e| e.into_inner());
    t.get(&ip)
        .is_some_and(|ifs| ifs.is_empty() || ifs.contains(iface))
}

impl Default for Speaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Speaker {
    pub fn new() -> Self {
        Speaker {
            table: Arc::default(),
            ifaces: Mutex::default(),
            stats: SpeakerStats::default(),
        }
    }

    /// Opens sockets on interfaces that appeared and closes those of interfaces that went away.
    /// Call it now and then: interfaces come and go (a veth moved in, a link set down).
    pub fn refresh_interfaces(&self) {
        let present: Vec<NetworkInterface> = pnet_datalink::interfaces()
            .into_iter()
            .filter(usable)
            .collect();
        let mut ifaces = self.ifaces.lock().unwrap_or_else(|e| e.into_inner());
        ifaces.retain(|name, i| {
            let keep = present
                .iter()
                .any(|p| &p.name == name && p.mac == Some(i.mac));
            if !keep {
                i.stop.store(true, Ordering::Relaxed);
            }
            keep
        });
        for ni in present {
            if ifaces.contains_key(&ni.name) {
                continue;
            }
            let cfg = pnet_datalink::Config {
                read_timeout: Some(Duration::from_millis(200)),
                ..Default::default()
            };
            let (tx, mut rx) = match pnet_datalink::channel(&ni, cfg) {
                Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(interface = %ni.name, error = %e, "cannot open a raw socket; not announcing there");
                    continue;
                }
            };
            let iface = Arc::new(Iface {
                mac: ni.mac.unwrap_or_else(MacAddr::zero),
                index: ni.index,
                tx: Mutex::new(tx),
                stop: Arc::new(AtomicBool::new(false)),
                // Made here, with the raw socket, so it is in the namespace the interface is in
                // whichever thread later changes the memberships.
                groups: Mutex::new(Groups {
                    socket: UdpSocket::bind("[::]:0")
                        .inspect_err(|e| {
                            // IPv6 off in this namespace: nobody can ask us by NDP either.
                            tracing::debug!(interface = %ni.name, error = %e, "no IPv6 socket; not joining solicited-node groups")
                        })
                        .ok(),
                    joined: BTreeSet::new(),
                }),
            });
            ifaces.insert(ni.name.clone(), iface.clone());
            let table = self.table.clone();
            let stats = self.stats.clone();
            let name = ni.name.clone();
            // The reader blocks in recv (up to its timeout), so it gets its own thread rather
            // than a tokio worker.
            let spawned = std::thread::Builder::new().name(format!("l2-{name}")).spawn(move || {
                while !iface.stop.load(Ordering::Relaxed) {
                    let frame = match rx.next() {
                        Ok(f) => f,
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(e) => {
                            tracing::warn!(interface = %name, error = %e, "raw socket read failed; closing it");
                            break;
                        }
                    };
                    let Some(req) = frames::parse(frame) else { continue };
                    if !answers(&table, req.target(), &name) {
                        continue;
                    }
                    let reply = match req {
                        Request::Arp { sender_mac, sender_ip, target } => {
                            stats.arp_replies.inc();
                            frames::arp_reply(iface.mac, target, sender_mac, sender_ip)
                        }
                        Request::Ns { sender_mac, sender_ip, target } => {
                            stats.ndp_replies.inc();
                            // From the target address itself, as the Linux kernel answers for
                            // its own addresses (some tools, ndisc6 among them, ignore an answer
                            // from another source).
                            frames::neighbor_advert_reply(iface.mac, target, target, sender_mac, sender_ip)
                        }
                    };
                    let mut tx = iface.tx.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(Err(e)) = tx.send_to(&reply, None) {
                        tracing::warn!(interface = %name, error = %e, "sending an ARP/NDP answer failed");
                    }
                }
                // Closing our socket lets a later refresh open a new one if the interface returns.
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start an L2 reader thread");
            }
        }
        drop(ifaces);
        self.sync_groups();
    }

    /// Joins the solicited-node groups of the IPv6 addresses each interface answers for and
    /// leaves the others.
    fn sync_groups(&self) {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner());
        let ifaces = self.ifaces.lock().unwrap_or_else(|e| e.into_inner());
        for (name, iface) in ifaces.iter() {
            let want: BTreeSet<Ipv6Addr> = table
                .iter()
                .filter(|(_, on)| on.is_empty() || on.contains(name))
                .filter_map(|(ip, _)| match ip {
                    IpAddr::V6(a) => Some(frames::solicited_node(*a)),
                    IpAddr::V4(_) => None,
                })
                .collect();
            let mut g = iface.groups.lock().unwrap_or_else(|e| e.into_inner());
            let Groups { socket, joined } = &mut *g;
            let Some(socket) = socket.as_ref() else {
                continue;
            };
            if want == *joined {
                continue;
            }
            let leave: Vec<Ipv6Addr> = joined.difference(&want).copied().collect();
            for group in leave {
                if let Err(e) = socket.leave_multicast_v6(&group, iface.index) {
                    tracing::warn!(interface = %name, %group, error = %e, "leaving a solicited-node group failed");
                }
                joined.remove(&group);
            }
            let join: Vec<Ipv6Addr> = want.difference(joined).copied().collect();
            for group in join {
                match socket.join_multicast_v6(&group, iface.index) {
                    Ok(()) => {
                        joined.insert(group);
                    }
                    Err(e) => {
                        tracing::warn!(interface = %name, %group, error = %e, "joining a solicited-node group failed; switches with MLD snooping may not forward solicitations here")
                    }
                }
            }
        }
    }

    /// Interfaces with an open socket.
    pub fn interfaces(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ifaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Replaces what this node answers for.
    pub fn set_table(&self, table: Table) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = table;
        self.sync_groups();
    }

    /// Tells the segment that `ip` is here now: gratuitous ARP or unsolicited NA on the
    /// interfaces given (empty = all).
    pub fn announce(&self, ip: IpAddr, on: &BTreeSet<String>) {
        let ifaces = self.ifaces.lock().unwrap_or_else(|e| e.into_inner());
        for (name, iface) in ifaces.iter() {
            if !on.is_empty() && !on.contains(name) {
                continue;
            }
            let frame = match ip {
                IpAddr::V4(a) => frames::gratuitous_arp(iface.mac, a),
                IpAddr::V6(a) => frames::unsolicited_neighbor_advert(iface.mac, a, a),
            };
            let mut tx = iface.tx.lock().unwrap_or_else(|e| e.into_inner());
            match tx.send_to(&frame, None) {
                Some(Ok(())) => {
                    self.stats.announcements.inc();
                }
                Some(Err(e)) => {
                    tracing::warn!(interface = %name, %ip, error = %e, "gratuitous ARP/NA failed")
                }
                None => {}
            }
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        for i in self
            .ifaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            i.stop.store(true, Ordering::Relaxed);
        }
    }
}
