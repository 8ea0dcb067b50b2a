//! Where generated media lives: an `object_store` (a local directory by default) and
//! the base URL it is served under.

use crate::QueryError;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::path::Path;
use std::sync::Arc;

/// The media object store and its public base URL (cheap to clone).
#[derive(Clone, Debug)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    base_url: String,
}

impl MediaStore {
    /// A store in the local directory `dir` (created when missing).
    pub fn local(dir: &Path, base_url: &str) -> Result<MediaStore, QueryError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| QueryError::Media(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)?;
        Ok(MediaStore::new(Arc::new(fs), base_url))
    }

    /// Any object store (S3/R2 via `object_store`'s own builders).
    pub fn new(store: Arc<dyn ObjectStore>, base_url: &str) -> MediaStore {
        MediaStore {
            store,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The public URL of `key`.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.base_url)
    }

    /// The key of a URL made by [`MediaStore::url`], `None` for other URLs.
    pub fn key_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        url.strip_prefix(&self.base_url)?.strip_prefix('/')
    }

    /// Uploads a local file as `key`.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), QueryError> {
        let data = tokio::fs::read(file)
            .await
            .map_err(|e| QueryError::Media(format!("reading {}: {e}", file.display())))?;
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(Bytes::from(data)))
            .await?;
        Ok(())
    }

    /// Reads `key`; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, QueryError> {
        let path =
            ObjectPath::parse(key).map_err(|e| QueryError::invalid("path", format!("{e}")))?;
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes `key` (missing is fine).
    pub async fn delete(&self, key: &str) -> Result<(), QueryError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
