//! Process tests of the Trivy runner.
