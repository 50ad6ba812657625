//! Champion selection, refit resolution, best-trial retrieval and composite ranking.
