//! The page: [`ReportData`] and its figures through the askama template
//! (`templates/report.html`), every value escaped by the template engine.
//!
//! The view types below hold what the template prints, already formatted for people; the
//! template only lays them out. Nothing in the page loads anything: styles are inline, the
//! figures are inline SVG, there is no script, and a Content-Security-Policy meta tag forbids
//! every fetch, so a mistake shows up as an error in the browser rather than as a request.

use askama::Template;

use crate::error::ReportError;
use crate::model::{
    BackboneGroups, ChampionPoint, GroupView, MeasuredOn, Recommendation, ReportData, RunRef,
};
use crate::pareto::AxisScale;
use crate::plots::{self, BatchMeasure, Figure, PALETTE};
use crate::text;

/// The page's Content-Security-Policy for a page whose one `<style>` element holds `style`:
/// nothing may be fetched, no script runs, no style applies but that element (named by its
/// sha256, so not even an injected style attribute would).
///
/// ```
/// let policy = podium_report::render::content_security_policy("body { margin: 0 }");
/// assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"));
/// ```
pub fn content_security_policy(style: &str) -> String {
    use base64::Engine as _;
    let hex = podium_keys::sha256_hex(style);
    let digest: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
        .collect();
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src data:; font-src 'none'; \
         script-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page's style sheet: the fixed rules and one colour class per series (`.c0`, …), the
/// colours the figures draw with.
fn style_sheet() -> String {
    let mut style = STYLE.to_string();
    for index in 0..PALETTE.len() {
        style.push_str(&format!(
            ".c{index} {{ background: {}; }}\n",
            css_colour(index)
        ));
    }
    style
}

/// Renders `data` as one self-contained HTML page.
///
/// ```
/// # use podium_report::render_html;
/// # fn page(data: &podium_report::ReportData) -> Result<(), podium_report::ReportError> {
/// let html = render_html(data)?;
/// assert!(html.contains("Content-Security-Policy"));
/// # Ok(()) }
/// ```
pub fn render_html(data: &ReportData) -> Result<String, ReportError> {
    let scatter = plots::scatter(data)?.map(|scatter| ScatterView::new(data, scatter));
    let backbones = data
        .backbones
        .iter()
        .map(BackboneView::new)
        .collect::<Result<Vec<_>, _>>()?;
    let style = style_sheet();
    let page = Page {
        csp: content_security_policy(&style),
        style,
        title: format!("podium report — {}", data.experiment),
        bench8: data
            .provenance
            .benchmark
            .benchmark_config_hash
            .chars()
            .take(8)
            .collect(),
        data,
        recommendation: data
            .recommendation
            .as_ref()
            .map(|recommendation| RecommendationView::new(data, recommendation)),
        scatter,
        champions: data
            .champions
            .iter()
            .enumerate()
            .map(|(index, point)| ChampionRow::new(index, point))
            .collect(),
        backbones,
        latency: plots::batches(&data.champions, BatchMeasure::Latency)?,
        throughput: plots::batches(&data.champions, BatchMeasure::Throughput)?,
        batch_rows: batch_rows(&data.champions),
        measured: data.champions.iter().map(MeasuredRow::new).collect(),
        pipeline: data
            .pipeline_results
            .iter()
            .map(|row| {
                [
                    row.backbone.clone(),
                    row.matched_by.clone(),
                    row.latency_ms.map_or_else(dash, text::ms),
                    row.p95_ms.map_or_else(dash, text::ms),
                ]
            })
            .zip(data.pipeline_results.iter().map(|row| row.run.clone()))
            .collect(),
    };
    Ok(page.render()?)
}

const STYLE: &str = include_str!("../templates/report.css");

fn dash() -> String {
    "–".to_string()
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    title: String,
    bench8: String,
    csp: String,
    style: String,
    data: &'a ReportData,
    recommendation: Option<RecommendationView>,
    scatter: Option<ScatterView>,
    champions: Vec<ChampionRow>,
    backbones: Vec<BackboneView>,
    latency: Option<Figure>,
    throughput: Option<Figure>,
    batch_rows: Vec<BatchTableRow>,
    measured: Vec<MeasuredRow>,
    pipeline: Vec<([String; 4], RunRef)>,
}

/// The recommendation, in sentences.
struct RecommendationView {
    backbone: String,
    headline: String,
    why: String,
    formula: String,
    runner_up: Option<String>,
    front_note: Option<String>,
}

impl RecommendationView {
    fn new(data: &ReportData, best: &Recommendation) -> Self {
        let ranked = data.champions.len();
        let headline = format!(
            "{} {} at {} ms per sequence (batch 1, mean of the timed passes).",
            data.metric,
            text::metric(best.metric),
            text::ms(best.latency_ms),
        );
        let why = if ranked == 1 {
            "It is the only champion with a complete benchmark, so it ranks first on its own."
                .to_string()
        } else {
            format!(
                "Composite rank 1 of {ranked}: the metric and the latency are each min-max \
                 normalised across the ranked champions (best metric 1, worst 0; fastest 1, \
                 slowest 0), then weighted {} and {}; a key's runs are aggregated by {}.",
                text::score(best.f1_weight),
                text::score(best.latency_weight),
                best.latency_aggregation
            )
        };
        let formula = format!(
            "composite {} = {} × metric score {} + {} × latency score {}",
            text::score(best.composite_score),
            text::score(best.f1_weight),
            text::score(best.metric_score),
            text::score(best.latency_weight),
            text::score(best.latency_score),
        );
        let runner_up = best.runner_up.as_ref().map(|second| {
            let speed = if best.latency_ms > 0.0 && second.latency_delta_ms != 0.0 {
                let ratio = (best.latency_ms + second.latency_delta_ms) / best.latency_ms;
                if ratio >= 1.0 {
                    format!(", {ratio:.2}× the latency")
                } else {
                    format!(", {:.2}× faster", 1.0 / ratio)
                }
            } else {
                String::new()
            };
            format!(
                "Runner-up {}: composite {} ({} behind); metric {}, latency {}{speed}.",
                second.backbone,
                text::score(second.composite_score),
                text::score(second.composite_gap),
                text::signed(second.metric_delta, text::metric, ""),
                text::signed(second.latency_delta_ms, text::ms, " ms"),
            )
        });
        let front_note = (!best.on_front).then(|| {
            "Another champion is at least as good and as fast (it dominates this one): the \
             weights decide the tie."
                .to_string()
        });
        RecommendationView {
            backbone: best.backbone.clone(),
            headline,
            why,
            formula,
            runner_up,
            front_note,
        }
    }
}

/// The scatter with its points laid over it.
struct ScatterView {
    figure: Figure,
    points: Vec<PointView>,
    axis_note: String,
}

struct PointView {
    backbone: String,
    cx: i32,
    cy: i32,
    /// `point front` or `point dominated`; `winner` added for rank 1.
    class: &'static str,
    winner: bool,
    label: String,
    label_x: i32,
    label_y: i32,
    anchor: &'static str,
    title: String,
    colour: String,
}

impl ScatterView {
    fn new(data: &ReportData, scatter: plots::Scatter) -> Self {
        let width = scatter.figure.width as i32;
        let points = data
            .champions
            .iter()
            .zip(&scatter.points)
            .enumerate()
            .map(|(index, (point, (cx, cy)))| {
                let winner = point.rank == 1;
                let label = if winner {
                    format!("{} — recommended", point.backbone)
                } else {
                    point.backbone.clone()
                };
                let right_side = *cx < width - 220;
                PointView {
                    backbone: point.backbone.clone(),
                    cx: *cx,
                    cy: *cy,
                    class: if point.on_front {
                        "point front"
                    } else {
                        "point dominated"
                    },
                    winner,
                    label,
                    label_x: if right_side { cx + 12 } else { cx - 12 },
                    label_y: cy - 8,
                    anchor: if right_side { "start" } else { "end" },
                    title: hover_text(data, point),
                    colour: css_colour(index),
                }
            })
            .collect();
        let axis_note = match data.latency_axis {
            AxisScale::Log => {
                "Latency on a logarithmic axis: the slowest champion is more than 10× the fastest."
            }
            AxisScale::Linear => "Latency on a linear axis.",
        }
        .to_string();
        ScatterView {
            figure: scatter.figure,
            points,
            axis_note,
        }
    }
}

/// What a point says on hover (the SVG `<title>`, shown by every browser without a script).
fn hover_text(data: &ReportData, point: &ChampionPoint) -> String {
    let mut lines = vec![
        format!("{} (rank {})", point.backbone, point.rank),
        format!("trial run {}", point.trial.id),
    ];
    if let Some(refit) = &point.refit {
        lines.push(format!("refit run {}", refit.id));
    }
    lines.push(format!("{} {}", data.metric, text::metric(point.metric)));
    lines.push(format!(
        "latency b1: mean {} ms, p50 {} ms, p95 {} ms",
        text::ms(point.latency_ms),
        point.p50_ms.map_or_else(dash, text::ms),
        point.p95_ms.map_or_else(dash, text::ms),
    ));
    lines.push(if point.on_front {
        "on the Pareto front".to_string()
    } else {
        format!("dominated by {}", point.dominated_by.join(", "))
    });
    lines.join("\n")
}

fn css_colour(index: usize) -> String {
    let RGBColor(r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

use plotters::style::RGBColor;

/// A row of the champions table.
struct ChampionRow {
    rank: usize,
    backbone: String,
    /// The series colour class (`c{series}`).
    series: usize,
    metric: String,
    latency: String,
    p50: String,
    p95: String,
    composite: String,
    /// Empty: on the front.
    dominated_by: Vec<String>,
    trial: RunRef,
    refit: Option<RunRef>,
    benchmark: RunRef,
    runs: usize,
}

impl ChampionRow {
    fn new(index: usize, point: &ChampionPoint) -> Self {
        ChampionRow {
            rank: point.rank,
            backbone: point.backbone.clone(),
            series: index % PALETTE.len(),
            metric: text::metric(point.metric),
            latency: text::ms(point.latency_ms),
            p50: point.p50_ms.map_or_else(dash, text::ms),
            p95: point.p95_ms.map_or_else(dash, text::ms),
            composite: text::score(point.composite_score),
            dominated_by: point.dominated_by.clone(),
            trial: point.trial.clone(),
            refit: point.refit.clone(),
            benchmark: point.benchmark_run.clone(),
            runs: point.latency_runs,
        }
    }
}

/// One backbone's section.
struct BackboneView {
    data: BackboneGroups,
    figure: Option<Figure>,
    rows: Vec<GroupRow>,
    dropped_total: usize,
}

struct GroupRow {
    short_hash: String,
    full_hash: String,
    schema: String,
    status: String,
    runs: usize,
    counted: usize,
    best: String,
    stable: String,
    quartiles: String,
    dropped: bool,
}

impl BackboneView {
    fn new(backbone: &BackboneGroups) -> Result<Self, ReportError> {
        Ok(BackboneView {
            figure: plots::groups(backbone)?,
            rows: backbone.groups.iter().map(GroupRow::new).collect(),
            dropped_total: backbone.dropped.iter().map(|reason| reason.count).sum(),
            data: backbone.clone(),
        })
    }
}

impl GroupRow {
    fn new(group: &GroupView) -> Self {
        let status = match (&group.reason, group.rank) {
            (Some(reason), _) => format!("dropped: {reason}"),
            (None, Some(1)) => "winner".to_string(),
            (None, Some(rank)) => format!("eligible, rank {rank}"),
            (None, None) => "eligible".to_string(),
        };
        GroupRow {
            short_hash: group.short_hash.clone(),
            full_hash: group.study_key_hash.clone(),
            schema: group.schema_version.clone(),
            status,
            runs: group.runs,
            counted: group.counted_trials,
            best: group.best_metric.map_or_else(dash, text::metric),
            stable: group.stable_score.map_or_else(dash, text::metric),
            quartiles: group.distribution.as_ref().map_or_else(dash, |spread| {
                format!(
                    "{} · {} · {}",
                    text::metric(spread.q1),
                    text::metric(spread.median),
                    text::metric(spread.q3)
                )
            }),
            dropped: group.reason.is_some(),
        }
    }
}

/// One (champion, batch size) row of the latency table.
struct BatchTableRow {
    backbone: String,
    /// The series colour class (`c{series}`).
    series: usize,
    batch: u64,
    mean: String,
    p50: String,
    p95: String,
    p99: String,
    throughput: String,
}

fn batch_rows(champions: &[ChampionPoint]) -> Vec<BatchTableRow> {
    champions
        .iter()
        .enumerate()
        .flat_map(|(index, point)| {
            point.batches.iter().map(move |row| BatchTableRow {
                backbone: point.backbone.clone(),
                series: index % PALETTE.len(),
                batch: row.batch_size,
                mean: row.mean_ms.map_or_else(dash, text::ms),
                p50: row.p50_ms.map_or_else(dash, text::ms),
                p95: row.p95_ms.map_or_else(dash, text::ms),
                p99: row.p99_ms.map_or_else(dash, text::ms),
                throughput: row
                    .throughput_seq_per_s
                    .map_or_else(dash, |value| format!("{value:.0}")),
            })
        })
        .collect()
}

/// Where one champion was measured.
struct MeasuredRow {
    backbone: String,
    cells: [String; 6],
}

impl MeasuredRow {
    fn new(point: &ChampionPoint) -> Self {
        let on: &MeasuredOn = &point.measured_on;
        let or_dash = |value: &Option<String>| value.clone().unwrap_or_else(dash);
        MeasuredRow {
            backbone: point.backbone.clone(),
            cells: [
                format!("{} {}", on.harness, or_dash(&on.harness_version)),
                or_dash(&on.podium_version),
                or_dash(&on.cpu_model),
                or_dash(&on.simd),
                or_dash(&on.threads),
                format!("{} ({})", or_dash(&on.environment), on.source),
            ],
        }
    }
}
