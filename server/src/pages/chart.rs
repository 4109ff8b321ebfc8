//! Charts drawn on the server as SVG (templates/chart.html): horizontal
//! bars, one per row, with the value beside each bar — readable on a phone,
//! printable, no script. A suppressed value (a small cell, docs/indicators.md)
//! is drawn as an empty dashed box marked 「5未満」, never as a bar of any
//! length; every chart is followed by the same numbers as a table, for
//! screen readers and for copying.

/// Width of the drawing area for labels, bars and values, in SVG units.
const WIDTH: u32 = 640;
/// Room for the row labels on the left.
const LABEL_WIDTH: u32 = 210;
/// Room for the value on the right of the longest bar.
const VALUE_WIDTH: u32 = 90;
const ROW_HEIGHT: u32 = 24;
const BAR_HEIGHT: u32 = 16;
const TOP: u32 = 8;

/// One row of a chart as given.
pub struct Datum {
    pub label: String,
    /// `None`: suppressed.
    pub value: Option<f64>,
}

/// One row as drawn.
pub struct Bar {
    pub label: String,
    /// The value as printed: 「12」, 「3.5」, or 「5未満」 when suppressed.
    pub text: String,
    pub suppressed: bool,
    pub y: u32,
    pub bar_y: u32,
    pub text_y: u32,
    pub width: u32,
    pub value_x: u32,
}

/// A chart ready for the template.
pub struct BarChart {
    /// Unique within the page: the SVG's title and description ids.
    pub id: String,
    pub title: String,
    /// What is counted and how, said in words (the SVG's description).
    pub description: String,
    pub unit: String,
    pub width: u32,
    pub height: u32,
    pub label_width: u32,
    pub bars: Vec<Bar>,
}

impl BarChart {
    pub fn new(id: &str, title: &str, description: &str, unit: &str, data: Vec<Datum>) -> Self {
        let max = data.iter().filter_map(|d| d.value).fold(0.0_f64, f64::max);
        let room = f64::from(WIDTH - LABEL_WIDTH - VALUE_WIDTH);
        let bars = data
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let y = TOP + ROW_HEIGHT * u32::try_from(i).unwrap_or(u32::MAX / ROW_HEIGHT / 2);
                let (width, text, suppressed) = match d.value {
                    Some(v) if max > 0.0 && v > 0.0 => {
                        // At least one unit wide, so a small value shows.
                        let w = ((v / max) * room).round().max(1.0) as u32;
                        (w, number(v), false)
                    }
                    Some(v) => (0, number(v), false),
                    None => (0, "5未満".to_string(), true),
                };
                Bar {
                    label: d.label,
                    text,
                    suppressed,
                    y,
                    bar_y: y + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                    text_y: y + ROW_HEIGHT / 2 + 5,
                    width,
                    value_x: LABEL_WIDTH + width + 6,
                }
            })
            .collect::<Vec<_>>();
        let rows = u32::try_from(bars.len()).unwrap_or(0).max(1);
        BarChart {
            id: id.to_string(),
            title: title.to_string(),
            description: description.to_string(),
            unit: unit.to_string(),
            width: WIDTH,
            height: TOP * 2 + ROW_HEIGHT * rows,
            label_width: LABEL_WIDTH,
            bars,
        }
    }

    /// The height of a suppressed value's dashed box.
    pub fn bar_height(&self) -> u32 {
        BAR_HEIGHT
    }
}

/// A number as printed: whole numbers without a fraction, others to one
/// decimal place.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(label: &str, value: Option<f64>) -> Datum {
        Datum {
            label: label.into(),
            value,
        }
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let c = BarChart::new(
            "c",
            "t",
            "d",
            "件",
            vec![d("a", Some(10.0)), d("b", Some(5.0)), d("c", Some(0.0))],
        );
        assert_eq!(c.bars[0].width, WIDTH - LABEL_WIDTH - VALUE_WIDTH);
        assert_eq!(c.bars[1].width, (WIDTH - LABEL_WIDTH - VALUE_WIDTH) / 2);
        assert_eq!(c.bars[2].width, 0);
        assert_eq!(c.bars[1].y, TOP + ROW_HEIGHT);
        assert_eq!(c.height, TOP * 2 + ROW_HEIGHT * 3);
    }

    #[test]
    fn a_suppressed_value_has_no_bar_and_says_so() {
        let c = BarChart::new("c", "t", "d", "件", vec![d("a", Some(7.0)), d("b", None)]);
        assert!(c.bars[1].suppressed);
        assert_eq!(c.bars[1].width, 0);
        assert_eq!(c.bars[1].text, "5未満");
    }

    #[test]
    fn numbers_print_without_a_needless_fraction() {
        assert_eq!(number(12.0), "12");
        assert_eq!(number(3.25), "3.2");
    }
}
