//! The sockets a process holds for passing on: inherited ones not yet claimed
//! by the service, and copies of every listener for a successor.

use std::os::fd::OwnedFd;

use crate::endpoint::Endpoint;
use crate::error::ListenError;
use crate::inherit::InheritedSocket;

/// Sockets this process holds for passing on.
#[derive(Debug)]
pub(crate) struct Registry {
    /// Inherited and not claimed by `listen` yet.
    unclaimed: Vec<InheritedSocket>,
    /// Claimed or bound, by name; copies kept to give to a successor.
    passed: Vec<(String, OwnedFd)>,
}

impl Registry {
    pub(crate) fn new(inherited: Vec<InheritedSocket>) -> Self {
        Registry {
            unclaimed: inherited,
            passed: Vec::new(),
        }
    }

    /// Takes the inherited socket for `name`: by name, else one bound to
    /// exactly `endpoint`; `None` if there is none (bind a fresh one).
    pub(crate) fn claim(
        &mut self,
        name: &str,
        endpoint: &Endpoint,
    ) -> Result<Option<InheritedSocket>, ListenError> {
        if self.passed.iter().any(|(n, _)| n == name) {
            return Err(ListenError::DuplicateName(name.to_owned()));
        }
        if let Some(index) = self.unclaimed.iter().position(|s| s.name == name) {
            let same_kind = matches!(
                (&self.unclaimed[index].endpoint, endpoint),
                (Endpoint::Tcp(_), Endpoint::Tcp(_)) | (Endpoint::Unix(_), Endpoint::Unix(_))
            );
            if !same_kind {
                let socket = &self.unclaimed[index];
                return Err(ListenError::KindMismatch {
                    name: name.to_owned(),
                    source_desc: socket.source.describe(),
                    inherited: socket.endpoint.clone(),
                    wanted: endpoint.clone(),
                });
            }
            return Ok(Some(self.unclaimed.remove(index)));
        }
        let exact = |s: &InheritedSocket| match (&s.endpoint, endpoint) {
            (Endpoint::Tcp(have), Endpoint::Tcp(want)) => want.port() != 0 && have == want,
            (Endpoint::Unix(have), Endpoint::Unix(want)) => have == want,
            _ => false,
        };
        Ok(self
            .unclaimed
            .iter()
            .position(exact)
            .map(|index| self.unclaimed.remove(index)))
    }

    /// " (inherited but not claimed: …)" for error messages, or nothing.
    pub(crate) fn unclaimed_hint(&self) -> String {
        if self.unclaimed.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self
            .unclaimed
            .iter()
            .map(|s| {
                format!(
                    "{} (named `{}`, from {})",
                    s.endpoint,
                    s.name,
                    s.source.describe()
                )
            })
            .collect();
        format!(" (inherited but not claimed: {})", list.join(", "))
    }

    /// Closes inherited sockets the service did not claim, with a warning each.
    pub(crate) fn close_unclaimed(&mut self) {
        for socket in self.unclaimed.drain(..) {
            tracing::warn!(
                endpoint = %socket.endpoint,
                name = socket.name,
                "closing a socket inherited from {}: the service did not listen on it",
                socket.source.describe()
            );
        }
    }

    /// Forgets every socket (draining: nothing more is passed on).
    pub(crate) fn clear(&mut self) {
        self.unclaimed.clear();
        self.passed.clear();
    }

    /// Keeps a copy of a listener to pass to successors under `name`.
    pub(crate) fn register(&mut self, name: &str, fd: OwnedFd) {
        self.passed.push((name.to_owned(), fd));
    }

    /// `(name, endpoint)` of the inherited sockets not claimed yet.
    pub(crate) fn unclaimed(&self) -> Vec<(String, Endpoint)> {
        self.unclaimed
            .iter()
            .map(|s| (s.name.clone(), s.endpoint.clone()))
            .collect()
    }

    /// Copies of the listeners for a successor, in registration order.
    pub(crate) fn successor_fds(&self) -> std::io::Result<Vec<(String, OwnedFd)>> {
        self.passed
            .iter()
            .map(|(name, fd)| Ok((name.clone(), fd.try_clone()?)))
            .collect()
    }
}
