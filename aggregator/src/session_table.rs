//! `SessionTable`: one target's open sessions, found by their id.
//!
//! A hash table of the sessions themselves (`hashbrown::HashTable`), each found by the
//! id it carries, rather than a map from a copy of the id to the session: the id a
//! lookup compares then lies in the session's own lines, read next anyway, instead of
//! a fifth line of its own (an entry is 256 bytes, not 320).
//!
//! [`SessionTable::prefetch`] asks for the lines of a session that is about to be
//! committed without waiting for them (the crate's `prefetch` hints): the commit
//! order jumps from session to session across megabytes, and finding the session was
//! the aggregator's largest stall, one miss after another. It takes the first entry
//! whose 7-bit hash tag matches: it reads the table's tag bytes but compares no key,
//! so it waits for no session. That entry is the session but in a few percent of
//! probes (another entry's tag matching first, about 1 in 128 per full slot probed
//! before it) and for a session not in the table yet: then a useless line is
//! fetched, and nothing else happens.
//!
//! Written to a snapshot as a map from id to session (as before), so snapshots of
//! either form read back the same.

use crate::session::ViewSession;
use hashbrown::HashTable;
use pulse_schemas::Id;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use std::hash::BuildHasher;

#[derive(Clone, Default)]
pub struct SessionTable {
    table: HashTable<ViewSession>,
    /// Seeded at random per table (hash flooding), copied with it.
    hasher: foldhash::fast::RandomState,
}

impl SessionTable {
    fn hash(&self, id: &Id) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    #[inline]
    pub fn get_mut(&mut self, id: &Id) -> Option<&mut ViewSession> {
        let h = self.hash(id);
        self.table.find_mut(h, |s| s.session == *id)
    }

    pub fn get(&self, id: &Id) -> Option<&ViewSession> {
        self.table.find(self.hash(id), |s| s.session == *id)
    }

    /// Adds a session whose id is not in the table (the caller looked it up).
    pub fn insert_new(&mut self, s: ViewSession) {
        debug_assert!(self.get(&s.session).is_none(), "{} twice", s.session);
        let h = self.hash(&s.session);
        let hasher = &self.hasher;
        self.table
            .insert_unique(h, s, |s| hasher.hash_one(&s.session));
    }

    pub fn remove(&mut self, id: &Id) -> Option<ViewSession> {
        let h = self.hash(id);
        match self.table.find_entry(h, |s| s.session == *id) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&mut ViewSession) -> bool) {
        self.table.retain(|s| keep(s));
    }

    /// Empties the table, handing its sessions over.
    pub fn take_all(&mut self) -> Vec<ViewSession> {
        self.table.drain().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &ViewSession> {
        self.table.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ViewSession> {
        self.table.iter_mut()
    }

    /// Starts loading the session `id` names, if the table has one, without waiting.
    #[inline]
    pub fn prefetch(&self, id: &Id) {
        if let Some(s) = self.table.find(self.hash(id), |_| true) {
            crate::prefetch::first_bytes(s, crate::session::READ_BY_A_COMMIT);
        }
    }
}

impl PartialEq for SessionTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .values()
                .all(|s| other.get(&s.session).is_some_and(|o| o == s))
    }
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.values().map(|s| (&s.session, s)))
            .finish()
    }
}

impl Serialize for SessionTable {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut map = ser.serialize_map(Some(self.len()))?;
        for s in self.values() {
            map.serialize_entry(&s.session, s)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for SessionTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Sessions;
        impl<'de> Visitor<'de> for Sessions {
            type Value = SessionTable;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map from session id to session")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SessionTable, A::Error> {
                let mut t = SessionTable::default();
                while let Some((id, s)) = m.next_entry::<Id, ViewSession>()? {
                    if s.session != id {
                        return Err(serde::de::Error::custom(format!(
                            "expected the session under key {id} to have that id, got {}",
                            s.session
                        )));
                    }
                    if t.get(&id).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "expected each session once, got {id} twice"
                        )));
                    }
                    t.insert_new(s);
                }
                Ok(t)
            }
        }
        d.deserialize_map(Sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, ts: i64) -> ViewSession {
        let e = pulse_schemas::parse_event(&format!(
            r#"{{"type":"viewstart","ts":{ts},"viewer":"v-{id}","session":"{id}","stream":"st","channel":"c"}}"#
        ))
        .expect("a valid viewstart");
        ViewSession::begin(Id::new_unchecked(id), &e).0
    }

    fn table(ids: &[&str]) -> SessionTable {
        let mut t = SessionTable::default();
        for (i, id) in ids.iter().enumerate() {
            t.insert_new(session(id, i as i64));
        }
        t
    }

    #[test]
    fn finds_what_it_holds_by_id() {
        let ids: Vec<String> = (0..200).map(|i| format!("sess-{i:03}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut t = table(&refs);
        assert_eq!(t.len(), 200);
        for (i, id) in refs.iter().enumerate() {
            let got = t.get_mut(&Id::new_unchecked(id)).map(|s| s.start_ts);
            assert_eq!(got, Some(i as i64), "{id}");
            t.prefetch(&Id::new_unchecked(id));
        }
        t.prefetch(&Id::new_unchecked("absent"));
        assert!(t.get(&Id::new_unchecked("absent")).is_none());
        let gone = t.remove(&Id::new_unchecked("sess-007")).map(|s| s.session);
        assert_eq!(gone, Some(Id::new_unchecked("sess-007")));
        assert!(t.remove(&Id::new_unchecked("sess-007")).is_none());
        t.retain(|s| s.start_ts % 2 == 0);
        assert_eq!(t.len(), 100);
        assert!(t.values().all(|s| s.start_ts % 2 == 0));
        assert!(t.get(&Id::new_unchecked("sess-008")).is_some());
    }

    #[test]
    fn equality_ignores_layout_and_order() {
        let a = table(&["a", "b", "c"]);
        let mut b = SessionTable::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate().rev() {
            b.insert_new(session(id, i as i64));
        }
        assert_eq!(a, b);
        b.remove(&Id::new_unchecked("c"));
        assert_ne!(a, b);
        b.insert_new(session("c", 9));
        assert_ne!(a, b, "same ids, another session");
    }

    /// Written as the map from id to session that snapshots held before the table.
    #[test]
    fn snapshot_form_is_a_map_from_id_to_session() {
        let t = table(&["x", "y"]);
        let json = serde_json::to_value(&t).expect("serializes");
        let map = json.as_object().expect("an object");
        assert_eq!(map.len(), 2);
        assert_eq!(map["x"]["session"], "x");
        let back: SessionTable = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, t);

        let before: std::collections::HashMap<Id, ViewSession> =
            t.values().map(|s| (s.session.clone(), s.clone())).collect();
        let old = serde_json::to_string(&before).expect("serializes");
        let read: SessionTable = serde_json::from_str(&old).expect("reads the old form");
        assert_eq!(read, t);
    }

    #[test]
    fn a_session_under_another_id_is_refused() {
        let mut json = serde_json::to_value(table(&["x"])).expect("serializes");
        json["x"]["session"] = "y".into();
        let err = serde_json::from_value::<SessionTable>(json).expect_err("refused");
        assert!(err.to_string().contains("under key x"), "{err}");
    }
}
