//! Free loopback ports for the servers tests start as child processes (ClickHouse,
//! Pulse itself, Postgres, moto_server).
//!
//! `bind("127.0.0.1:0")` hands out a port from the kernel's ephemeral range
//! (32768–60999 here), and once that listener is closed the same port can be given to
//! any outgoing connection of a concurrent test before the child binds it: CI saw
//! ClickHouse exit with "Address already in use" that way. So ports are drawn at random
//! below the ephemeral range, where the kernel never picks local ports, and checked
//! bindable; callers that can see a failed bind retry with a new port.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

/// The range drawn from: above the well-known services, below `ip_local_port_range`.
const LOW: u16 = 20_000;
const HIGH: u16 = 32_700;

/// A port on 127.0.0.1 that was free a moment ago and is not in the ephemeral range.
pub fn free_port() -> u16 {
    static DRAW: AtomicU64 = AtomicU64::new(0);
    let seed = std::collections::hash_map::RandomState::new();
    for _ in 0..1_000 {
        let n = seed.hash_one((std::process::id(), DRAW.fetch_add(1, Ordering::Relaxed)));
        let port = LOW + (n % u64::from(HIGH - LOW)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{HIGH} after 1000 draws");
}

/// Whether a server's log says its port was taken: the caller starts it again on
/// another port.
pub fn port_was_taken(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("could not bind")
}
