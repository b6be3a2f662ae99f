//! SIGINT and SIGTERM during `dragnet scan`: the first signal asks the run to stop — no new scan
//! starts, running Trivy children are killed (dropping a scan kills its process group), and what
//! finished is written — and a second one exits at once, for a run that will not stop.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::exit::Exit;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// SIGINT, as Ctrl-C sends it.
    Interrupt,
    /// SIGTERM, as CI runners and `kill` send it.
    Terminate,
}

impl Stop {
    /// The signal's name, for messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
        }
    }

    /// The exit code a run stopped this way ends with.
    pub(super) fn exit(self) -> Exit {
        match self {
            Stop::Interrupt => Exit::Interrupted,
            Stop::Terminate => Exit::Terminated,
        }
    }

    /// The cause recorded for a target that was not scanned because of this signal.
    pub(super) fn cause(self) -> String {
        format!(
            "interrupted: dragnet received {} before this image's scan finished; run the scan \
             again to cover it",
            self.name()
        )
    }
}

/// Listens for SIGINT and SIGTERM from the moment it is made.
pub(super) struct Interrupt {
    received: watch::Receiver<Option<Stop>>,
}

impl Interrupt {
    /// Installs the handlers; from now on the signals no longer kill the process outright.
    pub(super) fn listen() -> std::io::Result<Interrupt> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let (sender, received) = watch::channel(None);
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = interrupt.recv() => Stop::Interrupt,
                _ = terminate.recv() => Stop::Terminate,
            };
            tracing::warn!(
                "received {}: starting no new scans, stopping the running ones and writing what \
                 finished (send it again to exit at once)",
                first.name()
            );
            let _ = sender.send(Some(first));

            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("dragnet: a second signal: exiting now, without writing results");
            std::process::exit(first.exit().code());
        });
        Ok(Interrupt { received })
    }

    /// The signal received so far, if any.
    pub(super) fn received(&self) -> Option<Stop> {
        *self.received.borrow()
    }

    /// Resolves when a signal arrives (at once if one already has).
    pub(super) async fn wait(&self) -> Stop {
        let mut received = self.received.clone();
        loop {
            if let Some(stop) = *received.borrow_and_update() {
                return stop;
            }
            if received.changed().await.is_err() {
                // The listener is gone; no signal can arrive any more.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Interrupt {
    /// Runs `work` unless a signal arrives first; then `work` is dropped (killing any Trivy
    /// child it runs) and the signal is returned.
    pub(super) async fn until<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Stop> {
        tokio::select! {
            done = work => Ok(done),
            stop = self.wait() => Err(stop),
        }
    }
}

impl Stop {
    /// The failure that ends a run stopped before any image was scanned: nothing is written.
    pub(super) fn before_results(self) -> super::Failure {
        super::Failure {
            error: anyhow::anyhow!(
                "interrupted by {} before any image was scanned; nothing was written",
                self.name()
            ),
            exit: self.exit(),
        }
    }
}
