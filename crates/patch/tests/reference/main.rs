//! Golden tests replaying the kube-apiserver 1.36 reference transcripts
//! (`/work/shared/reference/kube-apiserver-1.36`, files 00, 08, 10 and 11), and properties.

mod harness;
mod patch_sequence;
mod server_side_apply;
