//! Edge labels that never overlap: each label tries its route's spots in turn (best first)
//! and takes the first where it stays inside its gap and clear of every box and every label
//! placed before it; labels are placed in the caller's priority order (trouble first). A
//! label with no free spot is left to the edge's hover text.

use super::geometry::{Point, Rect};
use super::layout::{Direction, Layout};

/// Room kept between a label and anything else.
const CLEARANCE: f64 = 2.0;

/// Where each edge's label goes (`None`: shown on hover only). `obstacles` are the boxes to
/// keep clear of (the nodes, with anything drawn beside them); `sizes` the labels' (width,
/// height), one per route; `priority` lists route indices, most important first.
pub fn place(
    layout: &Layout,
    obstacles: &[Rect],
    sizes: &[(f64, f64)],
    priority: &[usize],
) -> Vec<Option<Rect>> {
    let canvas = Rect {
        x: 0.0,
        y: 0.0,
        width: layout.width,
        height: layout.height,
    };
    let mut placed: Vec<Option<Rect>> = vec![None; layout.routes.len()];
    let mut taken = Grid::new(GRID_CELL);
    for obstacle in obstacles {
        taken.insert(*obstacle);
    }
    for &edge in priority {
        let (width, height) = sizes[edge];
        if width <= 0.0 {
            continue;
        }
        let spot = layout.routes[edge]
            .label_spots
            .iter()
            .flat_map(|&(centre, within)| {
                beside(centre, width, height, layout.direction).map(move |centre| (centre, within))
            })
            .filter_map(|(centre, within)| fitted(centre, width, height, &within))
            .find(|candidate| inside(candidate, &canvas) && !taken.hits(candidate));
        if let Some(spot) = spot {
            taken.insert(spot);
            placed[edge] = Some(spot);
        }
    }
    placed
}

/// Side of a cell of the index of taken room, in map units.
const GRID_CELL: f64 = 128.0;

/// Boxes kept in each grid cell they touch, so a check looks at its neighbours only (a
/// 300-node map has thousands of labels).
struct Grid {
    cell: f64,
    cells: std::collections::HashMap<(i64, i64), Vec<Rect>>,
}

impl Grid {
    fn new(cell: f64) -> Self {
        Self {
            cell,
            cells: std::collections::HashMap::new(),
        }
    }

    /// The cells a box (grown by the clearance) touches.
    fn cells_of(&self, rect: &Rect) -> impl Iterator<Item = (i64, i64)> + use<> {
        let cell = self.cell;
        let index = move |at: f64| (at / cell).floor() as i64;
        let (x0, x1) = (index(rect.x - CLEARANCE), index(rect.right() + CLEARANCE));
        let (y0, y1) = (index(rect.y - CLEARANCE), index(rect.bottom() + CLEARANCE));
        (x0..=x1).flat_map(move |x| (y0..=y1).map(move |y| (x, y)))
    }

    fn insert(&mut self, rect: Rect) {
        for key in self.cells_of(&rect) {
            self.cells.entry(key).or_default().push(rect);
        }
    }

    /// Whether `rect` comes within the clearance of a box already in.
    fn hits(&self, rect: &Rect) -> bool {
        self.cells_of(rect).any(|key| {
            self.cells
                .get(&key)
                .is_some_and(|boxes| boxes.iter().any(|other| other.overlaps(rect, CLEARANCE)))
        })
    }
}

/// Centres for a label at `centre` on its edge: on the line, then beside it on either side
/// (across the call direction), touching the line or a label's width away (past a
/// neighbour's label on the same line).
fn beside(centre: Point, width: f64, height: f64, direction: Direction) -> [Point; 5] {
    let shift = |factor: f64| match direction {
        Direction::Down => Point::new(centre.x + factor * (width / 2.0 + 5.0), centre.y),
        Direction::Right => Point::new(centre.x, centre.y + factor * (height / 2.0 + 4.0)),
    };
    [centre, shift(1.0), shift(-1.0), shift(2.0), shift(-2.0)]
}

/// A label box centred on `centre`, moved inside `within` if it sticks out; `None` when it
/// cannot fit there at all.
fn fitted(centre: Point, width: f64, height: f64, within: &Rect) -> Option<Rect> {
    let clamp = |at: f64, size: f64, low: f64, extent: f64| {
        (size + 2.0 * CLEARANCE <= extent).then(|| {
            (at - size / 2.0)
                .max(low + CLEARANCE)
                .min(low + extent - size - CLEARANCE)
        })
    };
    Some(Rect {
        x: clamp(centre.x, width, within.x, within.width)?,
        y: clamp(centre.y, height, within.y, within.height)?,
        width,
        height,
    })
}

fn inside(rect: &Rect, canvas: &Rect) -> bool {
    rect.x >= canvas.x
        && rect.y >= canvas.y
        && rect.right() <= canvas.right()
        && rect.bottom() <= canvas.bottom()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_that_sticks_out_of_its_gap_is_moved_in_or_refused() {
        let gap = Rect {
            x: 100.0,
            y: -1e9,
            width: 60.0,
            height: 2e9,
        };
        let moved = fitted(Point::new(105.0, 50.0), 40.0, 14.0, &gap).expect("fits");
        assert!(moved.x >= 100.0 && moved.right() <= 160.0);
        assert_eq!(fitted(Point::new(130.0, 50.0), 70.0, 14.0, &gap), None);
    }
}
