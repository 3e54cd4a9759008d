//! Test and benchmark traffic: frame builders, the seed scenario's capture, synthetic
//! label streams and TOML traffic profiles.

pub mod gen;
pub mod profile;
