//! The binary's subcommands, one file each. Declared by main.rs only: none of this is part of
//! the library.

pub mod export;
pub mod lifecycle;
pub mod run;
