//! The statistics the theory tables share: a figure's mean and spread over trials, and the
//! beta distribution the consistent-hash ring's load shares follow.
//!
//! Everything here is plain `f64` arithmetic in a fixed order, so a table computed from the same
//! seeds prints the same digits on every machine.

use serde::Serialize;

/// Mean and standard deviation of one figure over trials.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
}

impl Spread {
    /// Of these samples.
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Spread {
        let v: Vec<f64> = samples.into_iter().collect();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = if v.len() > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Spread {
            mean,
            sd: var.sqrt(),
        }
    }

    /// The standard error of the mean over `runs` trials.
    pub fn standard_error(&self, runs: usize) -> f64 {
        self.sd / (runs as f64).sqrt()
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos' approximation, g = 7, nine terms; relative error about
/// 1e-15).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // The reflection formula keeps the series in the range where it is accurate.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The beta distribution `Beta(a, b)`: the share of the key space that `a` of `a + b` uniformly
/// placed points own, when each point owns the gap before it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Beta {
    /// First shape parameter.
    pub a: f64,
    /// Second shape parameter.
    pub b: f64,
}

impl Beta {
    /// The mean, `a / (a + b)`.
    pub fn mean(&self) -> f64 {
        self.a / (self.a + self.b)
    }

    /// The variance, `ab / ((a + b)^2 (a + b + 1))`.
    pub fn variance(&self) -> f64 {
        let s = self.a + self.b;
        self.a * self.b / (s * s * (s + 1.0))
    }

    /// `P(X <= x)`: the regularised incomplete beta function `I_x(a, b)`.
    pub fn cdf(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return 0.0;
        }
        if x >= 1.0 {
            return 1.0;
        }
        let (a, b) = (self.a, self.b);
        let ln_front =
            ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
        // The continued fraction converges quickly below the mean; above it, use the symmetry
        // I_x(a, b) = 1 - I_{1-x}(b, a).
        if x < (a + 1.0) / (a + b + 2.0) {
            ln_front.exp() * continued_fraction(a, b, x) / a
        } else {
            1.0 - ln_front.exp() * continued_fraction(b, a, 1.0 - x) / b
        }
    }

    /// The `p`-quantile (`0 < p < 1`), by bisection on [`Beta::cdf`] to within 1e-12.
    pub fn quantile(&self, p: f64) -> f64 {
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        while hi - lo > 1e-12 {
            let mid = 0.5 * (lo + hi);
            if self.cdf(mid) < p {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

/// The continued fraction of `I_x(a, b)` (its terms d_{2m+1} = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1))
/// and d_{2m} = m(b-m)x / ((a+2m-1)(a+2m))), evaluated by the modified Lentz method.
fn continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const MAX_TERMS: u32 = 100_000;
    let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / clamp(1.0 - (a + b) * x / (a + 1.0));
    let mut value = d;
    for m in 1..=MAX_TERMS {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / clamp(1.0 + even * d);
        c = clamp(1.0 + even / c);
        value *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / clamp(1.0 + odd * d);
        c = clamp(1.0 + odd / c);
        let step = d * c;
        value *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    value
}

/// The `n`-th harmonic number `1 + 1/2 + … + 1/n`.
pub fn harmonic(n: u32) -> f64 {
    (1..=n).map(|k| 1.0 / f64::from(k)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_factorials() {
        for (n, factorial) in [(1u32, 1.0f64), (5, 24.0), (11, 3_628_800.0)] {
            assert!(
                (ln_gamma(f64::from(n)) - factorial.ln()).abs() < 1e-12,
                "{n}"
            );
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn the_beta_cdf_matches_closed_forms() {
        // Beta(1, b): 1 - (1 - x)^b. Beta(a, 1): x^a. Beta(2, 2): 3x^2 - 2x^3.
        for x in [0.01, 0.2, 0.5, 0.77, 0.99] {
            let one_b = Beta { a: 1.0, b: 9.0 }.cdf(x);
            assert!((one_b - (1.0 - (1.0f64 - x).powi(9))).abs() < 1e-12, "{x}");
            let a_one = Beta { a: 4.0, b: 1.0 }.cdf(x);
            assert!((a_one - x.powi(4)).abs() < 1e-12, "{x}");
            let two_two = Beta { a: 2.0, b: 2.0 }.cdf(x);
            assert!(
                (two_two - (3.0 * x * x - 2.0 * x * x * x)).abs() < 1e-12,
                "{x}"
            );
        }
    }

    #[test]
    fn a_large_beta_is_close_to_its_normal_approximation() {
        // Beta(1000, 999000) has mean 1e-3 and sd ~3.16e-5: the median is within a small
        // fraction of an sd of the mean, and mean ± 1 sd holds about 68%.
        let beta = Beta {
            a: 1_000.0,
            b: 999_000.0,
        };
        let sd = beta.variance().sqrt();
        let inside = beta.cdf(beta.mean() + sd) - beta.cdf(beta.mean() - sd);
        assert!((inside - 0.6827).abs() < 0.005, "{inside}");
        let median = beta.quantile(0.5);
        assert!((median - beta.mean()).abs() < 0.05 * sd, "{median}");
    }

    #[test]
    fn harmonic_numbers() {
        assert!((harmonic(10) - 2.928_968).abs() < 1e-6);
        assert!((harmonic(1000) - 7.485_471).abs() < 1e-6);
    }
}
