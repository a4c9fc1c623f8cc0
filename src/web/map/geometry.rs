//! Points, boxes and the pieces an edge is drawn from, in map coordinates (y grows down).

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl Point {
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }
}

/// An axis-aligned box: `x`, `y` its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn centred(centre: Point, width: f64, height: f64) -> Self {
        Self {
            x: centre.x - width / 2.0,
            y: centre.y - height / 2.0,
            width,
            height,
        }
    }

    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }

    /// Whether the two boxes share more than a border, once each is grown by `margin`.
    pub fn overlaps(&self, other: &Rect, margin: f64) -> bool {
        self.x - margin < other.right()
            && other.x - margin < self.right()
            && self.y - margin < other.bottom()
            && other.y - margin < self.bottom()
    }

    /// Whether `point` lies inside, more than `inset` from every side.
    pub fn contains(&self, point: Point, inset: f64) -> bool {
        point.x > self.x + inset
            && point.x < self.right() - inset
            && point.y > self.y + inset
            && point.y < self.bottom() - inset
    }
}

/// One piece of an edge's path: a straight line or a cubic Bézier curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Piece {
    Line(Point, Point),
    Cubic(Point, Point, Point, Point),
}

impl Piece {
    pub fn start(&self) -> Point {
        match *self {
            Piece::Line(start, _) | Piece::Cubic(start, ..) => start,
        }
    }

    pub fn end(&self) -> Point {
        match *self {
            Piece::Line(_, end) | Piece::Cubic(.., end) => end,
        }
    }

    /// The same piece drawn the other way.
    pub fn reversed(&self) -> Self {
        match *self {
            Piece::Line(a, b) => Piece::Line(b, a),
            Piece::Cubic(a, b, c, d) => Piece::Cubic(d, c, b, a),
        }
    }

    /// The point at `t` in [0, 1].
    pub fn at(&self, t: f64) -> Point {
        match *self {
            Piece::Line(a, b) => Point::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t),
            Piece::Cubic(a, b, c, d) => {
                let s = 1.0 - t;
                let (wa, wb, wc, wd) = (s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t);
                Point::new(
                    wa * a.x + wb * b.x + wc * c.x + wd * d.x,
                    wa * a.y + wb * b.y + wc * c.y + wd * d.y,
                )
            }
        }
    }
}

/// An SVG path `d` for consecutive pieces (each starting where the one before ended), in
/// whole map units (written as integers: formatting floats was a third of a large map's time).
/// A coordinate printed to a tenth, as `{:.1}` prints it but without the cost of formatting
/// a float exactly (a large map prints tens of thousands of them).
#[derive(Debug, Clone, Copy)]
pub struct Tenths(pub f64);

impl std::fmt::Display for Tenths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round() as i64;
        let sign = if tenths < 0 { "-" } else { "" };
        let tenths = tenths.unsigned_abs();
        write!(f, "{sign}{}.{}", tenths / 10, tenths % 10)
    }
}

pub fn path_data(pieces: &[Piece]) -> String {
    let mut out = String::with_capacity(24 * pieces.len() + 16);
    let point = |out: &mut String, prefix: &str, at: Point| {
        let _ = write!(
            out,
            "{prefix}{},{}",
            at.x.round() as i64,
            at.y.round() as i64
        );
    };
    if let Some(first) = pieces.first() {
        point(&mut out, "M", first.start());
    }
    for piece in pieces {
        match *piece {
            Piece::Line(_, end) => point(&mut out, " L", end),
            Piece::Cubic(_, c1, c2, end) => {
                point(&mut out, " C", c1);
                point(&mut out, " ", c2);
                point(&mut out, " ", end);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenths_print_as_float_formatting_does() {
        for value in [0.0, 0.04, 1.25, 12.36, 99.95, 1234.5678, -3.17, -0.25, 5e6] {
            let expected = format!("{value:.1}");
            let printed = Tenths(value).to_string();
            let (a, b): (f64, f64) = (expected.parse().unwrap(), printed.parse().unwrap());
            assert!(
                (a - b).abs() <= 0.1 + 1e-9,
                "{value}: {printed} vs {expected}"
            );
        }
        assert_eq!(Tenths(12.34).to_string(), "12.3");
        assert_eq!(Tenths(-7.06).to_string(), "-7.1");
        assert_eq!(Tenths(3.0).to_string(), "3.0");
    }

    #[test]
    fn a_reversed_curve_passes_through_the_same_points() {
        let curve = Piece::Cubic(
            Point::new(0.0, 0.0),
            Point::new(10.0, 0.0),
            Point::new(10.0, 20.0),
            Point::new(20.0, 20.0),
        );
        for step in 0..=10 {
            let t = f64::from(step) / 10.0;
            let (a, b) = (curve.at(t), curve.reversed().at(1.0 - t));
            assert!((a.x - b.x).abs() < 1e-9 && (a.y - b.y).abs() < 1e-9);
        }
        assert_eq!(
            path_data(&[
                curve,
                Piece::Line(Point::new(20.0, 20.0), Point::new(30.0, 20.0))
            ]),
            "M0,0 C10,0 10,20 20,20 L30,20"
        );
    }

    #[test]
    fn boxes_that_only_touch_do_not_overlap() {
        let a = Rect {
            x: 0.0,
            y: 0.0,
            width: 10.0,
            height: 10.0,
        };
        let b = Rect { x: 10.0, ..a };
        assert!(!a.overlaps(&b, 0.0) && a.overlaps(&b, 1.0));
        assert!(a.contains(Point::new(5.0, 5.0), 1.0) && !a.contains(Point::new(9.5, 5.0), 1.0));
    }
}
