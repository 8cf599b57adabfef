//! Resource amounts as the quota controller adds them up: named quantities held exactly in
//! thousandths, summed, compared and written back as quantity text.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Amounts by resource name, each in thousandths of its unit (millicores, millibytes, millipods).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amounts(pub BTreeMap<String, i64>);

impl Amounts {
    /// Parses a resource list; an unparseable quantity counts as zero (the apiserver validates them).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let parsed = list.into_iter().flatten().map(|(name, q)| (name.clone(), component_base::quantity::milli_value(q).unwrap_or(0)));
        Amounts(parsed.collect())
    }

    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    /// Adds `milli` to `name`.
    pub fn add_one(&mut self, name: &str, milli: i64) {
        let entry = self.0.entry(name.to_string()).or_insert(0);
        *entry = entry.saturating_add(milli);
    }

    /// Adds `count` whole units to `name`.
    pub fn count(&mut self, name: &str, count: i64) {
        self.add_one(name, count.saturating_mul(1000));
    }

    pub fn add(&mut self, other: &Amounts) {
        for (name, milli) in &other.0 {
            self.add_one(name, *milli);
        }
    }

    /// Raises each of `other`'s amounts in `self` to at least that amount.
    pub fn max_with(&mut self, other: &Amounts) {
        for (name, milli) in &other.0 {
            let entry = self.0.entry(name.clone()).or_insert(*milli);
            *entry = (*entry).max(*milli);
        }
    }

    /// As quantity text, one entry per name.
    pub fn to_list(&self) -> BTreeMap<String, Quantity> {
        self.0.iter().map(|(name, milli)| (name.clone(), Quantity(format_milli(name, *milli)))).collect()
    }
}

/// Quantity text for `milli` thousandths: whole numbers plainly — with a binary suffix for byte
/// amounts that are exact multiples — and fractions in `m`.
pub fn format_milli(name: &str, milli: i64) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let value = milli / 1000;
    let bytes = name.contains("memory") || name.contains("storage") || name.contains("hugepages");
    if bytes && value != 0 {
        for (suffix, unit) in [("Ei", 1_i64 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if value % unit == 0 {
                return format!("{}{suffix}", value / unit);
            }
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        let cases = [
            ("whole cpu", "requests.cpu", 2000, "2"),
            ("millicores", "requests.cpu", 500, "500m"),
            ("zero", "requests.memory", 0, "0"),
            ("mebibytes", "requests.memory", 128 * 1024 * 1024 * 1000, "128Mi"),
            ("odd bytes", "limits.memory", 1_000_000 * 1000, "1000000"),
            ("count", "pods", 3000, "3"),
            ("count that is a multiple of 1024 stays plain", "pods", 1024 * 1000, "1024"),
            ("storage gibibytes", "requests.storage", (1_i64 << 30) * 1000, "1Gi"),
        ];
        for (name, resource, milli, want) in cases {
            assert_eq!(format_milli(resource, milli), want, "{name}");
        }
    }

    #[test]
    fn arithmetic() {
        let list = BTreeMap::from([("cpu".to_string(), Quantity("250m".into())), ("memory".to_string(), Quantity("1Ki".into()))]);
        let mut a = Amounts::from_list(Some(&list));
        assert_eq!(a.get("cpu"), Some(250));
        assert_eq!(a.get("memory"), Some(1_024_000));
        a.add(&Amounts::from_list(Some(&list)));
        assert_eq!(a.get("cpu"), Some(500));
        a.max_with(&Amounts(BTreeMap::from([("cpu".to_string(), 300), ("pods".to_string(), 1000)])));
        assert_eq!((a.get("cpu"), a.get("pods")), (Some(500), Some(1000)));
        a.count("pods", 2);
        assert_eq!(a.to_list().get("pods"), Some(&Quantity("3".into())));
    }
}
