//! Cluster DNS (crate `dns`) against a real `switchboard server` and its controllers, asked
//! with the real `dig`: every record of the Kubernetes DNS specification over UDP and TCP,
//! forwarding to a real upstream (dnsmasq), changes answered within a second of the API
//! write, malformed packets, and serving on while the API server is gone. The DNS server runs
//! in this process on an ephemeral loopback port; `netns` reaches it through 10.43.0.10 from a
//! client namespace via the agent's proxy.

mod changes;
mod malformed;
mod netns;
mod records;
mod support;
