//! Rows in PostgreSQL's `COPY … FROM STDIN` text format.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// One table's rows being built: values separated by tabs, rows by newlines,
/// `\N` for NULL, backslash escapes for the rest.
#[derive(Default)]
pub struct CopyBuf {
    pub data: String,
    pub rows: u64,
    first: bool,
}

impl CopyBuf {
    pub fn with_capacity(n: usize) -> Self {
        CopyBuf {
            data: String::with_capacity(n),
            rows: 0,
            first: true,
        }
    }

    fn sep(&mut self) {
        if !self.first {
            self.data.push('\t');
        }
        self.first = false;
    }

    pub fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        for c in s.chars() {
            match c {
                '\\' => self.data.push_str("\\\\"),
                '\t' => self.data.push_str("\\t"),
                '\n' => self.data.push_str("\\n"),
                '\r' => self.data.push_str("\\r"),
                c => self.data.push(c),
            }
        }
        self
    }

    /// A value known to need no escaping (ids, numbers, codes).
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.sep();
        self.data.push_str(s);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.data.push_str("\\N");
        self
    }

    pub fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub fn uuid(&mut self, u: Uuid) -> &mut Self {
        self.sep();
        let mut b = Uuid::encode_buffer();
        self.data.push_str(u.hyphenated().encode_lower(&mut b));
        self
    }

    pub fn opt_uuid(&mut self, u: Option<Uuid>) -> &mut Self {
        match u {
            Some(u) => self.uuid(u),
            None => self.null(),
        }
    }

    pub fn time(&mut self, t: DateTime<Utc>) -> &mut Self {
        self.sep();
        use std::fmt::Write;
        let _ = write!(self.data, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        self
    }

    pub fn date(&mut self, d: NaiveDate) -> &mut Self {
        self.sep();
        use std::fmt::Write;
        let _ = write!(self.data, "{}", d.format("%Y-%m-%d"));
        self
    }

    pub fn opt_date(&mut self, d: Option<NaiveDate>) -> &mut Self {
        match d {
            Some(d) => self.date(d),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "t" } else { "f" })
    }

    pub fn num(&mut self, n: impl std::fmt::Display) -> &mut Self {
        self.sep();
        use std::fmt::Write;
        let _ = write!(self.data, "{n}");
        self
    }

    pub fn end_row(&mut self) {
        self.data.push('\n');
        self.rows += 1;
        self.first = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nulls() {
        let mut b = CopyBuf::with_capacity(64);
        b.text("a\tb\\c\nd").null().bool(true).num(3);
        b.end_row();
        assert_eq!(b.data, "a\\tb\\\\c\\nd\t\\N\tt\t3\n");
        assert_eq!(b.rows, 1);
    }
}
