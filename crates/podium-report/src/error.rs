//! What can go wrong rendering a report (nothing is read or written here: the caller does the
//! I/O).

/// Errors of podium-report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure could not be drawn.
    #[error("drawing the {figure} figure of the report: {message}")]
    Plot {
        /// Which figure.
        figure: &'static str,
        /// plotters' error.
        message: String,
    },
    /// The page template failed to render.
    #[error("rendering the report page: {0}")]
    Template(#[from] askama::Error),
}
