import Foundation

/// Small statistics used by the reports.
public enum Stats {
    /// The 95% Wilson score interval of `successes` out of `n` (0…1); (0, 1) when n = 0.
    public static func wilson(successes: Int, n: Int, z: Double = 1.959963984540054) -> (low: Double, high: Double) {
        guard n > 0 else { return (0, 1) }
        let nn = Double(n)
        let p = Double(successes) / nn
        let z2 = z * z
        let center = (p + z2 / (2 * nn)) / (1 + z2 / nn)
        let half = z * ((p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot()) / (1 + z2 / nn)
        return (max(0, center - half), min(1, center + half))
    }

    /// The exact two-sided McNemar test: `b` and `c` are the discordant pairs (A right and B
    /// wrong, A wrong and B right); p = P(X ≤ min(b, c)) · 2 for X ~ Binomial(b + c, ½), capped at 1.
    public static func mcnemarExact(b: Int, c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        // Sum in log space: C(n, i) / 2^n.
        let logHalf = Double(n) * log(0.5)
        var total = 0.0
        for i in 0...k {
            total += exp(logChoose(n, i) + logHalf)
        }
        return min(1, 2 * total)
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// The q-quantile (0…1) of sorted values, linearly interpolated.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = min(lower + 1, sorted.count - 1)
        let t = position - Double(lower)
        return sorted[lower] * (1 - t) + sorted[upper] * t
    }

    public static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }
}
