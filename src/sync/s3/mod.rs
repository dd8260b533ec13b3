//! Remote image files on S3-compatible object storage (AWS S3, Scaleway, OVHcloud, MinIO,
//! Garage…): `PUT {prefix}/{id}.jpg` streamed from disk and `DELETE`, signed with AWS
//! Signature Version 4 by the small signer in `sigv4` (no SDK). Both are idempotent: a repeated
//! PUT overwrites with the same bytes, a DELETE of a missing object is success.
//!
//! The payload is signed: the file is read once to compute its SHA-256, which goes into
//! `x-amz-content-sha256`, then streamed. The store verifies the body against it, so a
//! file truncated or changed on the way is refused rather than stored, plain-HTTP
//! endpoints (a MinIO on the LAN) work the same as HTTPS ones, and reading a capture twice
//! from local disk costs little next to sending it.
//!
//! Addressing: path style (`https://endpoint/bucket/key`) for custom endpoints (what
//! S3-compatible stores expect), virtual-hosted style (`https://bucket.s3.region…/key`) for
//! AWS itself; `path_style=` in the URL overrides either. HTTPS trusts the compiled-in
//! Mozilla roots (`webpki-roots`), like the OVH client, so the kiosk image needs no CA
//! bundle. Redirects are not followed: S3 answers a wrong region with a redirect, which is
//! reported (with its error code) instead.
//!
//! `config` parses `REMOTE_STORAGE_URL=s3://…` and the `AWS_*` defaults, `client`
//! makes the requests and words the store's refusals, `sigv4` signs them.

pub mod client;
pub mod config;
mod sigv4;

pub use client::S3;
pub use config::S3Config;
