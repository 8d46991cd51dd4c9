//! What the unit tests share.

use proptest::test_runner::Config as ProptestConfig;

/// A property test's configuration: `cases` cases, or two under Miri,
/// which interprets every step and has no file system to keep failing
/// cases in.
pub(crate) fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { cases },
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}
