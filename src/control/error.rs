//! Why the control plane refused a line or a commit: [`CommitError`], turned into text
//! only in the reply.

use crate::config::edit::EditError;
use crate::ilm::BuildError;

/// A session's line or commit (or a reload) that was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// An edit the rules refuse.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// A pending line no longer applies: another commit changed the running config.
    #[error(
        "line {line} ({text:?}) no longer applies to the running configuration (generation {generation}): {cause}"
    )]
    Stale { line: u64, text: String, generation: u64, cause: EditError },
    /// The new tables do not build.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Replaced tables wait for a worker that does not pass a quiescent state.
    #[error(
        "{pending} replaced tables still wait for a worker that has not passed a quiescent state (a stalled \
         worker?); try again later"
    )]
    Stalled { pending: usize },
    /// A reload that changes the ports.
    #[error(
        "the ports or their interfaces changed: restart popgo to change them (labels, routes, networks, neighbors \
         and pop-go apply live)"
    )]
    PortsChanged,
    /// `undo ip route-static vpn-instance NAME PREFIX` when there is no such route.
    #[error("no static route to {prefix} in VPN instance {instance}")]
    NoVpnRoute { prefix: crate::config::Prefix, instance: String },
    /// `undo ip route-static PREFIX` when there is no such route.
    #[error("no static route to {0}")]
    NoRoute(crate::config::Prefix),
}
