//! Matrix multiplies on strided views of `f32` slices, through the `gemm` crate (candle's own
//! CPU GEMM), called directly so the CPU path decides the threading of every product and can
//! read Q, K and V where the fused projection left them, with no transposes or copies.
//!
//! This is the one place in podium with `unsafe`: `gemm::gemm` takes raw pointers and strides.
//! [`MatRef`] and [`MatMut`] check when they are built that every element their shape and
//! strides address lies inside their slice, and a `MatMut` must not address any element twice,
//! so the call below cannot read or write out of bounds or race with itself.
#![allow(unsafe_code)]

use candle_core::Result;

pub(crate) use gemm::Parallelism;

/// Elements a `rows × cols` view with these strides spans from its first element.
fn span(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

fn check_span(
    what: &str,
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Result<()> {
    match span(rows, cols, row_stride, col_stride) {
        Some(needed) if needed <= len => Ok(()),
        _ => candle_core::bail!(
            "{what}: a {rows}×{cols} view with strides ({row_stride}, {col_stride}) does not fit in {len} elements"
        ),
    }
}

/// A read-only `rows × cols` matrix: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view; fails when it would address past the end of `data`.
    pub(crate) fn strided(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<MatRef<'a>> {
        check_span(
            "gemm operand",
            data.len(),
            rows,
            cols,
            row_stride,
            col_stride,
        )?;
        Ok(MatRef {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A contiguous row-major view of `data`.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<MatRef<'a>> {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// The transpose (no copy: the strides swap).
    pub(crate) fn t(self) -> MatRef<'a> {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// A writable row-major `rows × cols` matrix with rows `row_stride ≥ cols` apart, so no two
/// elements share memory.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// Rows `row_stride` apart; fails when they would overlap or run past `data`.
    pub(crate) fn strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<MatMut<'a>> {
        if row_stride < cols && rows > 1 {
            candle_core::bail!("gemm output: rows of {cols} overlap at stride {row_stride}")
        }
        check_span("gemm output", data.len(), rows, cols, row_stride, 1)?;
        Ok(MatMut {
            data,
            rows,
            cols,
            row_stride,
        })
    }

    /// The first `rows · cols` elements of `data`, row-major.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<MatMut<'a>> {
        Self::strided(data, rows, cols, cols)
    }
}

/// `dst = lhs · rhs`, threaded as `parallelism` says.
pub(crate) fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    parallelism: Parallelism,
) -> Result<()> {
    if lhs.rows != dst.rows || rhs.cols != dst.cols || lhs.cols != rhs.rows {
        candle_core::bail!(
            "gemm shapes: ({}×{}) · ({}×{}) into {}×{}",
            lhs.rows,
            lhs.cols,
            rhs.rows,
            rhs.cols,
            dst.rows,
            dst.cols
        )
    }
    let as_stride = |stride: usize| -> Result<isize> {
        isize::try_from(stride).map_err(|_| candle_core::Error::Msg(format!("stride {stride}")))
    };
    // SAFETY: the constructors checked that every (i, j) within each view's shape, at its
    // strides, lies inside its slice; the shape check above makes gemm stay within those shapes
    // (m = dst.rows, n = dst.cols, k = lhs.cols). `dst` is a unique borrow whose rows do not
    // overlap, so it aliases neither operand nor itself. `read_dst` is false: dst's previous
    // contents are never read, so an uninitialised-looking value cannot leak in.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            lhs.cols,
            dst.data.as_mut_ptr(),
            1,
            as_stride(dst.row_stride)?,
            false,
            lhs.data.as_ptr(),
            as_stride(lhs.col_stride)?,
            as_stride(lhs.row_stride)?,
            rhs.data.as_ptr(),
            as_stride(rhs.col_stride)?,
            as_stride(rhs.row_stride)?,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Threads for one large product: every thread of the rayon pool this runs in (the harness's
/// pool of `--threads`), not candle's machine-wide guess.
pub(crate) fn pool_parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        threads => Parallelism::Rayon(threads),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn products_match_a_naive_loop_at_any_strides() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        let mut out = vec![0f32; m * n];
        matmul(
            MatMut::row_major(&mut out, m, n).unwrap(),
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b, k, n).unwrap(),
            Parallelism::None,
        )
        .unwrap();
        for (got, want) in out.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-5);
        }
        // b stored transposed (n × k) and read through a transposed view; output into the
        // middle columns of a wider buffer.
        let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut wide = vec![-1f32; m * 8];
        matmul(
            MatMut::strided(&mut wide[2..], m, n, 8).unwrap(),
            MatRef::row_major(&a, m, k).unwrap(),
            MatRef::row_major(&b_t, n, k).unwrap().t(),
            Parallelism::Rayon(2),
        )
        .unwrap();
        for i in 0..m {
            for j in 0..n {
                assert!((wide[i * 8 + 2 + j] - expected[i * n + j]).abs() < 1e-5);
            }
            assert_eq!(wide[i * 8], -1.0, "columns outside the view are untouched");
        }
    }

    #[test]
    fn views_that_do_not_fit_are_refused() {
        let data = vec![0f32; 10];
        assert!(MatRef::strided(&data, 3, 4, 4, 1).is_err());
        assert!(MatRef::strided(&data, 2, 5, 5, 1).is_ok());
        let mut out = vec![0f32; 10];
        assert!(
            MatMut::strided(&mut out, 2, 4, 3).is_err(),
            "overlapping rows"
        );
        assert!(MatMut::strided(&mut out, 3, 4, 4).is_err(), "past the end");
        let a = vec![0f32; 6];
        let shapes = matmul(
            MatMut::row_major(&mut out, 2, 2).unwrap(),
            MatRef::row_major(&a, 2, 3).unwrap(),
            MatRef::row_major(&a, 2, 3).unwrap(),
            Parallelism::None,
        );
        assert!(shapes.is_err(), "inner dimensions differ");
    }
}
