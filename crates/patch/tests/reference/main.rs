//! Golden tests replaying the kube-apiserver 1.36 reference transcripts
//! (`/work/shared/reference/kube-apiserver-1.36`, files 00, 08, 10 and 11), and properties.

#![allow(clippy::result_large_err)]

mod harness;
mod creates_and_updates;
mod patch_sequence;
mod properties;
mod server_side_apply;
