//! Column-aligned text tables for the operator commands' output, as `rpk` prints them:
//! upper-case headers, columns padded to their widest cell, two spaces between them.

/// Render `headers` and `rows`; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out.truncate(out.trim_end().len());
    out
}

/// A list of ids as Kafka's tools print them: `1,2,3`.
pub fn ids(list: &[i32]) -> String {
    list.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = render(
            &["NAME", "PARTITIONS"],
            &[
                vec!["a".into(), "3".into()],
                vec!["longer".into(), "12".into()],
            ],
        );
        assert_eq!(t, "NAME    PARTITIONS\na       3\nlonger  12");
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
    }
}
