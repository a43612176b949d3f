//! Closed sets of names stored as text columns and sent as JSON strings
//! (`budgets.period`, `alert_rules.kind`, `policies.action`, ...): one enum
//! each, declared with [`vocabulary!`], so a name is spelled once and a
//! `match` on it is checked by the compiler.

use std::fmt;

/// An enum whose variants are the names of a text column.
pub trait Vocabulary: Copy + PartialEq + fmt::Debug + 'static {
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// What the names are of, for messages (`period`, `rule kind`).
    const WHAT: &'static str;
    /// The stored name.
    fn as_str(self) -> &'static str;

    /// The variant named `s`.
    fn parse(s: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName {
                what: Self::WHAT,
                name: s.to_owned(),
                expected: Self::names(),
            })
    }

    /// Every name, comma-separated (`day, week, month`).
    fn names() -> String {
        Self::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A name outside a [`Vocabulary`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not one of {expected}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub expected: String,
}

/// Declare a [`Vocabulary`] enum: `Display`, `FromStr` and serde as the
/// stored names.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl $crate::vocabulary::Vocabulary for $name {
            const ALL: &'static [$name] = $name::ALL;
            const WHAT: &'static str = $what;
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocabulary::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$name as $crate::vocabulary::Vocabulary>::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use vocabulary;

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    vocabulary! {
        /// For the test.
        pub enum Colour ("colour") {
            Red = "red",
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), *c);
        }
        assert_eq!(Colour::DarkBlue.to_string(), "dark_blue");
        let e = "blue".parse::<Colour>().unwrap_err();
        assert_eq!(e.to_string(), "`blue` is not one of red, dark_blue");
        assert_eq!(e.what, "colour");
        assert!(serde_json::from_str::<Colour>("\"blue\"").is_err());
    }
}
