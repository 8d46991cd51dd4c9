//! For the targets that compile URL patterns (`selector`, `hub_request`).
//!
//! libFuzzer's panic hook aborts on every panic, also one that is caught.
//! `Selector::url_pattern` catches the `urlpattern` crate's own panics (an
//! arithmetic overflow in its parser, in builds with overflow checks, as
//! the fuzz builds are) and refuses the pattern. [`urlpattern_panics`]
//! lets those through to be caught, and keeps aborting on any other panic
//! (ours above all).

/// Installs the hook (once).
pub fn urlpattern_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let theirs = info
                .location()
                .is_some_and(|l| l.file().contains("/urlpattern-"));
            if !theirs {
                fuzzer_hook(info);
            }
        }));
    });
}
