//! The report's figures, drawn with plotters' SVG backend: axes, grids, the Pareto front, the
//! groups' box-and-strip rows and the batch-size curves. Each figure is a standalone `<svg>`
//! element inlined in the page; the scatter's points themselves (with their hover text and
//! labels) are laid over it by the template, at the pixel positions computed here, so every
//! text from the store goes through the template's escaping.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ReportError;
use crate::model::{BackboneGroups, ChampionPoint, ReportData};
use crate::pareto::{AxisScale, TradeOff, front_order};
use crate::text;

/// Series colours (Okabe–Ito, readable by colour-blind readers and in print).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(120, 94, 240),
    RGBColor(90, 90, 90),
];

const INK: RGBColor = RGBColor(34, 34, 34);
const GRID: RGBColor = RGBColor(226, 226, 226);
const MUTED: RGBColor = RGBColor(150, 150, 150);
const FRONT: RGBColor = RGBColor(0, 114, 178);
const FONT: &str = "sans-serif";

/// A figure: plotters' `<svg>` element and its size.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    /// Width in px.
    pub width: u32,
    /// Height in px.
    pub height: u32,
    /// The `<svg>` element (numbers and axis titles only; escaped by plotters).
    pub svg: String,
}

/// The scatter: the figure and, per champion (in the data's order), its point's position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scatter {
    pub figure: Figure,
    pub points: Vec<(i32, i32)>,
}

fn plot_error<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ReportError {
    move |err| ReportError::Plot {
        figure: what,
        message: err.to_string(),
    }
}

/// `range` widened by `fraction` of its span on each side (a flat range by a fraction of its
/// value, or ±1 around zero).
fn padded(min: f64, max: f64, fraction: f64) -> Range<f64> {
    let span = max - min;
    let pad = if span > 0.0 {
        span * fraction
    } else if min != 0.0 {
        min.abs() * 0.05
    } else {
        1.0
    };
    (min - pad)..(max + pad)
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|value| value.is_finite())
        .fold(None, |acc, value| match acc {
            None => Some((value, value)),
            Some((min, max)) => Some((min.min(value), max.max(value))),
        })
}

/// Metric vs batch-1 latency of the ranked champions, with the Pareto front; `None` without
/// champions.
pub(crate) fn scatter(data: &ReportData) -> Result<Option<Scatter>, ReportError> {
    let Some((x_min, x_max)) = min_max(data.champions.iter().map(|point| point.latency_ms)) else {
        return Ok(None);
    };
    let Some((y_min, y_max)) = min_max(data.champions.iter().map(|point| point.metric)) else {
        return Ok(None);
    };
    let y = padded(y_min, y_max, 0.12);
    let x_desc = match data.latency_axis {
        AxisScale::Linear => "batch-1 latency, ms (mean of the timed passes)",
        AxisScale::Log => "batch-1 latency, ms (mean of the timed passes; log scale)",
    };
    let (width, height) = (760, 440);
    let mut svg = String::new();
    let points = match data.latency_axis {
        AxisScale::Log => {
            let x = (x_min / 1.4)..(x_max * 1.4);
            draw_scatter(&mut svg, (width, height), x.log_scale(), y, x_desc, data)?
        }
        AxisScale::Linear => {
            let mut x = padded(x_min, x_max, 0.15);
            x.start = x.start.max(0.0);
            draw_scatter(&mut svg, (width, height), x, y, x_desc, data)?
        }
    };
    Ok(Some(Scatter {
        figure: Figure { width, height, svg },
        points,
    }))
}

fn draw_scatter<XS>(
    svg: &mut String,
    size: (u32, u32),
    x: XS,
    y: Range<f64>,
    x_desc: &str,
    data: &ReportData,
) -> Result<Vec<(i32, i32)>, ReportError>
where
    XS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let failed = plot_error::<Box<dyn std::error::Error>>("metric vs latency");
    let root = SVGBackend::with_string(svg, size).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .margin_right(28)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)
        .map_err(|err| failed(err.into()))?;
    let x_format = |value: &f64| text::ms(*value);
    let y_format = |value: &f64| text::metric(*value);
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.6))
        .max_light_lines(1)
        .bold_line_style(GRID)
        .axis_style(INK.mix(0.7))
        .label_style((FONT, 12).into_font().color(&INK))
        .axis_desc_style((FONT, 13).into_font().color(&INK))
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .x_desc(x_desc)
        .y_desc(format!("{} ({})", data.metric, data.direction))
        .draw()
        .map_err(|err| failed(err.into()))?;
    // The front as a staircase: from each front point, across at its metric to the next
    // point's latency, then up (or down) to its metric. What lies beyond it is dominated.
    let trade_offs: Vec<TradeOff> = data
        .champions
        .iter()
        .map(|point| TradeOff {
            metric: point.metric,
            latency_ms: point.latency_ms,
        })
        .collect();
    let on_front: Vec<bool> = data.champions.iter().map(|point| point.on_front).collect();
    let direction = podium_mlflow::Direction::parse(&data.direction)
        .unwrap_or(podium_mlflow::Direction::Maximize);
    let order = front_order(&trade_offs, &on_front, direction);
    let mut staircase: Vec<(f64, f64)> = Vec::new();
    for (step, index) in order.iter().enumerate() {
        let point = trade_offs[*index];
        if step > 0
            && let Some(&(_, previous_metric)) = staircase.last()
        {
            staircase.push((point.latency_ms, previous_metric));
        }
        staircase.push((point.latency_ms, point.metric));
    }
    if staircase.len() > 1 {
        chart
            .draw_series(std::iter::once(PathElement::new(
                staircase,
                FRONT.mix(0.55).stroke_width(2),
            )))
            .map_err(|err| failed(err.into()))?;
    }
    root.present().map_err(|err| failed(err.into()))?;
    Ok(data
        .champions
        .iter()
        .map(|point| chart.backend_coord(&(point.latency_ms, point.metric)))
        .collect())
}

/// One backbone's study groups as rows: whiskers from the lowest to the highest counted
/// metric, the box between the quartiles with the median, the strip of trials (every trial of
/// a small group, order statistics of a large one), the stable score (a diamond) and the
/// champion trial (a ring). Dropped groups are grey.
pub(crate) fn groups(backbone: &BackboneGroups) -> Result<Option<Figure>, ReportError> {
    let failed = plot_error::<Box<dyn std::error::Error>>("study groups");
    let values = backbone.groups.iter().flat_map(|group| {
        let spread = group.distribution.iter().flat_map(|d| [d.min, d.max]);
        spread.chain(group.stable_score)
    });
    let Some((min, max)) = min_max(values.chain(std::iter::once(backbone.champion_metric))) else {
        return Ok(None);
    };
    let rows = backbone.groups.len();
    let row_height = 34;
    let width = 760;
    let height = (rows as u32) * row_height + 84;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let label_area = 170;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(44)
            .y_label_area_size(label_area)
            .build_cartesian_2d(padded(min, max, 0.06), -0.5..(rows as f64 - 0.5))
            .map_err(|err| failed(err.into()))?;
        let x_format = |value: &f64| text::metric(*value);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(GRID.mix(0.5))
            .max_light_lines(1)
            .bold_line_style(GRID)
            .axis_style(INK.mix(0.7))
            .label_style((FONT, 12).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&INK))
            .x_labels(8)
            .y_labels(0)
            .x_label_formatter(&x_format)
            .x_desc("metric of each counted trial")
            .draw()
            .map_err(|err| failed(err.into()))?;
        for (row, group) in backbone.groups.iter().enumerate() {
            let y = (rows - 1 - row) as f64;
            let eligible = group.rank.is_some();
            let colour = if eligible { INK } else { MUTED };
            let label = match group.rank {
                Some(1) => format!("study-{}  winner", group.short_hash),
                Some(rank) => format!("study-{}  #{rank}", group.short_hash),
                None => format!("study-{}  dropped", group.short_hash),
            };
            let (_, label_y) = chart.backend_coord(&(min, y));
            root.draw(&Text::new(
                label,
                (12, label_y),
                (FONT, 12)
                    .into_font()
                    .color(&colour)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|err| failed(err.into()))?;
            if let Some(spread) = &group.distribution {
                let mut shapes: Vec<DynElement<'static, SVGBackend<'_>, (f64, f64)>> = vec![
                    PathElement::new(vec![(spread.min, y), (spread.max, y)], colour.mix(0.6))
                        .into_dyn(),
                    PathElement::new(
                        vec![(spread.min, y - 0.12), (spread.min, y + 0.12)],
                        colour.mix(0.6),
                    )
                    .into_dyn(),
                    PathElement::new(
                        vec![(spread.max, y - 0.12), (spread.max, y + 0.12)],
                        colour.mix(0.6),
                    )
                    .into_dyn(),
                    Rectangle::new(
                        [(spread.q1, y - 0.28), (spread.q3, y + 0.28)],
                        colour.mix(0.12).filled(),
                    )
                    .into_dyn(),
                    Rectangle::new([(spread.q1, y - 0.28), (spread.q3, y + 0.28)], colour)
                        .into_dyn(),
                    PathElement::new(
                        vec![(spread.median, y - 0.28), (spread.median, y + 0.28)],
                        colour.stroke_width(2),
                    )
                    .into_dyn(),
                ];
                for value in &spread.strip {
                    shapes.push(Circle::new((*value, y), 2, colour.mix(0.45).filled()).into_dyn());
                }
                chart
                    .draw_series(shapes)
                    .map_err(|err| failed(err.into()))?;
            }
            if let Some(stable) = group.stable_score {
                let (sx, sy) = chart.backend_coord(&(stable, y));
                let diamond = vec![(sx, sy - 7), (sx + 6, sy), (sx, sy + 7), (sx - 6, sy)];
                root.draw(&Polygon::new(diamond, PALETTE[4].filled()))
                    .map_err(|err| failed(err.into()))?;
            }
            if group.rank == Some(1) {
                let (cx, cy) = chart.backend_coord(&(backbone.champion_metric, y));
                root.draw(&Circle::new((cx, cy), 7, PALETTE[1].stroke_width(3)))
                    .map_err(|err| failed(err.into()))?;
            }
        }
        root.present().map_err(|err| failed(err.into()))?;
    }
    Ok(Some(Figure { width, height, svg }))
}

/// What a batch-size figure plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchMeasure {
    /// p50 latency with a bar up to p95.
    Latency,
    /// Sequences per second.
    Throughput,
}

/// Per champion, one line over the batch sizes: p50 latency with its p95 above, or
/// throughput. `None` when no champion has such numbers.
pub(crate) fn batches(
    champions: &[ChampionPoint],
    measure: BatchMeasure,
) -> Result<Option<Figure>, ReportError> {
    let series: Vec<Vec<(f64, f64, Option<f64>)>> = champions
        .iter()
        .map(|point| {
            point
                .batches
                .iter()
                .filter_map(|row| {
                    let x = row.batch_size as f64;
                    match measure {
                        BatchMeasure::Latency => row.p50_ms.map(|p50| (x, p50, row.p95_ms)),
                        BatchMeasure::Throughput => {
                            row.throughput_seq_per_s.map(|value| (x, value, None))
                        }
                    }
                })
                .collect()
        })
        .collect();
    let all = series.iter().flatten();
    let Some((x_min, x_max)) = min_max(all.clone().map(|(x, _, _)| *x)) else {
        return Ok(None);
    };
    let Some((_, y_max)) = min_max(all.map(|(_, y, top)| top.unwrap_or(*y).max(*y))) else {
        return Ok(None);
    };
    let (width, height) = (370, 260);
    let x = ((x_min / 1.5).max(0.5)..(x_max * 1.5)).log_scale();
    let mut svg = String::new();
    match measure {
        // Latencies span decades (batch sizes, and p95 far above p50 on a noisy machine).
        BatchMeasure::Latency => {
            let y_min = min_max(series.iter().flatten().map(|(_, y, _)| *y))
                .map_or(0.01, |(min, _)| min)
                .max(1e-6);
            draw_batches(
                &mut svg,
                (width, height),
                x,
                ((y_min / 1.5)..(y_max * 1.5)).log_scale(),
                measure,
                &series,
            )?;
        }
        BatchMeasure::Throughput => draw_batches(
            &mut svg,
            (width, height),
            x,
            0.0..(y_max * 1.12),
            measure,
            &series,
        )?,
    }
    Ok(Some(Figure { width, height, svg }))
}

fn draw_batches<XS, YS>(
    svg: &mut String,
    size: (u32, u32),
    x: XS,
    y: YS,
    measure: BatchMeasure,
    series: &[Vec<(f64, f64, Option<f64>)>],
) -> Result<(), ReportError>
where
    XS: AsRangedCoord<Value = f64>,
    XS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    YS: AsRangedCoord<Value = f64>,
    YS::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let failed = plot_error::<Box<dyn std::error::Error>>("batch sizes");
    let root: DrawingArea<SVGBackend<'_>, Shift> =
        SVGBackend::with_string(svg, size).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .margin_right(18)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y)
        .map_err(|err| failed(err.into()))?;
    let x_format = |value: &f64| format!("{value:.0}");
    let y_format = |value: &f64| match measure {
        BatchMeasure::Latency => text::ms(*value),
        BatchMeasure::Throughput => format!("{value:.0}"),
    };
    chart
        .configure_mesh()
        .light_line_style(GRID.mix(0.5))
        .max_light_lines(1)
        .bold_line_style(GRID)
        .axis_style(INK.mix(0.7))
        .label_style((FONT, 11).into_font().color(&INK))
        .axis_desc_style((FONT, 12).into_font().color(&INK))
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&x_format)
        .y_label_formatter(&y_format)
        .x_desc("batch size")
        .y_desc(match measure {
            BatchMeasure::Latency => "ms (p50, bar to p95; log scale)",
            BatchMeasure::Throughput => "sequences / s",
        })
        .draw()
        .map_err(|err| failed(err.into()))?;
    for (index, points) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let mut shapes: Vec<DynElement<'static, SVGBackend<'_>, (f64, f64)>> = vec![
            PathElement::new(
                points.iter().map(|(x, y, _)| (*x, *y)).collect::<Vec<_>>(),
                colour.stroke_width(2),
            )
            .into_dyn(),
        ];
        for (x, y, top) in points {
            shapes.push(Circle::new((*x, *y), 3, colour.filled()).into_dyn());
            if let Some(top) = top {
                shapes.push(PathElement::new(vec![(*x, *y), (*x, *top)], colour).into_dyn());
            }
        }
        chart
            .draw_series(shapes)
            .map_err(|err| failed(err.into()))?;
    }
    root.present().map_err(|err| failed(err.into()))?;
    Ok(())
}
