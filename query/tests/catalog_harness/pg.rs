//! A throwaway PostgreSQL server: initdb into a temp dir, a free port, fsync off; run as
//! the `postgres` user when we are root (postgres refuses root); stopped on drop.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/need-postgres.sh installs it)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().expect("no /usr/lib/postgresql/*/bin/initdb")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…`, as the postgres user when we are root (setpriv execs, so the
/// child's pid is the program's own).
fn command(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub async fn start() -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success());
        }
        let data = dir.path().join("data");
        let out = command(bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port taken between the pick and postgres's bind makes it exit: pick again.
        for _attempt in 0..5 {
            let port = super::ports::free_port();
            let mut child = command(bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-p",
                    &port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                ])
                .args([
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                ])
                .arg(format!("unix_socket_directories={}", dir.path().display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start postgres");
            let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                use sqlx::Connection;
                let answered = sqlx::PgConnection::connect(&url).await.is_ok();
                // Exited: its port was taken (whoever answered is not ours).
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if answered {
                    return Postgres { port, dir, child };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("postgres did not accept connections within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("postgres exited at start five times (port taken?)");
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_db(&self, name: &str) -> String {
        use sqlx::{Connection, Executor};
        let mut c = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect");
        c.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        c.close().await.expect("close");
        self.url(name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (rolls back, disconnects, exits).
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}
