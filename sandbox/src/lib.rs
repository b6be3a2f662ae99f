//! dragnet's local sandbox: a GitHub API emulator, Debian's `docker-registry` in open, basic and
//! token modes, test images carrying real package databases, and a Trivy vulnerability DB built
//! with the real BoltDB library. Used by the tests and the local demo, never by the product.

pub mod faults;
pub mod fixture;
pub mod github;
pub mod oci;
pub mod registry;
pub mod sandbox;
pub mod scale;
pub mod synthetic;
pub mod token;
