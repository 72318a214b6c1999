/// Running estimates of a cost that depends on a count, such as the milliseconds of a forward over
/// n positions: an average per n seen, and for an n not seen yet a line through the nearest seen
/// ones. The cost is flat while a forward is bound by reading the weights, then grows with n, so a
/// straight line through all n would overstate two positions and understate one.
public struct CostCurve: Sendable {
    var points: [Int: Double] = [:]
    public init() {}

    public mutating func observe(_ n: Int, ms: Double) {
        points[n] = points[n].map { 0.9 * $0 + 0.1 * ms } ?? ms
    }

    /// The estimate for n; nil until two different counts were seen (or n itself).
    public func ms(_ n: Int) -> Double? {
        if let v = points[n] { return v }
        let seen = points.keys.sorted()
        guard seen.count >= 2 else { return nil }
        var (i, j) = (seen[seen.count - 2], seen[seen.count - 1])
        if let above = seen.firstIndex(where: { $0 > n }) { (i, j) = above > 0 ? (seen[above - 1], seen[above]) : (seen[0], seen[1]) }
        let vi = points[i]!, vj = points[j]!
        return max(0, vi + (vj - vi) * Double(n - i) / Double(j - i))
    }
}
