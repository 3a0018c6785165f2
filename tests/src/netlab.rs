//! A network lab for partition tests: N hosts, each a network namespace with one veth into a
//! bridge in the test's own namespace, on a private /24 (`10.a.b.i`, the bridge is `.254`), so
//! the test reaches every host and the hosts reach each other. A partition between two hosts is
//! a pair of blackhole routes (each side drops what it sends to the other), healed by removing
//! them; nothing but iproute2 is needed. Names and subnet are random per lab, so labs of
//! parallel tests never meet; everything is removed on drop.
//!
//! Needs root (CAP_NET_ADMIN); [`NetLab::create`] says why when it cannot build the lab.

use std::net::Ipv4Addr;
use std::process::Command;

/// A set of namespaces on one bridge.
pub struct NetLab {
    tag: String,
    net: [u8; 2],
    hosts: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetLab {
    /// Builds `hosts` namespaces (1-based: host 1 is `ns(1)` at `addr(1)`).
    pub fn create(hosts: usize) -> Result<NetLab, String> {
        let r: u32 = rand::random();
        let lab = NetLab {
            tag: format!("gh{:06x}", r & 0xff_ffff),
            net: [200 + (r >> 24) as u8 % 50, (r >> 16) as u8],
            hosts,
        };
        lab.build().map(|()| lab)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The namespace of host `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    /// The address of host `i` (`0` for the test's side of the bridge).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        let last = if i == 0 { 254 } else { i as u8 };
        Ipv4Addr::new(10, self.net[0], self.net[1], last)
    }

    fn build(&self) -> Result<(), String> {
        let br = self.bridge();
        let gw = format!("{}/24", self.addr(0));
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &gw, "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 1..=self.hosts {
            let ns = self.ns(i);
            let (outer, inner) = (format!("{}h{i}", self.tag), format!("{}g{i}", self.tag));
            let cidr = format!("{}/24", self.addr(i));
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "master", &br])?;
            ip(&["link", "set", &outer, "up"])?;
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn blackhole(&self, op: &str, a: usize, b: usize) -> Result<(), String> {
        let to_b = format!("{}/32", self.addr(b));
        let to_a = format!("{}/32", self.addr(a));
        ip(&["-n", &self.ns(a), "route", op, "blackhole", &to_b])?;
        ip(&["-n", &self.ns(b), "route", op, "blackhole", &to_a])
    }

    /// Cuts hosts `a` and `b` off from each other (both directions); the others still reach
    /// both.
    pub fn partition(&self, a: usize, b: usize) {
        self.blackhole("add", a, b).expect("partition");
    }

    /// Makes `name` resolve, inside every host, to the addresses of all hosts (as a DNS name
    /// of a Kubernetes headless service does): `ip netns exec` reads `/etc/netns/<ns>/hosts`
    /// in place of `/etc/hosts`.
    pub fn name_all_hosts(&self, name: &str) {
        let mut hosts = String::from("127.0.0.1 localhost\n");
        for i in 1..=self.hosts {
            hosts.push_str(&format!("{} {name}\n", self.addr(i)));
        }
        for i in 1..=self.hosts {
            let dir = std::path::Path::new("/etc/netns").join(self.ns(i));
            std::fs::create_dir_all(&dir).expect("/etc/netns/<ns> is writable (root)");
            std::fs::write(dir.join("hosts"), &hosts).expect("hosts file written");
        }
    }

    /// Undoes [`NetLab::partition`].
    pub fn heal(&self, a: usize, b: usize) {
        self.blackhole("del", a, b).expect("heal");
    }
}

impl Drop for NetLab {
    fn drop(&mut self) {
        for i in 1..=self.hosts {
            let _ = ip(&["netns", "del", &self.ns(i)]);
            let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(self.ns(i)));
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
