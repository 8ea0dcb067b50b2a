//! Where generated media lives: an `object_store` — a local directory by default, an
//! S3-compatible bucket (R2) when `[media_s3]` names one — and the base URL its links use.
//! Files made by ffmpeg in a temp directory are streamed up (one PUT up to `part_bytes`,
//! a multipart upload beyond, aborted when a part fails).

use crate::QueryError;
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

use super::s3::S3Config;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The media object store and its public base URL (cheap to clone).
#[derive(Clone, Debug)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    base_url: String,
    part_bytes: usize,
}

impl MediaStore {
    /// A store in the local directory `dir` (created when missing).
    pub fn local(dir: &Path, base_url: &str) -> Result<MediaStore, QueryError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| QueryError::Media(format!("creating {}: {e}", dir.display())))?;
        let fs = LocalFileSystem::new_with_prefix(dir)?;
        Ok(MediaStore::new(Arc::new(fs), base_url))
    }

    /// The configured store: the bucket of `s3` when it names one (links under its
    /// `public_url`, or `base_url` when that is empty), else the local directory `dir`.
    pub fn from_config(
        dir: &Path,
        base_url: &str,
        s3: &S3Config,
    ) -> Result<MediaStore, QueryError> {
        if !s3.enabled() {
            return MediaStore::local(dir, base_url);
        }
        let base = if s3.public_url.is_empty() {
            base_url
        } else {
            &s3.public_url
        };
        let mut store = MediaStore::new(s3.build()?, base);
        store.part_bytes = s3.part_bytes.max(1);
        Ok(store)
    }

    /// Any object store (S3/R2 via `object_store`'s own builders).
    pub fn new(store: Arc<dyn ObjectStore>, base_url: &str) -> MediaStore {
        MediaStore {
            store,
            base_url: base_url.trim_end_matches('/').to_owned(),
            part_bytes: S3Config::default().part_bytes,
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

    /// Uploads a local file as `key`: one PUT when it fits in `part_bytes`, else a
    /// multipart upload (aborted on a failed part, so no half object is left behind).
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<(), QueryError> {
        let io_err =
            |e: std::io::Error| QueryError::Media(format!("reading {}: {e}", file.display()));
        let store_err = |e: object_store::Error| {
            QueryError::Media(format!("object store: uploading {key}: {e}"))
        };
        let path = ObjectPath::from(key);
        let mut f = tokio::fs::File::open(file).await.map_err(io_err)?;
        let size = f.metadata().await.map_err(io_err)?.len();
        if size <= self.part_bytes as u64 {
            let mut data = Vec::with_capacity(size as usize);
            f.read_to_end(&mut data).await.map_err(io_err)?;
            self.store
                .put(&path, PutPayload::from(Bytes::from(data)))
                .await
                .map_err(store_err)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await.map_err(store_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        let mut buf = vec![0u8; self.part_bytes.min(1024 * 1024)];
        let sent: Result<(), QueryError> = async {
            loop {
                let n = f.read(&mut buf).await.map_err(io_err)?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(store_err)?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => {
                writer.finish().await.map_err(store_err)?;
                Ok(())
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(key, error = %abort, "could not abort a multipart upload");
                }
                Err(e)
            }
        }
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
