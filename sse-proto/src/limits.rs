//! The shape every size-limit type of the crate shares ([`Limits`](crate::Limits),
//! [`HeadLimits`](crate::http1::HeadLimits), [`BodyLimits`](crate::http1::BodyLimits)):
//! a `Copy` struct of byte (or count) bounds with a default for each, a
//! chainable setter and a getter.

/// Defines a size-limit type: for each field, its setter (the field's
/// name, taking the new bound), its getter and its default.
macro_rules! size_limits {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$setter_doc:meta])*
                $field:ident: $default:expr, $getter:ident, $getter_doc:literal;
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            $($field: usize,)+
        }

        impl Default for $name {
            fn default() -> $name {
                $name {
                    $($field: $default,)+
                }
            }
        }

        impl $name {
            $(
                $(#[$setter_doc])*
                pub fn $field(mut self, bound: usize) -> $name {
                    self.$field = bound;
                    self
                }

                #[doc = $getter_doc]
                pub fn $getter(&self) -> usize {
                    self.$field
                }
            )+
        }
    };
}
pub(crate) use size_limits;
