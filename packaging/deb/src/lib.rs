//! Holds the metadata of the Debian package `mb-2fa` (`[package.metadata.deb]`
//! in this crate's `Cargo.toml`); there is no code here. Build the package with
//! `cargo deb -p mb-2fa`.
