pub mod archival;
pub mod clips;
pub mod crash;
pub mod platform;
pub mod vods;
