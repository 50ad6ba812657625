//! The machine a measurement runs on, as a benchmark report states it: the CPU's model name and
//! the widest SIMD level the runtime's kernels dispatch to there (the GEMMs and the fused
//! kernels pick AVX-512, else AVX2 with FMA, else the baseline, at run time).
//!
//! ```
//! let host = podium_runtime::host::HostInfo::detect();
//! assert!(!host.simd.is_empty());
//! ```

/// The CPU that measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// The CPU's model name as the OS reports it (`model name` of `/proc/cpuinfo`); `None`
    /// where it says none.
    pub model: Option<String>,
    /// `AVX-512`, `AVX2`, `SSE2` (the x86-64 baseline), `NEON` or `none`.
    pub simd: &'static str,
}

impl HostInfo {
    /// This machine.
    pub fn detect() -> Self {
        HostInfo {
            model: cpu_model(),
            simd: simd_level(),
        }
    }
}

/// The widest SIMD level the kernels use on this CPU.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            "AVX-512"
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            "AVX2"
        } else {
            "SSE2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "none"
    }
}

/// The `model name` line of `/proc/cpuinfo` (Linux); `None` elsewhere or when it has none.
pub fn cpu_model() -> Option<String> {
    // About a kilobyte per logical CPU: 4 MiB holds thousands of them.
    const MAX_CPUINFO_BYTES: u64 = 4 << 20;
    let text =
        podium_io::read_regular_text(std::path::Path::new("/proc/cpuinfo"), MAX_CPUINFO_BYTES)
            .ok()?;
    model_name(&text)
}

/// The first `model name : …` value of a `/proc/cpuinfo` text, whitespace collapsed.
fn model_name(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        (key.trim() == "model name" && !value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_name_is_the_first_one_listed() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9R45 \n\
                    processor\t: 1\nmodel name\t: other\n";
        assert_eq!(model_name(text).as_deref(), Some("AMD EPYC 9R45"));
        assert_eq!(model_name("processor : 0\nmodel name :  \n"), None);
        assert_eq!(model_name(""), None);
    }
}
