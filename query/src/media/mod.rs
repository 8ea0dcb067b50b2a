//! Media jobs (DESIGN.md decision 6): [`ffmpeg`] runs the cuts and thumbnails
//! ([`smart_cut`]: copy the whole segments, re-encode only the edges),
//! [`store`] keeps the results in an `object_store` (a local directory by default, an
//! S3-compatible bucket configured by [`s3`]),
//! [`workers`] is the bounded worker pool over the catalog's durable job queue,
//! [`retention`] removes expired VODs and their files.

pub mod ffmpeg;
pub mod retention;
pub mod s3;
pub mod smart_cut;
pub mod store;
pub mod workers;

pub use s3::S3Config;
pub use store::MediaStore;
pub use workers::{MediaPool, spawn_pool};
