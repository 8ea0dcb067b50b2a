//! Media jobs (DESIGN.md decision 6): [`ffmpeg`] runs the cuts and thumbnails,
//! [`store`] keeps the results in an `object_store` (a local directory by default),
//! [`workers`] is the bounded worker pool over the catalog's durable job queue,
//! [`retention`] removes expired VODs and their files.

pub mod ffmpeg;
pub mod retention;
pub mod store;
pub mod workers;

pub use store::MediaStore;
pub use workers::{MediaPool, spawn_pool};
