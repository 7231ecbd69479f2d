//! Name suggestions shared by the server (NOT_FOUND answers) and the clients:
//! "did you mean `isp1`?" for a mistyped connection, modem or chain name.

/// Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The closest of `candidates` to `word`, if it is close enough to be a typo: within
/// distance 2 (1 for words of up to 3 letters), or a unique prefix match.
pub fn did_you_mean<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let w = word.to_lowercase();
    let limit = if w.chars().count() <= 3 { 1 } else { 2 };
    let best = candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str());
    if best.is_some() {
        return best;
    }
    let prefixed: Vec<&String> = candidates
        .iter()
        .filter(|c| w.len() >= 2 && (c.starts_with(&w) || w.starts_with(c.as_str())))
        .collect();
    match prefixed.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let c: Vec<String> = ["isp1", "work", "hangup", "login", "logout"]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(did_you_mean("isp3", &c), Some("isp1"));
        assert_eq!(did_you_mean("ISP1", &c), Some("isp1"));
        assert_eq!(did_you_mean("wrok", &c), Some("work"));
        assert_eq!(did_you_mean("frobnicate", &c), None);
        assert_eq!(did_you_mean("han", &c), Some("hangup"));
        assert_eq!(did_you_mean("zz", &c), None);
        assert_eq!(did_you_mean("x", &[]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
