//! The server under test: `--target http://127.0.0.1:PORT` only. Anything that is not a
//! loopback address is refused, so a load generator cannot be pointed at someone else.

use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};

/// Where the server listens: a loopback socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
}

impl Target {
    /// Parses `http://127.0.0.1:PORT` (also `http://localhost:PORT`, `http://[::1]:PORT`,
    /// a trailing `/`). Refuses other schemes, paths and every non-loopback host.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let rest = url.strip_prefix("http://").with_context(|| {
            format!("--target must look like http://127.0.0.1:PORT, got {url:?} (only plain http on loopback)")
        })?;
        let hostport = rest.strip_suffix('/').unwrap_or(rest);
        if hostport.contains('/') || hostport.contains('?') || hostport.contains('@') {
            bail!("--target must be http://HOST:PORT without a path or credentials, got {url:?}");
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.is_empty() => (h, p),
            _ => bail!("--target needs an explicit port (http://127.0.0.1:PORT), got {url:?}"),
        };
        let port: u16 = port
            .parse()
            .with_context(|| format!("--target port {port:?} is not a port number"))?;
        let ip: IpAddr = match host {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            h => {
                let h = h
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(h);
                h.parse().map_err(|_| {
                    anyhow::anyhow!("--target host {host:?} refused: the load generator only targets a loopback address (127.0.0.1, ::1, localhost)")
                })?
            }
        };
        if !ip.is_loopback() {
            bail!(
                "--target {url:?} refused: {ip} is not a loopback address; the load generator only targets 127.0.0.0/8 or ::1"
            );
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
        })
    }

    /// `http://ADDR` (no trailing slash).
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR/v1/beacons`.
    pub fn beacons_url(&self) -> String {
        format!("ws://{}/v1/beacons", self.addr)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        let t = Target::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.beacons_url(), "ws://127.0.0.1:8080/v1/beacons");
        assert_eq!(t.http_base(), "http://127.0.0.1:8080");
        assert!(Target::parse("http://localhost:9/").is_ok());
        assert!(Target::parse("http://[::1]:9").is_ok());
        assert!(Target::parse("http://127.3.4.5:9").is_ok());
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com:80",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/x",
            "http://0.0.0.0:8080",
        ] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--target"), "{bad}: {e}");
        }
        let e = Target::parse("http://192.168.1.2:80")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a loopback"), "{e}");
    }
}
