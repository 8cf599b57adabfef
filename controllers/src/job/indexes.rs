//! Completion indexes as upstream writes them in `status.completedIndexes` and
//! `status.failedIndexes`: sorted, merged intervals such as `1,3-5`.

use std::collections::BTreeSet;
use std::fmt;

/// A set of completion indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexes(BTreeSet<u32>);

impl Indexes {
    /// Reads an interval string, keeping only indexes below `completions`. Malformed parts are
    /// skipped, like upstream, so a hand-edited status cannot stop the controller.
    pub fn parse(text: &str, completions: u32) -> Self {
        let mut set = BTreeSet::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u32>(), b.trim().parse::<u32>()),
                None => (part.parse::<u32>(), part.parse::<u32>()),
            };
            let (Ok(first), Ok(last)) = (first, last) else { continue };
            if first > last {
                continue;
            }
            set.extend((first..=last.min(completions.saturating_sub(1))).take_while(|i| *i < completions));
        }
        Self(set)
    }

    pub fn contains(&self, index: u32) -> bool {
        self.0.contains(&index)
    }

    pub fn insert(&mut self, index: u32) {
        self.0.insert(index);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<u32> for Indexes {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// `0-2,5,7-8`: consecutive runs of two or more become `a-b`.
impl fmt::Display for Indexes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for i in self.iter() {
            match runs.last_mut() {
                Some((_, last)) if last.checked_add(1) == Some(i) => *last = i,
                _ => runs.push((i, i)),
            }
        }
        for (n, (first, last)) in runs.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            if first == last {
                write!(f, "{first}")?;
            } else {
                write!(f, "{first}-{last}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        let cases: [(&str, Vec<u32>, &str); 5] = [
            ("empty", vec![], ""),
            ("single", vec![3], "3"),
            ("run", vec![0, 1, 2], "0-2"),
            ("mixed", vec![1, 3, 4, 5], "1,3-5"),
            ("pairs are runs", vec![0, 1, 7, 9, 10], "0-1,7,9-10"),
        ];
        for (name, input, want) in cases {
            assert_eq!(input.into_iter().collect::<Indexes>().to_string(), want, "{name}");
        }
    }

    #[test]
    fn parsing() {
        let cases: [(&str, &str, u32, Vec<u32>); 7] = [
            ("empty", "", 5, vec![]),
            ("list and ranges", "1,3-5", 10, vec![1, 3, 4, 5]),
            ("beyond completions dropped", "1,3-5", 4, vec![1, 3]),
            ("garbage skipped", "x,2,4-a,6", 10, vec![2, 6]),
            ("reversed range skipped", "5-3,1", 10, vec![1]),
            ("spaces tolerated", " 1 , 2-3 ", 10, vec![1, 2, 3]),
            ("zero completions", "0-3", 0, vec![]),
        ];
        for (name, text, completions, want) in cases {
            assert_eq!(Indexes::parse(text, completions), want.into_iter().collect(), "{name}");
        }
    }

    #[test]
    fn round_trip() {
        let text = "0-2,5,7-9";
        assert_eq!(Indexes::parse(text, 100).to_string(), text);
        assert_eq!(Indexes::parse(text, 100).len(), 7);
    }
}
