//! Shared test harness: the real daemon binary, real PostgreSQL, real nginx (WebDAV), a
//! fault-injecting TCP proxy, an OVH-faithful SMS server, and generated images.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]
pub mod daemon;
pub mod images;
pub mod nginx;
pub mod ovh;
pub mod pg;
pub mod pgbouncer;
pub mod proxy;
pub mod s3;
pub mod share;
