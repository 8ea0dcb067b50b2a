//! Where per-channel alert-rule overrides are kept across restarts.
//!
//! [`RuleOverrides`] is the seam: the catalog (issue 6) can implement it over its
//! database; until then [`FileRuleOverrides`] keeps every override in one JSON file
//! under `data_dir`, replaced atomically (write a temporary file, fsync, rename, fsync
//! the directory), so a crash leaves either the old or the new file, never half of one.

use crate::AggregatorError;
use pulse_schemas::{AlertRules, Id};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Durable per-channel alert rules.
pub trait RuleOverrides: Send + Sync + 'static {
    /// Every stored override.
    fn load_all(&self) -> Result<BTreeMap<Id, AlertRules>, AggregatorError>;
    /// Stores `channel`'s rules durably before returning.
    fn save(&self, channel: &Id, rules: &AlertRules) -> Result<(), AggregatorError>;
}

/// Overrides in `<data_dir>/alert_rules.json`.
#[derive(Debug)]
pub struct FileRuleOverrides {
    path: PathBuf,
    max_channels: usize,
    /// The file's content (loaded once, written whole).
    all: Mutex<BTreeMap<Id, AlertRules>>,
}

fn io(path: &Path, e: std::io::Error) -> AggregatorError {
    AggregatorError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

impl FileRuleOverrides {
    /// Opens (reading it when present) `dir/alert_rules.json`.
    pub fn open(dir: &Path, max_channels: usize) -> Result<Self, AggregatorError> {
        let path = dir.join("alert_rules.json");
        let all = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                AggregatorError::Config(format!(
                    "{}: not a map of channel → alert rules: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(&path, e)),
        };
        Ok(FileRuleOverrides {
            path,
            max_channels,
            all: Mutex::new(all),
        })
    }
}

impl RuleOverrides for FileRuleOverrides {
    fn load_all(&self) -> Result<BTreeMap<Id, AlertRules>, AggregatorError> {
        self.all
            .lock()
            .map(|m| m.clone())
            .map_err(|_| AggregatorError::Runtime("rule overrides lock poisoned".into()))
    }

    fn save(&self, channel: &Id, rules: &AlertRules) -> Result<(), AggregatorError> {
        let mut all = self
            .all
            .lock()
            .map_err(|_| AggregatorError::Runtime("rule overrides lock poisoned".into()))?;
        if !all.contains_key(channel) && all.len() >= self.max_channels {
            return Err(AggregatorError::Config(format!(
                "at most {} channels may override alert rules",
                self.max_channels
            )));
        }
        let mut next = all.clone();
        next.insert(channel.clone(), rules.clone());
        let bytes = serde_json::to_vec_pretty(&next)
            .map_err(|e| AggregatorError::Runtime(format!("alert rules to JSON: {e}")))?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io(&self.path, e))?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        *all = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileRuleOverrides::open(dir.path(), 10).expect("open");
        assert!(store.load_all().expect("load").is_empty());
        let rules = AlertRules {
            bitrate_warning_pct: 60.0,
            ..AlertRules::default()
        };
        store.save(&Id::new_unchecked("c1"), &rules).expect("save");
        let again = FileRuleOverrides::open(dir.path(), 10).expect("reopen");
        assert_eq!(
            again
                .load_all()
                .expect("load")
                .get(&Id::new_unchecked("c1")),
            Some(&rules)
        );
        let full = FileRuleOverrides::open(dir.path(), 1).expect("reopen");
        assert!(full.save(&Id::new_unchecked("c2"), &rules).is_err());
    }
}
