//! A throwaway `clickhouse-server` (Debian's package, `scripts/need-clickhouse.sh`) for
//! tests: its own config file, free ports on 127.0.0.1, a temporary data directory,
//! killed on drop. As root it runs as the `clickhouse` system user (setpriv), because
//! the server refuses to run as root in some setups. [`ClickHouse::kill`] and
//! [`ClickHouse::restart`] simulate an outage on the same ports and data.

use super::ports::{free_port, port_was_taken};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ClickHouse {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub http_port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn config(dir: &Path, http: u16, tcp: u16) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/data/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <uncompressed_cache_size>8589934</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
"#
    )
}

const USERS: &str = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users><default><password></password><networks><ip>::/0</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"#;

impl ClickHouse {
    /// Starts a server and waits until it answers `SELECT 1`; if one of its ports was
    /// taken in the meantime, starts it again on new ones.
    pub fn start() -> ClickHouse {
        let mut attempt = 0;
        loop {
            let mut me = ClickHouse::prepare();
            match me.try_restart() {
                Ok(()) => return me,
                Err(log) if port_was_taken(&log) && attempt < 5 => attempt += 1,
                Err(log) => panic!("clickhouse-server exited:\n{log}"),
            }
        }
    }

    /// A data directory and config on two free ports; no process yet.
    fn prepare() -> ClickHouse {
        let dir = tempfile::tempdir().expect("tempdir");
        let http_port = free_port();
        let tcp_port = free_port();
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::write(
            dir.path().join("config.xml"),
            config(dir.path(), http_port, tcp_port),
        )
        .expect("config");
        std::fs::write(dir.path().join("users.xml"), USERS).expect("users");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "clickhouse:clickhouse"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown of the ClickHouse test directory");
        }
        ClickHouse {
            child: None,
            dir,
            http_port,
        }
    }

    /// The server's process id (setpriv execs it, so it is the server's own).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.xml")
    }

    /// Starts the server process (again) on the same ports and data; waits until ready.
    pub fn restart(&mut self) {
        if let Err(log) = self.try_restart() {
            panic!("clickhouse-server exited:\n{log}");
        }
    }

    /// [`ClickHouse::restart`], answering the server's log if it exited instead.
    fn try_restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "already running");
        let config = format!("--config-file={}", self.config_path().display());
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=clickhouse",
                "--regid=clickhouse",
                "--init-groups",
                "clickhouse-server",
            ]);
            c
        } else {
            Command::new("clickhouse-server")
        };
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let child = cmd
            .arg(config)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("clickhouse-server runs (scripts/need-clickhouse.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let answered = self.sql("SELECT 1").is_ok_and(|s| s.trim() == "1");
            // Checked after the answer: a server that exited because its port was taken
            // is not the one that answered.
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                let log =
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
                return Err(format!("{status}\n{log}"));
            }
            if answered {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "clickhouse-server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server process (SIGKILL) and waits for it: an outage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs one statement over HTTP (POST, so DDL works) and returns the body.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.http_port))
            .map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            conn,
            "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{sql}",
            sql.len()
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        if head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200") {
            Ok(body.to_owned())
        } else {
            Err(format!("{head}\n{body}"))
        }
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}
