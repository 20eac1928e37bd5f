//! `Matched`: the rules that selected an object, kept in a row without an
//! allocation (a plan or report may hold tens of thousands of rows).

use serde::{Deserialize, Serialize};

use super::Criterion;

/// The criteria that selected an object, in the order they first matched,
/// without repeats. There are five criteria, so the list is packed into a
/// `u16`, three bits a slot (0 ends the list, n is variant n - 1).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Matched(u16);

const ALL: [Criterion; 5] = [
    Criterion::Label,
    Criterion::Age,
    Criterion::All,
    Criterion::Pressure,
    Criterion::Watermark,
];

fn code(c: Criterion) -> u16 {
    ALL.iter().position(|&a| a == c).map_or(0, |i| i as u16 + 1)
}

impl Matched {
    pub(crate) fn of(c: Criterion) -> Self {
        Matched(code(c))
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Criterion> {
        (0..ALL.len())
            .map(move |slot| (self.0 >> (3 * slot)) & 0b111)
            .take_while(|&code| code != 0)
            .map(|code| ALL[usize::from(code) - 1])
    }

    pub(crate) fn len(self) -> usize {
        self.iter().count()
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn contains(self, c: Criterion) -> bool {
        self.iter().any(|m| m == c)
    }

    /// Appends `c` unless it is already in the list.
    pub(crate) fn push(&mut self, c: Criterion) {
        if !self.contains(c) {
            self.0 |= code(c) << (3 * self.len());
        }
    }
}

impl FromIterator<Criterion> for Matched {
    fn from_iter<I: IntoIterator<Item = Criterion>>(iter: I) -> Self {
        let mut m = Matched::default();
        for c in iter {
            m.push(c);
        }
        m
    }
}

impl<const N: usize> PartialEq<[Criterion; N]> for Matched {
    fn eq(&self, other: &[Criterion; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl std::fmt::Debug for Matched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Matched {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Matched {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Criterion>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Criterion::*;

    #[test]
    fn keeps_the_order_of_first_match_and_never_repeats() {
        let mut m = Matched::of(Watermark);
        m.push(Label);
        m.push(Watermark);
        m.push(Age);
        assert_eq!(m, [Watermark, Label, Age]);
        assert_eq!(m.len(), 3);
        assert!(m.contains(Label) && !m.contains(All));
        let every: Matched = [Pressure, All, Watermark, Age, Label, All]
            .into_iter()
            .collect();
        assert_eq!(every, [Pressure, All, Watermark, Age, Label]);
        assert!(Matched::default().is_empty());
    }

    #[test]
    fn serializes_as_the_list_of_rule_names() {
        let m: Matched = [Age, Label].into_iter().collect();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"["age","label"]"#);
        let back: Matched = serde_json::from_str(r#"["age","label","age"]"#).unwrap();
        assert_eq!(back, [Age, Label]);
        assert_eq!(std::mem::size_of::<Matched>(), 2);
    }
}
