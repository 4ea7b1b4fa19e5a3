//! What the command line says, as plain values: each field that is set overrides the same
//! setting of the config file. The CLI builds one ([`crate::cli::RunArgs::overrides`]); the
//! settings never look at the CLI's types, so `settings` does not depend on `cli`.

use std::path::PathBuf;

use log::LevelFilter;

use super::{ListenAddr, Metrics};
use crate::proxy::{HostPort, NextHop};

/// Values given on the command line; `None` / empty / `false` leaves the setting alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The TOML file to read before the overrides apply.
    pub config: Option<PathBuf>,
    pub listen: Vec<ListenAddr>,
    pub advertise: Option<HostPort>,
    pub workers: Option<usize>,
    /// `true` turns Record-Route on; `false` leaves the file's choice.
    pub record_route: bool,
    pub next_hop: Option<NextHop>,
    pub metrics: Option<Metrics>,
    /// `true` turns contact rewriting on (with the file's `[rewrite-contact]` tuning, if any).
    pub rewrite_contact: bool,
    pub hgrm: Option<PathBuf>,
    pub log_level: Option<LevelFilter>,
}
