//! Test and benchmark traffic. Tools only: allocates freely, never used on the data
//! path, and deterministic (the same arguments give the same bytes).
//!
//! * `frames`: frame builders and the seed scenario's capture.
//! * `dist`: how labels are drawn (single, uniform, Zipf) and the PRNG.
//! * `profile`: traffic profiles (TOML) and [`Profile::generate`], the one generator.
//! * `synth`: `popgo gen synth` traffic as a built-in profile, and its config.

pub mod dist;
pub mod frames;
pub mod profile;
pub mod synth;

pub use dist::{LabelDist, Rng};
pub use profile::{Profile, ProfileError, Summary};
pub use synth::{synth_config, Synth};
